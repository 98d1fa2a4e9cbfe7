"""``diffusion``: Diffusion Policy's 1-D conditional U-Net on the shared observation backbone.

::

    obs (B, To, Do) -> normalise -> backbone -> context (B, d)          (once per chunk)
    x_N ~ N(0, I) (B, T, Da)
    for t in timesteps (50 DDPM or 10 DDIM of the N = 100 training steps, "leading" spacing):
        eps = UNet(x_t, t, FiLM(context, embed(t)))                      (B, T, Da)
        x_(next t) = scheduler step(x_t, eps)          (lnmdn_agents.policies.noise_scheduler)
    chunk = unnormalise(x_0)                                             (B, T, Da)

The U-Net follows Diffusion Policy's ``ConditionalUnet1D``: residual blocks of two
Conv1d(kernel 5) -> GroupNorm(8) -> Mish, FiLM (per-channel scale and bias) from the condition
``[timestep embedding, context]``, two levels of down/up-sampling over the horizon, skips.
Training: epsilon prediction, MSE, timesteps uniform in [0, N).
"""

from __future__ import annotations

import itertools
import math
from typing import ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnmdn_agents.policies.backbone import ObservationBackbone
from lnmdn_agents.policies.base import PolicyBase, register_policy
from lnmdn_agents.policies.diffusion.configuration import DiffusionConfig
from lnmdn_agents.policies.noise_scheduler import NoiseScheduler, SinusoidalPosEmb

__all__ = ["ConditionalUnet1D", "DiffusionPolicy"]


class Conv1dBlock(nn.Sequential):
    """Conv1d -> GroupNorm -> Mish, length preserved."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, n_groups: int):
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, c_out),
            nn.Mish(),
        )


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks with FiLM (scale, bias) from the condition between them, plus a residual."""

    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.block1 = Conv1dBlock(c_in, c_out, kernel_size, n_groups)
        self.block2 = Conv1dBlock(c_out, c_out, kernel_size, n_groups)
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.residual = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        """X (B, C_in, T), cond (B, cond_dim) -> (B, C_out, T)."""
        scale, bias = self.cond_encoder(cond)[:, :, None].chunk(2, dim=1)
        out = self.block1(x) * scale + bias
        return self.block2(out) + self.residual(x)


class _Level(nn.Module):
    """One U-Net level: two conditional residual blocks, then a resampling layer."""

    def __init__(
        self,
        res1: ConditionalResidualBlock1D,
        res2: ConditionalResidualBlock1D,
        resample: nn.Module,
    ):
        super().__init__()
        self.res1, self.res2, self.resample = res1, res2, resample

    def forward(self, h: Tensor, cond: Tensor) -> Tensor:
        """(B, C_in, T') -> (B, C_out, T') before resampling; see ConditionalUnet1D.forward."""
        return self.res2(self.res1(h, cond), cond)


class ConditionalUnet1D(nn.Module):
    """Noise predictor: x (B, T, Da), timestep (B,), global condition (B, G) -> eps (B, T, Da)."""

    def __init__(
        self,
        action_dim: int,
        global_cond_dim: int,
        down_dims: tuple[int, ...],
        kernel_size: int,
        n_groups: int,
        step_embed_dim: int,
    ):
        super().__init__()
        dsed = step_embed_dim
        self.step_encoder = nn.Sequential(
            SinusoidalPosEmb(dsed), nn.Linear(dsed, 4 * dsed), nn.Mish(), nn.Linear(4 * dsed, dsed)
        )
        cond_dim = dsed + global_cond_dim
        dims = [action_dim, *down_dims]
        in_out = list(itertools.pairwise(dims))

        def block(c_in: int, c_out: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(c_in, c_out, cond_dim, kernel_size, n_groups)

        self.down = nn.ModuleList()
        for i, (c_in, c_out) in enumerate(in_out):
            last = i == len(in_out) - 1
            down = nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, 2, 1)
            self.down.append(_Level(block(c_in, c_out), block(c_out, c_out), down))
        mid = down_dims[-1]
        self.mid = nn.ModuleList([block(mid, mid), block(mid, mid)])
        self.up = nn.ModuleList()
        for c_in, c_out in reversed(in_out[1:]):
            up = nn.ConvTranspose1d(c_in, c_in, 4, 2, 1)
            self.up.append(_Level(block(2 * c_out, c_in), block(c_in, c_in), up))
        start = down_dims[0]
        self.final = nn.Sequential(
            Conv1dBlock(start, start, kernel_size, n_groups), nn.Conv1d(start, action_dim, 1)
        )

    def forward(self, x: Tensor, timestep: Tensor, global_cond: Tensor) -> Tensor:
        """X (B, T, Da), timestep (B,) int, global_cond (B, G) -> (B, T, Da)."""
        cond = torch.cat([self.step_encoder(timestep), global_cond], dim=-1)
        h = x.transpose(1, 2)
        skips = []
        for level in cast(list[_Level], list(self.down)):
            h = level(h, cond)
            skips.append(h)
            h = level.resample(h)
        for res in self.mid:
            h = res(h, cond)
        for level in cast(list[_Level], list(self.up)):
            h = torch.cat([h, skips.pop()], dim=1)
            h = level.resample(level(h, cond))
        return self.final(h).transpose(1, 2)


