"""DDPM / DDIM noise scheduling for epsilon-prediction diffusion (squared-cosine betas).

A small implementation of the update rules of diffusers' ``DDPMScheduler`` (``variance_type=
"fixed_small"``) and ``DDIMScheduler`` (``eta=0``, ``set_alpha_to_one=True``, ``steps_offset=0``),
both with ``beta_schedule="squaredcos_cap_v2"``, ``prediction_type="epsilon"`` and sample
clipping to [-1, 1] — the settings of Diffusion Policy's low-dim configs. It is checked against
diffusers in ``tests/agents/test_policies.py`` when diffusers is installed; diffusers itself is not
a dependency (about 80 MB with huggingface-hub and its HTTP stack, and about 4 s of import time on
top of torch, for some 60 lines of arithmetic).

Timesteps are 0-based indices into ``alphas_cumprod`` (t = 0 is the least noisy step).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["NoiseScheduler", "squaredcos_betas"]


def squaredcos_betas(num_train_timesteps: int, max_beta: float = 0.999) -> Tensor:
    """Betas of the squared-cosine schedule (Nichol & Dhariwal 2021), float64 (N,)."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    n = num_train_timesteps
    betas = [min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)]
    return torch.tensor(betas, dtype=torch.float64)


class NoiseScheduler:
    """Forward noising and DDPM / DDIM reverse steps.

    Args:
        num_train_timesteps: N, diffusion steps at training (Diffusion Policy: 100).
        clip_sample: clip the predicted clean sample to ``[-clip_range, clip_range]``.
        clip_range: the clip bound (normalised actions live in [-1, 1]).
    """

    def __init__(
        self, num_train_timesteps: int = 100, clip_sample: bool = True, clip_range: float = 1.0
    ):
        self.num_train_timesteps = num_train_timesteps
        self.clip_sample = clip_sample
        self.clip_range = clip_range
        self.betas = squaredcos_betas(num_train_timesteps)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        self._ac32 = self.alphas_cumprod.float()

    def timesteps(self, num_inference_steps: int) -> list[int]:
        """Descending timesteps for sampling with ``num_inference_steps`` (diffusers' spacing)."""
        n = self.num_train_timesteps
        if not 1 <= num_inference_steps <= n:
            raise ValueError(
                f"num_inference_steps must be in [1, {n}] (num_train_timesteps), "
                f"got {num_inference_steps=}"
            )
        ratio = n // num_inference_steps
        return [i * ratio for i in reversed(range(num_inference_steps))]

    def add_noise(self, x0: Tensor, noise: Tensor, t: Tensor) -> Tensor:
        """q(x_t | x_0): x0, noise (B, ...), t (B,) int -> x_t (B, ...)."""
        ac = self._ac32.to(x0.device)[t].reshape(-1, *([1] * (x0.ndim - 1)))
        return ac.sqrt() * x0 + (1.0 - ac).sqrt() * noise

    def _alpha_prods(self, t: int, prev_t: int) -> tuple[float, float]:
        ac = self.alphas_cumprod
        return float(ac[t]), float(ac[prev_t]) if prev_t >= 0 else 1.0

    def _pred_x0(self, x: Tensor, eps: Tensor, a_t: float) -> Tensor:
        x0 = (x - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)
        return x0.clamp(-self.clip_range, self.clip_range) if self.clip_sample else x0

    def ddpm_step(
        self, eps: Tensor, t: int, x: Tensor, prev_t: int, noise: Tensor | None
    ) -> Tensor:
        """One ancestral DDPM step x_t -> x_prev_t (``noise=None`` or t = 0: the mean only)."""
        a_t, a_prev = self._alpha_prods(t, prev_t)
        cur_alpha = a_t / a_prev
        cur_beta = 1.0 - cur_alpha
        x0 = self._pred_x0(x, eps, a_t)
        mean = (math.sqrt(a_prev) * cur_beta / (1.0 - a_t)) * x0 + (
            math.sqrt(cur_alpha) * (1.0 - a_prev) / (1.0 - a_t)
        ) * x
        if t > 0 and noise is not None:
            variance = max((1.0 - a_prev) / (1.0 - a_t) * cur_beta, 1e-20)
            mean = mean + math.sqrt(variance) * noise
        return mean

    def ddim_step(self, eps: Tensor, t: int, x: Tensor, prev_t: int) -> Tensor:
        """One deterministic DDIM step (eta = 0) x_t -> x_prev_t."""
        a_t, a_prev = self._alpha_prods(t, prev_t)
        x0 = self._pred_x0(x, eps, a_t)
        return math.sqrt(a_prev) * x0 + math.sqrt(1.0 - a_prev) * eps

    # -- variational bound ------------------------------------------------------------------------
    def elbo_weights(self) -> tuple[Tensor, float, float]:
        """Per-timestep weights of the DDPM variational bound, in terms of epsilon error.

        With the reverse variance fixed to the posterior variance (``fixed_small``), the KL term at
        t >= 1 is ``w_t * ||eps - eps_theta(x_t, t)||^2`` per element with
        ``w_t = beta_t^2 / (2 * posterior_var_t * alpha_t * (1 - alpha_bar_t))``; the t = 0
        decoder term, with variance beta_0, is
        ``||eps - eps_theta||^2 / (2 * alpha_0) + log(2 pi beta_0) / 2`` per element.

        Returns:
            (w (N,) float32 with w[0] the t = 0 coefficient, beta_0, alpha_bar_last).
        """
        b, a, ac = self.betas, self.alphas, self.alphas_cumprod
        ac_prev = torch.cat([torch.ones(1, dtype=ac.dtype), ac[:-1]])
        post_var = b * (1.0 - ac_prev) / (1.0 - ac)
        w = torch.empty_like(b)
        w[1:] = b[1:] ** 2 / (2.0 * post_var[1:] * a[1:] * (1.0 - ac[1:]))
        w[0] = 1.0 / (2.0 * a[0])
        return w.float(), float(b[0]), float(ac[-1])
