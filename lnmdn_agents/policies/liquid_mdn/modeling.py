"""Recurrent mixture-density policies: ``liquid_mdn`` (CfC), ``lstm_mdn`` and ``gru_mdn``.

::

    obs (B, To, Do) -> normalise -> backbone tokens (B, To, d)
        -> recurrent encoder (CfC / LSTM / GRU, rnn_layers x rnn_hidden) -> summary (B, H)

    mixture="chunk" (default): one pass, no previous-action input
        summary -> MLP (2 x decoder_hidden) -> K weights, K means (T*Da), K stds (T*Da, >= min_std)
        each component is a whole trajectory; a sample picks one component, then one draw

    mixture="step" (the paper's decoder): autoregressive over the horizon
        GRU decoder, h0 = tanh(W summary):
             step t input = embed(a(t-1)) + step_embedding(t) + W' summary   (a(-1) = learned start)
             step t output -> mixture head: K weights, K means (Da), K stds (Da, >= min_std)

    chunk        :  |a(t-1)|a(t) ... a(t+14)|                   (T steps, normalised, then raw)

Both densities are exact. Chunk: ``log p(a | o) = log sum_k pi_k N(vec a; mu_k, diag sigma_k^2)``.
Step: ``log p(a | o) = sum_t log sum_k pi_k(t) N(a(t); mu_k(t), diag sigma_k(t)^2)`` evaluated
with the true previous actions (teacher forcing); sampling feeds back sampled actions,
``deterministic=True`` the most likely component's mean at each step. The step loss is
``(1 - w) * NLL_teacher_forced + w * NLL_free_running`` per action element (the free-running pass
feeds back the model's own deterministic actions, detached; ``w`` rises linearly from 0 to
``free_running_max`` over the epochs, :meth:`on_epoch_start`).

Why the head looks like this (``examples/liquid_head_ablation.py``, on
``lnmdn/pointmaze-bimodal/expert-v0``: 0.13M parameters, 30 epochs, lr 1e-3, batch 128; MSE in
normalised units on test windows; success over 50 closed-loop episodes from seeds 100000+,
deterministic / sampled). The earlier default (step
decoder, ``min_std`` 1e-3) predicted the chunk's first step no better than its mean (MSE 0.51,
where an MLP regressor on the same observations gets 0.033) and succeeded 36% / 16%; the LSTM
encoder did the same (0.66, 72% / 12%), so the cell was not the cause. The cause was the floor on
the standard deviation: the maze expert's forces are clipped at +-1 and mostly saturated, so
consecutive actions repeat exact values, and with a 1e-3 floor a component placed on the previous
action earns about +5.5 nats per element; teacher-forced NLL is then minimised by copying, and
the observation (which only the first step needs) carries a negligible share of the loss.

====================================  ===========  =======  ==========  =============
variant                               step-0 MSE   chunk     best-of-10  success
====================================  ===========  =======  ==========  =============
step, min_std 1e-3 (earlier default)  0.508        0.759    0.412       0.36 / 0.16
step, 1e-3, prev_action_dropout 0.5   0.451        0.570    0.289       1.00 / 0.54
step, min_std 0.03                    0.013        0.142    0.067       1.00 / 1.00
step, 0.03, teacher forcing only      0.019        0.465    0.097       0.14 / 0.68
chunk, min_std 1e-3                   0.511        0.475    0.184       0.96 / 0.74
chunk, min_std 0.03                   0.241        0.199    0.093       1.00 / 0.66
chunk, min_std 0.1                    0.254        0.205    0.081       1.00 / 0.98
lstm_mdn step, 0.03                   0.012        0.111    0.062       1.00 / 1.00
gru_mdn step, 0.03                    0.037        0.190    0.093       1.00 / 0.96
lstm_mdn chunk, 0.1                   0.396        0.373    0.122       0.40 / 0.58
gru_mdn chunk, 0.1                    0.278        0.315    0.110       0.98 / 0.70
diffusion (0.46M, DDIM 10)            0.015        0.075    0.024       1.00 / 1.00
====================================  ===========  =======  ==========  =============

So: a floor of a few hundredths is what makes the head read its observation (step-0 error 0.51 ->
0.013, better than the MLP regressor), the free-running share of the loss is what makes the
autoregressive decoder work in closed loop (14% -> 100% deterministic), and the chunk mixture
(whose first-step error measures the bimodal route choice of its most likely component, not a
failure to read the observation) reaches the same closed-loop success with one pass: 2-3x
the training throughput of the step decoder and no T-step loop at inference. ``mixture="chunk"``
with ``min_std`` 0.1 is therefore the default; ``mixture="step"`` with ``min_std`` 0.03 keeps the
paper's decoder. (With the chunk mixture the cell matters, on this one seed: CfC 1.00 / 0.98,
GRU 0.98 / 0.70, LSTM 0.40 / 0.58; with the step decoder all three reach 1.00.)

How many components: where the labels are a function of the state, every component the head
does not need is a trajectory it can execute by mistake. On the large maze with DART labels
(``lnmdn/pointmaze-large/expert-v2``, the ``pointmaze-large-dart`` recipe's widths, 30 epochs,
4000 test windows; validation success on 20 episodes every 5 epochs, test on 100):

====================================  ===========  ==========  ======  =============  =========
n_components                          executed     closest     goal    validation     test
                                      chunk MSE    component   read    success
====================================  ===========  ==========  ======  =============  =========
5 (the default; 150 epochs: 0.46)     0.534        0.156       0.065   0.10-0.25
5, ``mean_mse_weight`` 1              0.546        0.152       0.076   0.10-0.20
3 (15 epochs)                         0.433                    0.277   0.50-0.55
1                                     0.252        0.252       0.407   1.00           0.99
====================================  ===========  ==========  ======  =============  =========

With five, one component was close to the demonstration (0.156), but the most likely one, which
is executed, was that one only 40% of the time: the weights, not the means, failed to read the
goal. The default stays 5 for the tasks with modes (the two-route maze, Push-T); the DART maze
recipe uses 1.

``use_ema`` (off by default) averages the weights as Diffusion Policy does. On Push-T v5 (the
``pusht-dart`` recipe, 0.33M parameters, 50 epochs, two seeds) the head without it swung between
checkpoints five epochs apart (closed-loop validation score 0.79-0.95 from epoch 20 on), so the
checkpoint chosen on validation tested 0.52 and 0.57 where the last one tested 0.69 and 0.68;
with it the validation score stays within 0.86-0.92, the chosen checkpoints test 0.66 and 0.62
(last: 0.69, 0.65) and the validation NLL is lower (-1.85 against -1.82).
"""