@register_policy("diffusion")
class DiffusionPolicy(PolicyBase):
    """Conditional U-Net diffusion over the action chunk (DDPM training, DDPM/DDIM sampling).

    ``log_prob`` is a lower bound (a stratified estimate of the DDPM variational bound, see
    :meth:`log_prob`), so ``log_prob_is_bound = True``.

    Args:
        config: :class:`DiffusionConfig`.
        stats: normalisation statistics (see :class:`MinMaxNormalizer`).
    """

    config_class: ClassVar[type[DiffusionConfig]] = DiffusionConfig
    config: DiffusionConfig
    log_prob_is_bound: ClassVar[bool] = True

    def __init__(
        self, config: DiffusionConfig, stats: dict[str, dict[str, np.ndarray]] | None = None
    ):
        super().__init__(config, stats)
        c = config
        self.backbone = ObservationBackbone(c)
        self.unet = ConditionalUnet1D(
            c.action_dim, c.d_model, c.down_dims, c.kernel_size, c.n_groups,
            c.diffusion_step_embed_dim,
        )  # fmt: skip
        self.scheduler = NoiseScheduler(c.num_train_timesteps, clip_sample=c.clip_sample)

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Epsilon-prediction MSE at a uniformly drawn timestep per sample."""
        obs, action = self.check_batch(batch)
        ctx = self.backbone(self.normalizer.normalize_obs(obs))
        x0 = self.normalizer.normalize_action(action)
        noise = torch.randn_like(x0)
        t = torch.randint(0, self.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
        eps = self.unet(self.scheduler.add_noise(x0, noise, t), t, ctx)
        loss = F.mse_loss(eps.float(), noise)  # float32 even when trained under bf16 autocast
        return loss, {"mse": float(loss.detach())}

    def _denoise(
        self, ctx: Tensor, deterministic: bool, sampler: str | None, steps: int | None
    ) -> Tensor:
        c = self.config
        return self.scheduler.sample(
            lambda x, t: self.unet(x, t, ctx),
            (ctx.shape[0], c.horizon, c.action_dim),
            sampler=sampler or c.sampler,
            num_inference_steps=steps or c.num_inference_steps,
            spacing=c.spacing,
            deterministic=deterministic,
            device=ctx.device,
        )

    @torch.no_grad()
    def predict_chunk(
        self,
        obs: Tensor,
        *,
        deterministic: bool = False,
        sampler: str | None = None,
        num_inference_steps: int | None = None,
    ) -> Tensor:
        """(B, To, Do) raw observations -> (B, T, Da) raw actions.

        ``deterministic=True`` starts from x_N = 0 (the prior's mode) and adds no noise, so the
        same observation always gives the same chunk. ``sampler``/``num_inference_steps`` override
        the config for this call (e.g. ``sampler="ddim", num_inference_steps=10``).
        """
        ctx = self.backbone(self.normalizer.normalize_obs(self.check_obs(obs)))
        x = self._denoise(ctx, deterministic, sampler, num_inference_steps)
        return self.normalizer.unnormalize_action(x)

    @torch.no_grad()
    def sample_chunks(self, obs: Tensor, k: int) -> Tensor:
        """(B, To, Do) -> (B, k, T, Da): k samples per observation, denoised as one batch."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k=}")
        ctx = self.backbone(self.normalizer.normalize_obs(self.check_obs(obs)))
        x = self._denoise(ctx.repeat_interleave(k, dim=0), False, None, None)
        return self.normalizer.unnormalize_action(x).reshape(ctx.shape[0], k, *x.shape[1:])

    @torch.no_grad()
    def log_prob(self, obs: Tensor, action: Tensor) -> Tensor:
        """Lower bound (B,) on the log-density of the normalised chunk (raw units in).

        The DDPM variational bound ``-(L_N + sum_{t>=1} L_t + L_0)`` with reverse variances fixed
        to the posterior ones, each term evaluated with one noise draw, in ``config.elbo_terms``
        U-Net passes: the first and last timesteps exactly, the others in equal strata with one
        random timestep per stratum weighted by the stratum's size (unbiased for the full sum).
        """
        obs_t, act = self.check_batch({"obs": obs, "action": action})
        ctx = self.backbone(self.normalizer.normalize_obs(obs_t))
        x0 = self.normalizer.normalize_action(act)
        w, beta0, ac_last = self.scheduler.elbo_weights()
        # L_N: KL(q(x_N | x_0) || N(0, I)) per element.
        kl_prior = 0.5 * (ac_last * x0 * x0 + (1.0 - ac_last) - 1.0 - math.log(1.0 - ac_last))
        total = kl_prior.flatten(1).sum(1)
        b, n = x0.shape[0], self.config.num_train_timesteps
        # t = 0 and t = N - 1 (whose weight dwarfs the others: beta is capped at 0.999 there)
        # are always exact; the rest is estimated from strata.
        if self.config.elbo_terms >= n or n <= 3:
            terms = [(t, 1.0) for t in range(n)]
        else:
            terms = [(0, 1.0), (n - 1, 1.0)]
            n_strata = max(1, self.config.elbo_terms - 2)
            edges = np.linspace(1, n - 1, n_strata + 1).round().astype(np.int64)
            for lo, hi in itertools.pairwise(edges.tolist()):
                if hi > lo:
                    terms.append((int(torch.randint(lo, hi, ()).item()), float(hi - lo)))
        for t, weight in terms:
            tt = torch.full((b,), t, device=x0.device, dtype=torch.long)
            noise = torch.randn_like(x0)
            eps = self.unet(self.scheduler.add_noise(x0, noise, tt), tt, ctx)
            err = (eps - noise).pow(2).flatten(1).sum(1)
            total = total + weight * float(w[t]) * err
        total = total + 0.5 * math.log(2.0 * math.pi * beta0) * x0[0].numel()
        return -total
