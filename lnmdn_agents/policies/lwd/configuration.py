"""Configuration of Latent Weight Diffusion (``lwd``; Hegde, Salhotra, Sukhatme, arXiv 2410.14040).

LWD learns a distribution over *policies* rather than over trajectories::

    phase 1    (o, a) segment --encoder--> z --hypernetwork--> weights of pi_z
               loss: || pi_z(o_i) - a_i ||^2 over the segment + kl_weight * KL(q(z|o,a) || N(0,I))
    phase 2    latent diffusion  p(z | o(t-To+1..t))  on the frozen encoder's latents
    inference  every `replan_every` env steps: z ~ p(z | obs history), weights = hyper(z)
               every env step:                 a_t = pi_z(o_t)   (a Do -> 64 -> 64 -> Da MLP)
"""

from __future__ import annotations

from dataclasses import dataclass

from lnmdn_agents.config_fields import check_ints, check_range
from lnmdn_agents.policies.backbone import BackboneConfig
from lnmdn_agents.policies.noise_scheduler import SAMPLERS, SPACINGS

__all__ = ["ACTIVATIONS", "LWDConfig"]

ACTIVATIONS = ("relu", "tanh", "silu")


@dataclass
class LWDConfig(BackboneConfig):
    """Latent Weight Diffusion. Shared fields: :class:`PolicyConfig` and :class:`BackboneConfig`.

    The shared observation backbone (``d_model`` ...) encodes the history ``o(t-To+1..t)`` into
    the context that conditions the latent diffusion, as it conditions the other heads.

    ``n_action_steps`` defaults to 1: LWD's decoded policy is closed-loop, so the env executes one
    action per ``predict`` call and the latent (one diffusion query) is re-sampled every
    ``replan_every`` env steps. Larger ``n_action_steps`` work (the decoded policy then acts on the
    newest observation, held for the ``Ta`` open-loop steps) but waste the point of the method.

    Attributes:
        replan_every: env steps between two latent samples (diffusion queries) in closed loop.
            Diffusion Policy re-plans every 8 steps; fewer queries is what LWD is for.
        latent_dim: size of the latent z that indexes a policy.
        kl_weight: weight of KL(q(z | segment) || N(0, I)) against the per-element action MSE in
            phase 1. Small, so the latent keeps what the segment's actions need; not tiny, so the
            latent carries the behaviour rather than the segment's details (a simpler latent
            distribution is easier for the diffusion to sample).
        encoder_hidden_dim: width of the trajectory encoder MLP.
        encoder_layers: hidden layers of the trajectory encoder MLP.
        hyper_hidden_dim: width of the hypernetwork trunk (latent -> weights).
        hyper_layers: hidden layers of the hypernetwork trunk.
        policy_hidden_dim: width of the generated (decoded) policy's hidden layers.
        policy_layers: hidden layers of the generated policy (2: Do -> 64 -> 64 -> Da).
        policy_activation: nonlinearity of the generated policy, one of ``ACTIVATIONS``.
        obs_along_horizon: training windows carry one observation per action of the horizon
            (``observation_delta_indices == action_delta_indices``), so the decoded policy is
            fitted at the state where each demonstrated action was taken. False: windows carry only
            the ``To`` history and the decoded policy is fitted on those ``To`` steps. Inference
            never sees future observations either way.
        denoiser_hidden_dim: width of the residual MLP denoiser.
        denoiser_blocks: residual blocks of the denoiser.
        num_train_timesteps: DDPM noise levels in training (squared-cosine schedule, the
            :class:`~lnmdn_agents.policies.noise_scheduler.NoiseScheduler` that ``diffusion``
            uses too).
        sampler: ``"ddim"`` (deterministic given the initial noise) or ``"ddpm"`` (ancestral).
        num_inference_steps: denoising steps per latent sample (one diffusion query costs this many
            denoiser calls).
        spacing: which ``num_inference_steps`` of the training timesteps the sampler visits:
            ``"trailing"`` (99, 89, ..., 9 for 10 of 100: the first step at the noisiest level,
            where the initial N(0, I) draw belongs) or ``"leading"`` (90, 80, ..., 0: Diffusion
            Policy's setting and the ``diffusion`` head's default; set both heads to one value
            to compare them on equal terms). ``lnmdn_agents.policies.noise_scheduler`` explains
            both. Runs saved before this field existed sampled with ``"trailing"``, the default.
        latent_clip: sampled (standardised) latents' x0 estimates are clipped to +-latent_clip.
        autoencoder_fraction: fraction of the training epochs spent in phase 1 (auto-encoder and
            hypernetwork); the rest train the latent diffusion. A one-epoch run trains both jointly.
    """

    n_action_steps: int = 1
    replan_every: int = 32
    latent_dim: int = 16
    kl_weight: float = 1e-2
    encoder_hidden_dim: int = 256
    encoder_layers: int = 2
    hyper_hidden_dim: int = 256
    hyper_layers: int = 2
    policy_hidden_dim: int = 64
    policy_layers: int = 2
    policy_activation: str = "relu"
    obs_along_horizon: bool = True
    denoiser_hidden_dim: int = 256
    denoiser_blocks: int = 3
    num_train_timesteps: int = 100
    sampler: str = "ddim"
    num_inference_steps: int = 10
    spacing: str = "trailing"
    latent_clip: float = 5.0
    autoencoder_fraction: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ints(
            self,
            "replan_every",
            "latent_dim",
            "encoder_hidden_dim",
            "encoder_layers",
            "hyper_hidden_dim",
            "hyper_layers",
            "policy_hidden_dim",
            "policy_layers",
            "denoiser_hidden_dim",
            "denoiser_blocks",
            "num_train_timesteps",
            "num_inference_steps",
        )
        if self.num_inference_steps > self.num_train_timesteps:
            raise ValueError(
                "num_inference_steps must be <= num_train_timesteps, got "
                f"{self.num_inference_steps=}, {self.num_train_timesteps=}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if self.spacing not in SPACINGS:
            raise ValueError(f"spacing must be one of {SPACINGS}, got {self.spacing!r}")
        if self.policy_activation not in ACTIVATIONS:
            raise ValueError(
                f"policy_activation must be one of {ACTIVATIONS}, got {self.policy_activation!r}"
            )
        if self.obs_window != "history":
            raise ValueError(
                f"lwd conditions its latent prior on the To history only, got "
                f"obs_window={self.obs_window!r}; leave obs_window='history' (the reference "
                "protocol trains liquid_mdn, lstm_mdn, gru_mdn and diffusion)"
            )
        if not isinstance(self.obs_along_horizon, bool):
            raise ValueError(f"obs_along_horizon must be a bool, got {self.obs_along_horizon!r}")
        check_range(self, "kl_weight", ge=0)
        check_range(self, "latent_clip", gt=0)
        check_range(self, "autoencoder_fraction", gt=0, lt=1)

    @property
    def observation_delta_indices(self) -> list[int]:
        """Offsets of the observations a training window holds, relative to the current step t.

        With ``obs_along_horizon`` the window holds one observation per action of the chunk (the
        first ``To`` are the usual history); the policy's inference inputs stay ``(B, To, Do)``.
        """
        if self.obs_along_horizon:
            return self.action_delta_indices
        return super().observation_delta_indices

    def phase_for_epoch(self, epoch: int, n_epochs: int) -> str:
        """Training phase of ``epoch`` (0-based) in an ``n_epochs`` run.

        Returns ``"autoencoder"`` for the first ``autoencoder_epochs(n_epochs)`` epochs,
        ``"latent_diffusion"`` after them, and ``"joint"`` for a one-epoch run.
        """
        if n_epochs < 1 or epoch < 0:
            raise ValueError(f"need n_epochs >= 1 and epoch >= 0, got {epoch=}, {n_epochs=}")
        if n_epochs == 1:
            return "joint"
        return "autoencoder" if epoch < self.autoencoder_epochs(n_epochs) else "latent_diffusion"

    def autoencoder_epochs(self, n_epochs: int) -> int:
        """Epochs of phase 1 in an ``n_epochs`` run: at least 1, leaving at least 1 for phase 2."""
        return min(max(1, round(self.autoencoder_fraction * n_epochs)), n_epochs - 1)