from __future__ import annotations

import math
from typing import ClassVar, cast

import numpy as np
import torch
import torch.nn.functional as F
from ncps.torch import CfC
from torch import Tensor, nn

from lnmdn_agents.policies.backbone import ObservationBackbone
from lnmdn_agents.policies.base import PolicyBase, register_policy
from lnmdn_agents.policies.liquid_mdn.configuration import (
    GRUMDNConfig,
    LiquidMDNConfig,
    LSTMMDNConfig,
    RecurrentMDNConfig,
)

__all__ = [
    "GRUMDNPolicy",
    "LSTMMDNPolicy",
    "LiquidMDNPolicy",
    "MixtureParams",
    "RecurrentMDNPolicy",
    "mixture_log_prob",
]

_LOG_2PI = math.log(2.0 * math.pi)


class MixtureParams:
    """Per-step diagonal Gaussian mixture.

    Attributes:
        log_weights: (..., K), log-softmax of the component logits.
        means: (..., K, Da).
        stds: (..., K, Da), each >= the config's ``min_std``.
    """

    def __init__(self, log_weights: Tensor, means: Tensor, stds: Tensor):
        self.log_weights = log_weights
        self.means = means
        self.stds = stds

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density of ``x`` (..., Da) under the mixture -> (...)."""
        return mixture_log_prob(self.log_weights, self.means, self.stds, x)

    def mode_mean(self) -> Tensor:
        """The most likely component's mean (..., Da)."""
        k = self.log_weights.argmax(dim=-1)
        idx = k[..., None, None].expand(*k.shape, 1, self.means.shape[-1])
        return self.means.gather(-2, idx).squeeze(-2)

    def sample(self) -> Tensor:
        """One sample (..., Da): a component by its weight, then a Gaussian draw."""
        flat = self.log_weights.reshape(-1, self.log_weights.shape[-1])
        k = torch.multinomial(flat.exp(), 1).reshape(self.log_weights.shape[:-1])
        idx = k[..., None, None].expand(*k.shape, 1, self.means.shape[-1])
        mu = self.means.gather(-2, idx).squeeze(-2)
        sd = self.stds.gather(-2, idx).squeeze(-2)
        return mu + sd * torch.randn_like(mu)


