"""Config of the ``diffusion`` policy (Diffusion Policy's low-dim U-Net, on the shared backbone)."""

from __future__ import annotations

from dataclasses import dataclass

from lnmdn_agents.config_fields import check_ints, check_range
from lnmdn_agents.policies.backbone import BackboneConfig
from lnmdn_agents.policies.noise_scheduler import SAMPLERS, SPACINGS

__all__ = ["SAMPLERS", "DiffusionConfig"]


@dataclass
class DiffusionConfig(BackboneConfig):
    """1-D temporal conditional U-Net over the action chunk, FiLM-conditioned on the context.

    Attributes:
        down_dims: channels of the U-Net levels (Diffusion Policy: 256, 512, 1024; the default
            lands the Push-T model at 8.56M parameters, the paper's 8.6M). The horizon T must
            be divisible by ``2 ** (len(down_dims) - 1)``.
        kernel_size: temporal convolution kernel (Diffusion Policy: 5).
        n_groups: GroupNorm groups (Diffusion Policy: 8); must divide every ``down_dims`` entry.
        diffusion_step_embed_dim: size of the sinusoidal timestep embedding.
        num_train_timesteps: N, diffusion steps at training (squared-cosine betas).
        sampler: ``"ddpm"`` (ancestral) or ``"ddim"`` (deterministic, eta = 0) at inference.
        num_inference_steps: denoising steps at inference (the comparison: 50 DDPM, 10 DDIM).
        spacing: which ``num_inference_steps`` of the training timesteps the sampler visits:
            ``"leading"`` (Diffusion Policy's setting: 90, 80, ..., 0 for 10 of 100) or
            ``"trailing"`` (99, 89, ..., 9: the first step at the noisiest level, ``lwd``'s
            default). ``lnmdn_agents.policies.noise_scheduler`` explains both. Runs saved before
            this field existed sampled with ``"leading"``, the default.
        clip_sample: clip the predicted clean chunk to [-1, 1] at each step.
        use_ema: train with an exponential moving average of the weights; the saved and evaluated
            weights are the EMA ones (the trainer reads these three fields:
            ``lnmdn_agents.training.ema``).
        ema_power: EMA warm-up power (decay = 1 - (1 + step) ** -ema_power; Diffusion Policy: 0.75).
        ema_max_decay: upper bound on the EMA decay (Diffusion Policy: 0.9999).
        elbo_terms: U-Net passes per ``log_prob`` call: the first and last timesteps plus
            ``elbo_terms - 2`` strata of the others, one random timestep per stratum weighted by
            its size (an unbiased estimate of the full variational bound;
            ``num_train_timesteps`` or more evaluates every term).
    """

    down_dims: tuple[int, ...] = (80, 160, 304)
    kernel_size: int = 5
    n_groups: int = 8
    diffusion_step_embed_dim: int = 64
    num_train_timesteps: int = 100
    sampler: str = "ddpm"
    num_inference_steps: int = 50
    spacing: str = "leading"
    clip_sample: bool = True
    use_ema: bool = True
    ema_power: float = 0.75
    ema_max_decay: float = 0.9999
    elbo_terms: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        self.down_dims = tuple(self.down_dims)
        if not self.down_dims or any(
            not isinstance(d, int) or isinstance(d, bool) or d < 1 for d in self.down_dims
        ):
            raise ValueError(f"down_dims must be positive integers, got {self.down_dims=}")
        check_ints(
            self,
            "kernel_size",
            "n_groups",
            "diffusion_step_embed_dim",
            "num_train_timesteps",
            "elbo_terms",
        )
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size=}")
        if any(d % self.n_groups for d in self.down_dims):
            raise ValueError(
                f"n_groups must divide every down_dims entry, got {self.n_groups=}, "
                f"{self.down_dims=}"
            )
        factor = 2 ** (len(self.down_dims) - 1)
        if self.horizon % factor:
            raise ValueError(
                f"horizon must be divisible by 2 ** (len(down_dims) - 1) = {factor}, got "
                f"{self.horizon=}, {self.down_dims=}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler=}")
        if self.spacing not in SPACINGS:
            raise ValueError(f"spacing must be one of {SPACINGS}, got {self.spacing=}")
        if not 1 <= self.num_inference_steps <= self.num_train_timesteps:
            raise ValueError(
                "num_inference_steps must be in [1, num_train_timesteps], got "
                f"{self.num_inference_steps=}, {self.num_train_timesteps=}"
            )
        check_range(self, "ema_max_decay", gt=0, lt=1)
        check_range(self, "ema_power", gt=0)
