"""Latent Weight Diffusion (``lwd``): diffusion over the weights of small closed-loop policies.

Hegde, Salhotra, Sukhatme, "Latent Weight Diffusion: Generating Policies from Trajectories"
(arXiv 2410.14040). No reference code is public; this is our reading of the method::

    phase 1 (auto-encoder)   window (o(t-To+1..t), a(t-To+1..t-To+T))
                               --TrajectoryEncoder--> q(z | window) = N(mu, sigma)  (reparam.)
                               --HyperNetwork-------> weights of pi_z: Do -> 64 -> 64 -> Da
                               loss = mean_i || pi_z(o_i) - a_i ||^2 + kl_weight * KL(q || N(0,I))
                               (i runs over the window's steps that carry an observation)
    phase 2 (latent diffusion) frozen encoder: z0 = mu(window), centred and scaled by running
                               statistics (one scale for all dims); DDPM epsilon loss of a
                               residual-MLP denoiser conditioned on the shared backbone's
                               context of the observation history o(t-To+1..t)
    closed loop              every replan_every env steps:   z ~ DDIM(p(z | o(t-To+1..t)))
                                                             weights = HyperNetwork(z)  (once)
                             every env step:                 a_t = pi_z(o_t)

The four networks live in :mod:`.networks` (the generated policy runs with batched matmuls, one set
of weights per batch element, so B envs or B x K latents run in one call). This module trains
them in the two phases, samples latents with the noise scheduler the ``diffusion`` head uses too
(:mod:`lnmdn_agents.policies.noise_scheduler`; ``config.sampler`` over ``config.spacing``'s
timesteps, "trailing" by default), and keeps the closed-loop state.

Chunks (``predict_chunk``, ``sample_chunks``) for offline metrics: the chunk starts at the first
observed step, so action ``i < To`` is ``pi_z(o(t-To+1+i))``; the future observations of steps
``i >= To`` are unknown (a reactive policy has no model to roll forward), so they are *held at the
newest observation* o(t)::

    obs window :  |o(t-1)|o(t)|
    chunk      :  |pi(o(t-1))|pi(o(t))|pi(o(t))| ... |pi(o(t))|      (T actions)
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lnmdn_agents.policies.backbone import ObservationBackbone
from lnmdn_agents.policies.base import PolicyBase, register_policy
from lnmdn_agents.policies.lwd.configuration import LWDConfig
from lnmdn_agents.policies.lwd.networks import (
    DecodedPolicy,
    HyperNetwork,
    LatentDenoiser,
    TrajectoryEncoder,
)
from lnmdn_agents.policies.noise_scheduler import NoiseScheduler

__all__ = ["LWDPolicy"]

logger = logging.getLogger(__name__)


# -- the policy ---------------------------------------------------------------------------------
@register_policy("lwd")
class LWDPolicy(PolicyBase):
    """Latent Weight Diffusion behind the :class:`~lnmdn_agents.policies.base.Policy` protocol.

    Training runs in two phases, chosen by :meth:`on_epoch_start` (called by the training loop):
    ``"autoencoder"`` (encoder + hypernetwork), then ``"latent_diffusion"`` (denoiser and the
    shared observation backbone on frozen latents). Before any call (``phase = "joint"``) both
    losses are summed, the diffusion one on detached latents.

    Closed loop (:meth:`predict`): per env, the decoded weights and the env steps since they were
    sampled are kept; a new latent is drawn (one diffusion query) when an env has none or
    ``replan_every`` steps have elapsed, and the small policy acts on the newest observation at
    every call. :meth:`reset` (``done_mask``) drops the weights of finished envs.
    """

    config_class = LWDConfig
    config: LWDConfig
    latent_mean: Tensor
    latent_std: Tensor
    latent_stats_count: Tensor

    PHASES = ("joint", "autoencoder", "latent_diffusion")

    def __init__(self, config: LWDConfig, stats: dict[str, dict[str, np.ndarray]] | None = None):
        super().__init__(config, stats)
        c = config
        self.encoder = TrajectoryEncoder(c)
        self.hypernet = HyperNetwork(c)
        self.backbone = ObservationBackbone(c)
        self.denoiser = LatentDenoiser(c)
        # Diffusion Policy's schedule (squared cosine, epsilon prediction): the scheduler and
        # sampling loop `diffusion` uses, with this config's sampler, steps and spacing.
        self.scheduler = NoiseScheduler(c.num_train_timesteps, clip_range=c.latent_clip)
        # Running standardisation of the encoder's latents (the diffusion works in unit scale).
        self.register_buffer("latent_mean", torch.zeros(c.latent_dim))
        self.register_buffer("latent_std", torch.ones(c.latent_dim))
        self.register_buffer("latent_stats_count", torch.zeros((), dtype=torch.long))
        self.phase = "joint"
        # Closed-loop state (not saved): one decoded policy per env.
        self._decoded: DecodedPolicy | None = None
        self._steps_since_replan = np.zeros(0, dtype=np.int64)
        self._needs_latent = np.zeros(0, dtype=bool)
        self.diffusion_queries = 0

    # -- training ---------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int, n_epochs: int) -> None:
        """Switch the training phase (a function of the epoch, so resuming needs no extra state).

        Entering phase 2 clears the frozen modules' gradients (so no optimiser step touches them)
        and restarts the latent statistics, which phase 1's moving encoder made stale.
        """
        phase = self.config.phase_for_epoch(epoch, n_epochs)
        if phase == "latent_diffusion":
            for module in (self.encoder, self.hypernet):
                for p in module.parameters():
                    p.grad = None
            if epoch == self.config.autoencoder_epochs(n_epochs):
                self.latent_stats_count.zero_()
        if phase != self.phase:
            logger.info("lwd: epoch %d of %d trains phase %r", epoch, n_epochs, phase)
        self.phase = phase

    def _split_window(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Validate a batch whose obs is (B, To, Do) or (B, N, Do), To <= N <= T (along horizon)."""
        c = self.config
        obs = torch.as_tensor(batch.get("obs"), dtype=torch.float32, device=self.device)
        if obs.ndim == 3 and c.n_obs_steps < obs.shape[1] <= c.horizon:
            hist = {"obs": obs[:, : c.n_obs_steps], "action": batch["action"]}
            _, action = self.check_batch(hist)
            if not torch.isfinite(obs).all():
                raise ValueError("obs contains NaN or inf; check the dataset")
            return obs, action
        return self.check_batch(batch)

    def check_obs(self, obs: Tensor | np.ndarray) -> Tensor:
        """Validate (B, To, Do) observations; a training window's (B, T, Do) gives its history.

        Windows cut for this policy hold one observation per action (``obs_along_horizon``), so
        evaluators that feed dataset windows work unchanged: only the first To are used, future
        observations are never seen at inference.
        """
        t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        c = self.config
        n_window = len(c.observation_delta_indices)
        if t.ndim == 3 and t.shape[1] == n_window > c.n_obs_steps:
            t = t[:, : c.n_obs_steps]
        return super().check_obs(t)

    def encode(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """Raw window obs (B, >=To, Do), action (B, T, Da) -> posterior mu, logvar (B, L)."""
        n = self.normalizer
        return self.encoder(
            n.normalize_obs(obs[:, : self.config.n_obs_steps]), n.normalize_action(action)
        )

    def decode(self, z: Tensor) -> DecodedPolicy:
        """Latents (B, L) -> B decoded policies (acting in normalised units)."""
        return self.hypernet(z)

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Phase-dependent loss of ``{"obs": (B, To or N, Do), "action": (B, T, Da)}`` (raw).

        ``obs`` may carry one observation per action (``N = T``, ``obs_along_horizon``); the first
        ``To`` are the history. The decoded policy is scored on every step with an observation.
        """
        c = self.config
        obs, action = self._split_window(batch)
        obs_n = self.normalizer.normalize_obs(obs)
        act_n = self.normalizer.normalize_action(action)
        metrics: dict[str, float] = {}
        loss = obs.new_zeros(())
        if self.phase in ("joint", "autoencoder"):
            # float32 from here on, also under bf16 autocast: the KL, the latent statistics
            mu, logvar = (x.float() for x in self.encoder(obs_n[:, : c.n_obs_steps], act_n))
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            n_steps = min(obs.shape[1], c.horizon)
            pred = self.decode(z)(obs_n[:, :n_steps])
            recon = F.mse_loss(pred.float(), act_n[:, :n_steps])
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
            loss = loss + recon + c.kl_weight * kl
            metrics.update({"recon_mse": recon.item(), "kl": kl.item()})
            latents = mu.detach()
        else:
            with torch.no_grad():
                latents = self.encoder(obs_n[:, : c.n_obs_steps], act_n)[0].float()
        if self.phase in ("joint", "latent_diffusion"):
            if self.training:
                self._update_latent_stats(latents)
            z0 = (latents - self.latent_mean) / self.latent_std
            noise = torch.randn_like(z0)
            t = torch.randint(0, c.num_train_timesteps, (z0.shape[0],), device=z0.device)
            context = self.backbone(obs_n[:, : c.n_obs_steps])
            eps = self.denoiser(self.scheduler.add_noise(z0, noise, t), t, context)
            diff = F.mse_loss(eps.float(), noise)
            loss = loss + diff
            metrics["diffusion_mse"] = diff.item()
        metrics["phase"] = float(self.PHASES.index(self.phase))
        return loss, metrics

    @torch.no_grad()
    def _update_latent_stats(self, latents: Tensor) -> None:
        """Running mean/std of the encoder latents: cumulative, then an EMA (momentum >= 1e-3)."""
        count = int(self.latent_stats_count.item())
        momentum = max(1.0 / (count + 1), 1e-3)
        mean = latents.mean(0)
        # One scale for all dims: a per-dim scale would blow the unused dims' jitter up to unit
        # variance and make the denoiser model noise the decoder ignores.
        if latents.shape[0] > 1:
            std = latents.var(0, unbiased=False).mean().sqrt().expand_as(self.latent_std)
        else:
            std = self.latent_std
        self.latent_mean.lerp_(mean, momentum)
        self.latent_std.lerp_(std.clamp(min=1e-3), momentum)
        self.latent_stats_count.add_(1)

    # -- sampling ---------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_latents(self, obs: Tensor, k: int = 1, *, deterministic: bool = False) -> Tensor:
        """Raw obs history (B, To, Do) -> k latents per row (B, k, L): one diffusion query each.

        The shared :class:`NoiseScheduler` runs ``config.sampler`` over ``config.spacing``'s
        timesteps. ``deterministic`` starts from x_N = 0 (the prior's mode) and adds no noise, so
        equal histories give equal latents (as the ``diffusion`` policy does).
        """
        c = self.config
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k=}")
        obs = self.check_obs(obs)
        b = obs.shape[0]
        context = self.backbone(self.normalizer.normalize_obs(obs)).repeat_interleave(k, 0)
        x = self.scheduler.sample(
            lambda z, t: self.denoiser(z, t, context),
            (b * k, c.latent_dim),
            sampler=c.sampler,
            num_inference_steps=c.num_inference_steps,
            spacing=c.spacing,
            deterministic=deterministic,
            device=obs.device,
        )
        z = x * self.latent_std + self.latent_mean
        return z.reshape(b, k, c.latent_dim)

    def act(self, policy: DecodedPolicy, obs: Tensor) -> Tensor:
        """Run decoded policies on raw observations (B, N, Do) -> raw actions (B, N, Da)."""
        out = policy(self.normalizer.normalize_obs(obs)).clamp(-1.0, 1.0)
        return self.normalizer.unnormalize_action(out)

    def _chunk_obs(self, obs: Tensor) -> Tensor:
        """(B, To, Do) -> (B, T, Do): observed steps, then the newest observation held."""
        c = self.config
        idx = torch.clamp(torch.arange(c.horizon, device=obs.device), max=c.n_obs_steps - 1)
        return obs[:, idx]

    @torch.no_grad()
    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        """(B, To, Do) raw -> (B, T, Da) raw: one sampled policy along the chunk.

        Future observations (chunk steps >= To) are held at the newest one; see the module doc.
        """
        return self._sample_chunks(obs, 1, deterministic=deterministic)[:, 0]

    @torch.no_grad()
    def sample_chunks(self, obs: Tensor, k: int) -> Tensor:
        """(B, To, Do) -> (B, k, T, Da): k latents (policies) per row, each run along the chunk."""
        return self._sample_chunks(obs, k, deterministic=False)

    def _sample_chunks(self, obs: Tensor, k: int, *, deterministic: bool) -> Tensor:
        """Shared body of :meth:`predict_chunk` and :meth:`sample_chunks`."""
        obs = self.check_obs(obs)
        b = obs.shape[0]
        z = self.sample_latents(obs, k, deterministic=deterministic).reshape(b * k, -1)
        chunk_obs = self._chunk_obs(obs).repeat_interleave(k, 0)
        actions = self.act(self.decode(z), chunk_obs)
        return actions.reshape(b, k, self.config.horizon, self.config.action_dim)

    # -- closed loop ------------------------------------------------------------------------------
    def reset(self, done_mask: np.ndarray | Tensor | None = None) -> None:
        """Forget the decoded policies of the envs where ``done_mask`` (B,) is true; None = all."""
        if done_mask is None:
            self._decoded = None
            self._steps_since_replan = np.zeros(0, dtype=np.int64)
            self._needs_latent = np.zeros(0, dtype=bool)
            return
        mask = np.asarray(
            done_mask.cpu() if isinstance(done_mask, Tensor) else done_mask, dtype=bool
        ).reshape(-1)
        if self._decoded is None:
            return
        if mask.shape[0] != self._needs_latent.shape[0]:
            raise ValueError(
                f"done_mask has {mask.shape[0]} entries but the policy tracks "
                f"{self._needs_latent.shape[0]} envs; call reset() to start over"
            )
        self._needs_latent |= mask

    @torch.no_grad()
    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3 ``PolicyPredictor``, closed loop: obs (B, To, Do) -> executed actions (B, Ta, Da).

        ::

            env step :  0   1   2  ...  R-1  R   R+1 ...          (R = replan_every, Ta = 1)
            latent   :  z0 (diffusion query) |   z1 (diffusion query)
            action   :  pi_z0(o_0) pi_z0(o_1) ... pi_z1(o_R) ...

        An env re-samples its latent when it has none (first call, after :meth:`reset` or
        ``episode_start``) or when ``replan_every`` env steps have elapsed since its latent was
        drawn; each call counts ``Ta = n_action_steps`` env steps. With ``Ta > 1`` the Ta actions
        all come from the newest observation (held), so evaluate LWD with ``n_action_steps=1``
        envs, the config default. A single observation (To, Do) gives (Ta, Da).
        """
        c = self.config
        obs_np, single = self.observation_batch(observation)
        obs = self.check_obs(obs_np)
        b = obs.shape[0]
        if self._decoded is None or self._needs_latent.shape[0] != b:
            self.reset()
            self._needs_latent = np.ones(b, dtype=bool)
            self._steps_since_replan = np.zeros(b, dtype=np.int64)
        if episode_start is not None:
            self.reset(np.asarray(episode_start, dtype=bool).reshape(-1))
        replan = self._needs_latent | (self._steps_since_replan >= c.replan_every)
        if replan.any():
            idx = torch.as_tensor(np.flatnonzero(replan), device=obs.device)
            z = self.sample_latents(obs[idx], 1, deterministic=deterministic)[:, 0]
            fresh = self.decode(z)
            self.diffusion_queries += int(idx.numel())
            if self._decoded is None:
                self._decoded = fresh
            else:
                olds = self._decoded.weights + self._decoded.biases
                for old, new in zip(olds, fresh.weights + fresh.biases, strict=True):
                    old[idx] = new
            self._steps_since_replan[replan] = 0
            self._needs_latent[replan] = False
        assert self._decoded is not None
        action = self.act(self._decoded, obs[:, -1:])  # (B, 1, Da)
        self._steps_since_replan += c.n_action_steps
        executed = action.repeat(1, c.n_action_steps, 1).cpu().numpy()
        return (executed[0] if single else executed), state

    # -- reporting --------------------------------------------------------------------------------
    def generated_policy_parameters(self) -> int:
        """Parameters of one decoded (inference-time) policy, e.g. 4,674 for Do=5, 64x64, Da=2."""
        return self.hypernet.n_params

    def policy_weights(self, z: Tensor) -> Tensor:
        """Flat weights of the policies decoded from latents (B, L) -> (B, P); for inspection."""
        d = self.decode(z)
        return torch.cat([t.flatten(1) for t in d.weights + d.biases], dim=1)