def mixture_log_prob(log_weights: Tensor, means: Tensor, stds: Tensor, x: Tensor) -> Tensor:
    """Log-density of a diagonal Gaussian mixture, with a stable log-sum-exp over components.

    Args:
        log_weights: (..., K), normalised (``log_softmax`` of the logits).
        means: (..., K, Da).
        stds: (..., K, Da), > 0.
        x: (..., Da).

    Returns:
        (...): ``log sum_k w_k prod_d N(x_d; mu_kd, std_kd^2)``.
    """
    z = (x.unsqueeze(-2) - means) / stds
    comp = -0.5 * (z * z + _LOG_2PI) - torch.log(stds)
    return torch.logsumexp(log_weights + comp.sum(-1), dim=-1)


class RecurrentMDNPolicy(PolicyBase):
    """Shared implementation of the three recurrent MDN heads (the cell is a config field).

    Args:
        config: a :class:`RecurrentMDNConfig` subclass.
        stats: normalisation statistics (see :class:`MinMaxNormalizer`).
    """

    config_class: ClassVar[type[RecurrentMDNConfig]] = RecurrentMDNConfig
    config: RecurrentMDNConfig

    def __init__(
        self, config: RecurrentMDNConfig, stats: dict[str, dict[str, np.ndarray]] | None = None
    ):
        super().__init__(config, stats)
        c = config
        self.backbone = ObservationBackbone(c)
        if c.cell == "cfc":
            self.encoder = nn.ModuleList(
                CfC(
                    c.d_model if i == 0 else c.rnn_hidden,
                    c.rnn_hidden,
                    return_sequences=True,
                    batch_first=True,
                    backbone_units=c.cfc_backbone_units,
                    backbone_layers=c.cfc_backbone_layers,
                )
                for i in range(c.rnn_layers)
            )
        else:
            rnn = nn.LSTM if c.cell == "lstm" else nn.GRU
            self.encoder = nn.ModuleList(
                [rnn(c.d_model, c.rnn_hidden, num_layers=c.rnn_layers, batch_first=True)]
            )
        k, da, e = c.n_components, c.action_dim, c.action_embed_dim
        if c.mixture == "chunk":
            dh = c.decoder_hidden
            self.chunk_head = nn.Sequential(
                nn.Linear(c.rnn_hidden, dh),
                nn.GELU(),
                nn.Linear(dh, dh),
                nn.GELU(),
                nn.Linear(dh, k * (1 + 2 * c.horizon * da)),
            )
            self.free_running_weight = 0.0
            return
        self.init_proj = nn.Linear(c.rnn_hidden, c.decoder_hidden)
        self.cond_proj = nn.Linear(c.rnn_hidden, e)
        self.action_embed = nn.Linear(da, e)
        self.start_embed = nn.Parameter(torch.zeros(e))
        self.step_embed = nn.Parameter(torch.randn(c.horizon, e) * 0.02)
        self.decoder = nn.GRU(e, c.decoder_hidden, batch_first=True)
        self.head = nn.Linear(c.decoder_hidden, k * (1 + 2 * da))
        self.free_running_weight = 0.0

    # -- building blocks ------------------------------------------------------------------------
    def encode(self, obs_n: Tensor) -> Tensor:
        """Normalised obs (B, To, Do) -> summary (B, rnn_hidden)."""
        x = self.backbone.tokens(obs_n)
        for layer in self.encoder:
            x = layer(x)[0]
        return x[:, -1]

    def _mixture(self, h: Tensor) -> MixtureParams:
        """Decoder features (..., decoder_hidden) -> mixture parameters."""
        k, da = self.config.n_components, self.config.action_dim
        out = self.head(h).float()  # densities in float32, also under bf16 autocast
        logits, mean, raw_std = out.split([k, k * da, k * da], dim=-1)
        shape = (*h.shape[:-1], k, da)
        stds = self.config.min_std + F.softplus(raw_std.reshape(shape))
        return MixtureParams(F.log_softmax(logits, dim=-1), mean.reshape(shape), stds)

    def chunk_mixture(self, summary: Tensor) -> MixtureParams:
        """``mixture="chunk"``: summary (B, H) -> one mixture over flattened chunks (B, K, T*Da)."""
        c = self.config
        k, n = c.n_components, c.horizon * c.action_dim
        out = self.chunk_head(summary).float()  # densities in float32, also under bf16 autocast
        logits, mean, raw_std = out.split([k, k * n, k * n], dim=-1)
        shape = (*summary.shape[:-1], k, n)
        stds = c.min_std + F.softplus(raw_std.reshape(shape))
        return MixtureParams(F.log_softmax(logits, dim=-1), mean.reshape(shape), stds)

    def _decoder_init(self, summary: Tensor) -> tuple[Tensor, Tensor]:
        return torch.tanh(self.init_proj(summary)), self.cond_proj(summary)

    def teacher_forced(self, summary: Tensor, action_n: Tensor) -> MixtureParams:
        """Mixtures for every step given the true previous actions: action_n (B, T, Da)."""
        h0, cond = self._decoder_init(summary)
        b = action_n.shape[0]
        start = self.start_embed.expand(b, 1, -1)
        prev = torch.cat([start, self.action_embed(action_n[:, :-1])], dim=1)
        p = self.config.prev_action_dropout
        if self.training and p > 0:
            drop = torch.rand(b, prev.shape[1], 1, device=prev.device) < p
            prev = torch.where(drop, start.expand_as(prev), prev)
        x = prev + self.step_embed + cond[:, None]
        out, _ = self.decoder(x, h0[None].contiguous())
        return self._mixture(out)

    def decode(
        self, summary: Tensor, mode: str, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Decode a chunk: one pass (``mixture="chunk"``) or one GRU step at a time (``"step"``).

        Args:
            summary: (B, rnn_hidden).
            mode: ``"mode"`` (feed back the most likely component's mean) or ``"sample"``.
            targets: optional normalised actions (B, T, Da) to score under each step's mixture.

        Returns:
            actions (B, T, Da) normalised, and the log-density of ``targets`` (B,) if given.
        """
        c = self.config
        if c.mixture == "chunk":
            chunk_mix = self.chunk_mixture(summary)
            flat = chunk_mix.mode_mean() if mode == "mode" else chunk_mix.sample()
            chunk_logp = chunk_mix.log_prob(targets.flatten(1)) if targets is not None else None
            return flat.reshape(-1, c.horizon, c.action_dim), chunk_logp
        h, cond = self._decoder_init(summary)
        g = self.decoder
        weights = cast(
            tuple[Tensor, Tensor, Tensor, Tensor],
            (g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0),
        )
        b = summary.shape[0]
        inp = self.start_embed.expand(b, -1)
        actions, logp = [], []
        for t in range(self.config.horizon):
            x = inp + self.step_embed[t] + cond
            h = torch.gru_cell(x, h, *weights)
            mix = self._mixture(h)
            a = mix.mode_mean() if mode == "mode" else mix.sample()
            if targets is not None:
                logp.append(mix.log_prob(targets[:, t]))
                a = a.detach()
            actions.append(a)
            inp = self.action_embed(a)
        total = torch.stack(logp, 1).sum(1) if targets is not None else None
        return torch.stack(actions, dim=1), total

    # -- protocol -------------------------------------------------------------------------------
    def on_epoch_start(self, epoch: int, n_epochs: int) -> None:
        """Shift the loss towards free-running decoding: weight 0 at epoch 0, max at the last."""
        frac = epoch / max(1, n_epochs - 1)
        self.free_running_weight = self.config.free_running_max * min(1.0, max(0.0, frac))

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """The loss per action element (see the module doc).

        Chunk mixture: its NLL, plus ``mean_mse_weight`` x the winner-takes-all MSE of its
        component means. Step decoder: the teacher-forced / free-running NLL mix.
        """
        obs, action = self.check_batch(batch)
        obs_n = self.normalizer.normalize_obs(obs)
        act_n = self.normalizer.normalize_action(action)
        summary = self.encode(obs_n)
        n_el = self.config.horizon * self.config.action_dim
        if self.config.mixture == "chunk":
            mix = self.chunk_mixture(summary)
            target = act_n.flatten(1)
            nll = -mix.log_prob(target).mean() / n_el
            w = self.config.mean_mse_weight
            if w == 0:
                return nll, {"nll": float(nll.detach())}
            # winner-takes-all: the closest component's mean, per chunk (B, K, T*Da) -> (B,)
            mse = (mix.means - target[:, None]).square().mean(-1).min(-1).values.mean()
            loss = nll + w * mse
            return loss, {"nll": float(nll.detach()), "mean_mse": float(mse.detach())}
        nll_tf = -self.teacher_forced(summary, act_n).log_prob(act_n).sum(1).mean() / n_el
        w = self.free_running_weight
        metrics = {"nll_teacher_forced": float(nll_tf.detach()), "free_running_weight": w}
        loss = nll_tf
        if w > 0:
            _, logp = self.decode(summary, "mode", targets=act_n)
            assert logp is not None
            nll_fr = -logp.mean() / n_el
            loss = (1.0 - w) * nll_tf + w * nll_fr
            metrics["nll_free_running"] = float(nll_fr.detach())
        return loss, metrics

    @torch.no_grad()
    def log_prob(self, obs: Tensor, action: Tensor) -> Tensor:
        """Exact log-density (B,) of the normalised chunk ``action`` (B, T, Da, raw units in)."""
        obs_t, act = self.check_batch({"obs": obs, "action": action})
        summary = self.encode(self.normalizer.normalize_obs(obs_t))
        act_n = self.normalizer.normalize_action(act)
        if self.config.mixture == "chunk":
            return self.chunk_mixture(summary).log_prob(act_n.flatten(1))
        return self.teacher_forced(summary, act_n).log_prob(act_n).sum(1)

    @torch.no_grad()
    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        """(B, To, Do) raw observations -> (B, T, Da) raw actions."""
        summary = self.encode(self.normalizer.normalize_obs(self.check_obs(obs)))
        actions, _ = self.decode(summary, "mode" if deterministic else "sample")
        return self.normalizer.unnormalize_action(actions)

    @torch.no_grad()
    def sample_chunks(self, obs: Tensor, k: int) -> Tensor:
        """(B, To, Do) -> (B, k, T, Da): k samples per observation, decoded as one batch."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be an integer >= 1, got {k=}")
        summary = self.encode(self.normalizer.normalize_obs(self.check_obs(obs)))
        b = summary.shape[0]
        actions, _ = self.decode(summary.repeat_interleave(k, dim=0), "sample")
        return self.normalizer.unnormalize_action(actions).reshape(b, k, *actions.shape[1:])


@register_policy("liquid_mdn")
class LiquidMDNPolicy(RecurrentMDNPolicy):
    """CfC (liquid) encoder + autoregressive GRU decoder + mixture density head."""

    config_class: ClassVar[type[RecurrentMDNConfig]] = LiquidMDNConfig


@register_policy("lstm_mdn")
class LSTMMDNPolicy(RecurrentMDNPolicy):
    """LSTM encoder ablation of :class:`LiquidMDNPolicy` (robomimic BC-RNN-GMM analogue)."""

    config_class: ClassVar[type[RecurrentMDNConfig]] = LSTMMDNConfig


@register_policy("gru_mdn")
class GRUMDNPolicy(RecurrentMDNPolicy):
    """GRU encoder ablation of :class:`LiquidMDNPolicy`."""

    config_class: ClassVar[type[RecurrentMDNConfig]] = GRUMDNConfig
