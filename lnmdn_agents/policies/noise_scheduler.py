"""The noise scheduler both diffusion heads use: noising, DDPM / DDIM steps, timestep spacing.

Where it lives: beside ``backbone.py`` and ``normalizer.py``, the other pieces that more than one
policy uses, and named after its class, so ``NoiseScheduler`` is found in one guess. ``diffusion``
(chunks of actions) and ``lwd`` (latents of generated policies) both import it from here; neither
carries a sampler of its own, so a head-to-head comparison differs in what is diffused, not in how.

A small implementation of the update rules of diffusers' ``DDPMScheduler`` (``variance_type=
"fixed_small"``) and ``DDIMScheduler`` (``eta=0``, ``set_alpha_to_one=True``, ``steps_offset=0``),
both with ``beta_schedule="squaredcos_cap_v2"``, ``prediction_type="epsilon"`` and sample
clipping to [-clip_range, clip_range] -- the settings of Diffusion Policy's low-dim configs. It is
checked against diffusers in ``tests/agents/test_noise_scheduler.py`` when diffusers is installed;
diffusers itself is not a dependency (about 80 MB with huggingface-hub and its HTTP stack, and
about 4 s of import time on top of torch, for some 60 lines of arithmetic).

Timesteps are 0-based indices into ``alphas_cumprod`` (t = 0 is the least noisy level, t = N - 1
the noisiest; N = ``num_train_timesteps``). Training draws t uniformly from [0, N); sampling visits
``num_inference_steps`` = k of them, chosen by the **spacing** (``SPACINGS``), here with N = 100::

    spacing    timesteps (k = 10)              k = 5 of N = 20         first step
    leading    90, 80, 70, ..., 10, 0          16, 12, 8, 4, 0         (k - 1) * (N // k)
    trailing   99, 89, 79, ..., 19, 9          19, 15, 11, 7, 3        N - 1 (the noisiest level)

- ``"leading"``: ``i * (N // k)`` for i = k-1 .. 0, diffusers' default and what Diffusion
  Policy's configs sample with. The chain starts at level 90 of 100 although x_N is drawn from
  N(0, I), the distribution of level 99, so the first denoiser call sees noisier input than its
  timestep says; the fewer the steps, the larger the gap (none at k = N).
- ``"trailing"``: ``round(N - i * N / k) - 1`` for i = 0 .. k-1 (Lin et al. 2024, "Common
  Diffusion Noise Schedules and Sample Steps are Flawed", table 2): the chain starts at the
  noisiest level, where x_N ~ N(0, I) is right, and its last step lands on level
  ``round(N / k) - 1`` instead of 0.

Which head uses which by default (the ``spacing`` field of each config; either head takes either
value, e.g. ``lnmdn train --policy diffusion --set spacing=trailing``, for a comparison that
differs in the head only):

- ``diffusion``: ``"leading"``, Diffusion Policy's setting, so the head reproduces Diffusion
  Policy and its committed recipes and shipped checkpoints keep their numbers.
- ``lwd``: ``"trailing"``: with 10 DDIM steps the leading spacing's missing first levels hurt
  the latents' samples measurably when LWD was built.

Each step goes from its timestep to the next one in the list, and the last step to t = -1, whose
``alpha_bar`` is 1 (the clean sample). For "leading" that is diffusers' ``t - N // k``; for
"trailing" it is too when k divides N, and where it does not, going to the next listed level
neither skips nor repeats a level (diffusers' DDIM step would use ``t - N // k`` there).

The timestep embedding the denoisers read t through (:class:`SinusoidalPosEmb`) lives here too:
both heads embed the scheduler's integer timesteps with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SAMPLERS", "SPACINGS", "NoiseScheduler", "SinusoidalPosEmb", "squaredcos_betas"]

#: Reverse-step rules: ancestral DDPM (fixed_small variance) and deterministic DDIM (eta = 0).
SAMPLERS = ("ddpm", "ddim")
#: Inference timestep spacings; see the module docstring.
SPACINGS = ("leading", "trailing")


def squaredcos_betas(num_train_timesteps: int, max_beta: float = 0.999) -> Tensor:
    """Betas of the squared-cosine schedule (Nichol & Dhariwal 2021), float64 (N,)."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    n = num_train_timesteps
    betas = [min(1 - alpha_bar((i + 1) / n) / alpha_bar(i / n), max_beta) for i in range(n)]
    return torch.tensor(betas, dtype=torch.float64)


