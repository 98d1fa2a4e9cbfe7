"""The networks of Latent Weight Diffusion (``lwd``); :mod:`.modeling` trains and samples them.

Phase 1 (auto-encoder): :class:`TrajectoryEncoder` maps a demonstration window to q(z | window);
:class:`HyperNetwork` maps z to the weights of a small MLP policy, a :class:`DecodedPolicy` that
runs B policies (one per latent) with batched matmuls. Phase 2 (latent diffusion):
:class:`LatentDenoiser` predicts the noise on a standardised latent, conditioned on the shared
backbone's context. Plain parts: no training phases, no sampling, no closed-loop state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lnmdn_agents.policies.lwd.configuration import LWDConfig
from lnmdn_agents.policies.noise_scheduler import SinusoidalPosEmb

__all__ = ["DecodedPolicy", "HyperNetwork", "LatentDenoiser", "TrajectoryEncoder"]

_LOGVAR_RANGE = (-10.0, 4.0)


def _mlp(in_dim: int, hidden: int, layers: int, out_dim: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers):
        mods += [nn.Linear(d, hidden), nn.SiLU()]
        d = hidden
    mods.append(nn.Linear(d, out_dim))
    return nn.Sequential(*mods)


# -- the generated policy -----------------------------------------------------------------------
@dataclass
class DecodedPolicy:
    """Weights of B small MLP policies, one per latent, as produced by :class:`HyperNetwork`.

    Attributes:
        weights: per layer (B, out, in).
        biases: per layer (B, out).
        activation: hidden nonlinearity name.
    """

    weights: list[Tensor]
    biases: list[Tensor]
    activation: str

    @property
    def batch_size(self) -> int:
        """B, the number of policies."""
        return self.weights[0].shape[0]

    def __call__(self, obs: Tensor) -> Tensor:
        """Normalised obs (B, N, Do) -> normalised actions (B, N, Da); policy b acts on row b."""
        act = {"relu": torch.relu, "tanh": torch.tanh, "silu": F.silu}[self.activation]
        x = obs
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
            if i < last:
                x = act(x)
        return x

    def select(self, index: Tensor | slice) -> DecodedPolicy:
        """The policies at ``index`` (along B)."""
        return DecodedPolicy(
            [w[index] for w in self.weights], [b[index] for b in self.biases], self.activation
        )

    def num_parameters(self) -> int:
        """Parameters of one generated policy."""
        pairs = zip(self.weights, self.biases, strict=True)
        return sum(w[0].numel() + b[0].numel() for w, b in pairs)


class HyperNetwork(nn.Module):
    """Latent z (B, L) -> weights of a small MLP policy Do -> H -> ... -> H -> Da (batched).

    The flat parameter vector is ``base + scale * head(trunk(z))``: ``base`` is a learned,
    latent-independent policy initialised like ``nn.Linear``; ``scale`` (1/sqrt(fan_in) per
    parameter) keeps every generated layer at its usual magnitude whatever its fan-in.
    """

    param_scale: Tensor

    def __init__(self, config: LWDConfig):
        super().__init__()
        c = config
        dims = [c.obs_dim] + [c.policy_hidden_dim] * c.policy_layers + [c.action_dim]
        self.shapes = [(dims[i + 1], dims[i]) for i in range(len(dims) - 1)]
        self.activation = c.policy_activation
        self.n_params = sum(o * i + o for o, i in self.shapes)
        self.trunk = nn.Sequential(
            *[
                m
                for k in range(c.hyper_layers)
                for m in (
                    nn.Linear(c.latent_dim if k == 0 else c.hyper_hidden_dim, c.hyper_hidden_dim),
                    nn.SiLU(),
                )
            ]
        )
        self.head = nn.Linear(c.hyper_hidden_dim, self.n_params)
        base, scale = [], []
        for out_f, in_f in self.shapes:
            layer = nn.Linear(in_f, out_f)
            base += [layer.weight.detach().reshape(-1), layer.bias.detach()]
            scale.append(torch.full((out_f * in_f + out_f,), 1.0 / math.sqrt(in_f)))
        self.base = nn.Parameter(torch.cat(base))
        self.register_buffer("param_scale", torch.cat(scale), persistent=False)

    def forward(self, z: Tensor) -> DecodedPolicy:
        """(B, L) latents -> B decoded policies."""
        flat = self.base + self.param_scale * self.head(self.trunk(z))
        weights, biases, pos = [], [], 0
        for out_f, in_f in self.shapes:
            weights.append(flat[:, pos : pos + out_f * in_f].reshape(-1, out_f, in_f))
            pos += out_f * in_f
            biases.append(flat[:, pos : pos + out_f])
            pos += out_f
        return DecodedPolicy(weights, biases, self.activation)


class TrajectoryEncoder(nn.Module):
    """Window (To observations, T actions), normalised -> q(z | window) = N(mu, exp(logvar))."""

    def __init__(self, config: LWDConfig):
        super().__init__()
        c = config
        in_dim = c.n_obs_steps * c.obs_dim + c.horizon * c.action_dim
        self.net = _mlp(in_dim, c.encoder_hidden_dim, c.encoder_layers, 2 * c.latent_dim)

    def forward(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        """Window obs (B, To, Do), action (B, T, Da) -> mu (B, L), logvar (B, L)."""
        h = self.net(torch.cat([obs.flatten(1), action.flatten(1)], dim=1))
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(*_LOGVAR_RANGE)


# -- latent diffusion ---------------------------------------------------------------------------
class _ResBlock(nn.Module):
    def __init__(self, dim: int, cond: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.film = nn.Linear(cond, 2 * dim)
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        scale, shift = self.film(c).chunk(2, dim=-1)
        return x + self.net(self.norm(x) * (1 + scale) + shift)


class LatentDenoiser(nn.Module):
    """Residual MLP with FiLM conditioning: (z_t (B, L), t (B,), context (B, C)) -> eps (B, L)."""

    def __init__(self, config: LWDConfig):
        super().__init__()
        c = config
        h = c.denoiser_hidden_dim
        self.t_dim = 64
        self.t_embed = SinusoidalPosEmb(self.t_dim)  # the `diffusion` head's embedding
        self.cond = nn.Sequential(nn.Linear(self.t_dim + c.d_model, h), nn.SiLU(), nn.Linear(h, h))
        self.inp = nn.Linear(c.latent_dim, h)
        self.blocks = nn.ModuleList([_ResBlock(h, h) for _ in range(c.denoiser_blocks)])
        self.out = nn.Sequential(nn.LayerNorm(h), nn.SiLU(), nn.Linear(h, c.latent_dim))

    def forward(self, z: Tensor, t: Tensor, context: Tensor) -> Tensor:
        """Predict the noise added to ``z``."""
        c = self.cond(torch.cat([self.t_embed(t), context], dim=-1))
        x = self.inp(z)
        for block in self.blocks:
            x = block(x, c)
        return self.out(x)