class NoiseScheduler:
    """Forward noising, DDPM / DDIM reverse steps, and the sampling loop over spaced timesteps.

    Args:
        num_train_timesteps: N, diffusion steps at training (Diffusion Policy: 100).
        clip_sample: clip the predicted clean sample to ``[-clip_range, clip_range]``.
        clip_range: the clip bound (normalised actions live in [-1, 1]; LWD's standardised
            latents use a wider one).
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

    def timesteps(self, num_inference_steps: int, spacing: str) -> list[int]:
        """The k = ``num_inference_steps`` descending timesteps a sampler visits.

        ``spacing`` is ``"leading"`` or ``"trailing"`` (see the module docstring); they agree
        when k = N.
        """
        n, k = self.num_train_timesteps, num_inference_steps
        if not 1 <= k <= n:
            raise ValueError(
                f"num_inference_steps must be in [1, {n}] (num_train_timesteps), got "
                f"num_inference_steps={k!r}"
            )
        if spacing == "leading":
            ratio = n // k
            return [i * ratio for i in reversed(range(k))]
        if spacing == "trailing":
            return [round(n - i * n / k) - 1 for i in range(k)]
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing=}")

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

    def sample(
        self,
        denoise: Callable[[Tensor, Tensor], Tensor],
        shape: tuple[int, ...],
        *,
        sampler: str,
        num_inference_steps: int,
        spacing: str,
        deterministic: bool = False,
        device: torch.device | None = None,
    ) -> Tensor:
        """Run the reverse chain from x_N to x_0, of ``shape`` (B, ...).

        Args:
            denoise: ``(x_t (B, ...), t (B,) long) -> predicted noise (B, ...)``.
            shape: the sample's shape, batch first.
            sampler: ``"ddpm"`` (ancestral: fresh noise at every step) or ``"ddim"`` (eta = 0).
            num_inference_steps: k, denoiser calls.
            spacing: which k timesteps (:meth:`timesteps`).
            deterministic: start from x_N = 0 (the prior's mode) and add no noise, so equal
                conditions give equal samples.
            device: where x lives.

        Random draws, in order: x_N (unless ``deterministic``), then, for DDPM and not
        ``deterministic``, one noise tensor per step (also at t = 0, where it is unused).
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler=}")
        steps = self.timesteps(num_inference_steps, spacing)
        start = torch.zeros if deterministic else torch.randn
        x = start(shape, device=device)
        for t, prev_t in zip(steps, [*steps[1:], -1], strict=True):
            eps = denoise(x, torch.full((shape[0],), t, device=device, dtype=torch.long))
            if sampler == "ddim":
                x = self.ddim_step(eps, t, x, prev_t)
            else:
                noise = None if deterministic else torch.randn_like(x)
                x = self.ddpm_step(eps, t, x, prev_t, noise)
        return x

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


class SinusoidalPosEmb(nn.Module):
    """Integer timesteps (B,) -> sinusoidal features (B, dim): ``[sin(t f_i), cos(t f_i)]``.

    ``f_i = 10000 ** (-i / (dim/2 - 1))`` for i < dim/2, Diffusion Policy's embedding, computed
    in this order so the ``diffusion`` head's trained weights see the values they were trained
    on; an odd ``dim`` is zero-padded. The frequencies are computed once, on the CPU, and move
    with the module.
    """

    freqs: Tensor

    def __init__(self, dim: int):
        super().__init__()
        half = dim // 2
        freqs = torch.exp(torch.arange(half) * -(math.log(10000.0) / max(1, half - 1)))
        self.register_buffer("freqs", freqs, persistent=False)
        self.dim = dim

    def forward(self, t: Tensor) -> Tensor:
        """(B,) -> (B, dim)."""
        x = t.float()[:, None] * self.freqs[None]
        emb = torch.cat([x.sin(), x.cos()], dim=-1)
        return F.pad(emb, (0, self.dim - emb.shape[-1]))
