"""The policy protocol, the shared config fields, and the registry.

Every policy maps an observation history to an action chunk::

    obs window   :  |o(t-1)|o(t)|                               (To = n_obs_steps)
    action chunk :  |a(t-1)|a(t) ... a(t+14)|                   (T = horizon, starts at t-To+1)
    executed     :         |a(t) ... a(t+7)|                    (Ta = n_action_steps, from To-1)

The chunk starts at the first observed step, as in Diffusion Policy and LeRobot, so the executed
actions are ``chunk[:, To-1 : To-1+Ta]`` and ``Ta <= T - To + 1``.

Evaluators depend on :class:`Policy` (a Protocol), not on a base class. :class:`PolicyBase` is a
convenience the built-in policies share: input checks, SB3's ``predict``, the normaliser. A policy
whose training changes with the epoch also implements :class:`TrainingHooks` (a Protocol too).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn

from lnmdn_agents.config_fields import check_field_types, check_ints
from lnmdn_agents.policies.normalizer import MinMaxNormalizer
from lnmdn_envs.suggest import did_you_mean

__all__ = [
    "Policy",
    "PolicyBase",
    "PolicyConfig",
    "TrainingHooks",
    "available_policies",
    "config_from_dict",
    "get_policy_class",
    "make_policy",
    "register_policy",
]


@dataclass
class PolicyConfig:
    """Fields every policy shares. Subclasses add their own (documented) fields.

    Attributes:
        obs_dim: Do, per-step observation size.
        action_dim: Da, per-step action size.
        n_obs_steps: To, observations of history the policy conditions on.
        horizon: T, actions predicted per chunk (the chunk starts at the first observed step).
        n_action_steps: Ta, actions executed per chunk, from index ``To - 1``.
    """

    name: ClassVar[str] = ""
    obs_dim: int = 5
    action_dim: int = 2
    n_obs_steps: int = 2
    horizon: int = 16
    n_action_steps: int = 8

    def __post_init__(self) -> None:
        check_field_types(self)  # every field of every policy config, named when wrong
        check_ints(self, "obs_dim", "action_dim", "n_obs_steps", "horizon", "n_action_steps")
        if self.n_action_steps > self.horizon - self.n_obs_steps + 1:
            raise ValueError(
                "n_action_steps must be <= horizon - n_obs_steps + 1, got "
                f"{self.n_action_steps=}, {self.horizon=}, {self.n_obs_steps=}"
            )

    @property
    def observation_delta_indices(self) -> list[int]:
        """Offsets of the observations a window holds, relative to the current step t."""
        return list(range(1 - self.n_obs_steps, 1))

    @property
    def input_obs_steps(self) -> int:
        """Observations the model's input holds: To, or more when a config's window is longer.

        ``check_obs`` takes ``(B, input_obs_steps, Do)``; a longer window (``obs_window =
        "horizon"``, the liquid-MDN paper's protocol) also takes the live ``(B, To, Do)`` history
        and fills the steps after the current one with the current observation.
        """
        return self.n_obs_steps

    @property
    def action_delta_indices(self) -> list[int]:
        """Offsets of the actions a window holds, relative to the current step t."""
        return list(range(1 - self.n_obs_steps, 1 - self.n_obs_steps + self.horizon))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the registry ``name`` first."""
        return {"name": self.name, **dataclasses.asdict(self)}


@runtime_checkable
class Policy(Protocol):
    """What evaluators and training rely on. Shapes use B, To, T, Ta, Do, Da, K."""

    config: PolicyConfig

    def reset(self, done_mask: np.ndarray | Tensor | None = None) -> None:
        """Reset recurrent state for the envs where ``done_mask`` (B,) is true; None = all."""

    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        """(B, To, Do) raw observations -> (B, T, Da) raw actions."""
        ...

    def sample_chunks(self, obs: Tensor, k: int) -> Tensor:
        """(B, To, Do) -> (B, k, T, Da): k independent samples, for best-of-K metrics."""
        ...

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """Training loss of a batch ``{"obs": (B, To, Do), "action": (B, T, Da)}`` (raw units)."""
        ...

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3 `PolicyPredictor`: obs (B, To, Do) or (To, Do) -> executed actions (B, Ta, Da)."""
        ...


@runtime_checkable
class TrainingHooks(Protocol):
    """Optional methods through which a policy takes part in its own training.

    The trainer checks ``isinstance(policy, TrainingHooks)`` and, when it holds, calls them; a
    policy without them is trained on its ``compute_loss`` alone. Implement them as plain methods
    (no base class needed): ``liquid_mdn`` schedules its free-running loss share with
    :meth:`on_epoch_start`, ``lwd`` switches its training phase.

    An EMA of the weights is not a hook but configuration: a policy config with the fields of
    :class:`lnmdn_agents.training.ema.EMAFields` asks for one (``diffusion`` does).
    """

    def on_epoch_start(self, epoch: int, n_epochs: int) -> None:
        """Called before the first optimiser step of epoch ``epoch`` (0-based) of ``n_epochs``.

        Also called on the EMA copy of the policy, when the run keeps one. A resumed run calls it
        only from the epoch it resumes at, so the state it sets must follow from ``(epoch,
        n_epochs)`` alone; an extended run (``--resume --epochs N``) calls it with the new
        ``n_epochs``.
        """


class PolicyBase(nn.Module):
    """Shared plumbing for the built-in policies (not required by the protocol).

    Subclasses implement :meth:`predict_chunk`, :meth:`sample_chunks`, :meth:`compute_loss` and
    may override :meth:`reset`. The normaliser maps raw observations and actions to [-1, 1]
    per dimension; its statistics are buffers, saved with the weights.
    """

    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    #: True when ``log_prob`` (density models only) returns a lower bound, not the exact density.
    log_prob_is_bound: ClassVar[bool] = False

    def __init__(self, config: PolicyConfig, stats: dict[str, dict[str, np.ndarray]] | None = None):
        super().__init__()
        self.config = config
        self.normalizer = MinMaxNormalizer(config.obs_dim, config.action_dim, stats)

    # -- input checks ---------------------------------------------------------------------------
    def check_obs(self, obs: Tensor | np.ndarray) -> Tensor:
        """Validate an observation batch (B, To, Do) and return it as a float tensor.

        A config whose window is longer than the history (``input_obs_steps`` N > To) takes a
        dataset window (B, N, Do) as it is, and a live history (B, To, Do) completed to N steps by
        repeating the current observation: at act time no later observation exists, and a
        window at a demonstration's end is padded the same way.
        """
        c = self.config
        n_in = c.input_obs_steps
        t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        if n_in > c.n_obs_steps and t.ndim == 3 and t.shape[1] == c.n_obs_steps:
            t = torch.cat([t, t[:, -1:].expand(-1, n_in - c.n_obs_steps, -1)], dim=1)
        if t.ndim != 3 or t.shape[1] != n_in or t.shape[2] != c.obs_dim:
            window = f"(B, To, Do) = (B, {c.n_obs_steps}, {c.obs_dim})"
            if n_in > c.n_obs_steps:
                window += f" or (B, {n_in}, {c.obs_dim}) (the config's whole window)"
            raise ValueError(
                f"obs must have shape {window}, got {tuple(t.shape)}. Build the env with "
                f"n_obs_steps={c.n_obs_steps}."
            )
        if not torch.isfinite(t).all():
            bad = (~torch.isfinite(t)).nonzero()[0].tolist()
            raise ValueError(f"obs contains NaN or inf (first at index {bad}); check the env.")
        return t

    def check_batch(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """Validate a training batch and return (obs (B, To, Do), action (B, T, Da))."""
        c = self.config
        if "obs" not in batch or "action" not in batch:
            raise KeyError(f"batch needs keys 'obs' and 'action', got {sorted(batch)}")
        obs = self.check_obs(batch["obs"])
        action = torch.as_tensor(batch["action"], dtype=torch.float32, device=self.device)
        if action.shape != (obs.shape[0], c.horizon, c.action_dim):
            raise ValueError(
                f"action must have shape (B, T, Da) = ({obs.shape[0]}, {c.horizon}, "
                f"{c.action_dim}), got {tuple(action.shape)}"
            )
        return obs, action

    @property
    def device(self) -> torch.device:
        """Device of the policy's parameters (CPU for a parameter-free policy)."""
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    # -- protocol defaults ----------------------------------------------------------------------
    def reset(self, done_mask: np.ndarray | Tensor | None = None) -> None:
        """Stateless by default: nothing to reset."""
        del done_mask

    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        """(B, To, Do) -> (B, T, Da); see :class:`Policy`."""
        raise NotImplementedError

    def sample_chunks(self, obs: Tensor, k: int) -> Tensor:
        """(B, To, Do) -> (B, k, T, Da); default: k stochastic calls of ``predict_chunk``."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k=}")
        return torch.stack([self.predict_chunk(obs) for _ in range(k)], dim=1)

    def compute_loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """See :class:`Policy`."""
        raise NotImplementedError

    def forward(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        """``compute_loss``, as the module's forward (so DistributedDataParallel can wrap it)."""
        return self.compute_loss(batch)

    @staticmethod
    def observation_batch(observation: np.ndarray) -> tuple[np.ndarray, bool]:
        """``predict``'s input as a batch (B, To, Do), and whether it was a single (To, Do).

        Raises:
            ValueError: ``observation`` is the ``(obs, info)`` tuple that ``env.reset()`` returns.
        """
        if (
            isinstance(observation, tuple)
            and len(observation) == 2
            and isinstance(observation[1], dict)
        ):
            raise ValueError(
                "predict got the (obs, info) tuple returned by env.reset(); "
                "pass obs only: obs, info = env.reset(); policy.predict(obs)"
            )
        obs = np.asarray(observation)
        single = obs.ndim == 2
        return (obs[None] if single else obs), single

    @torch.no_grad()
    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """SB3 ``PolicyPredictor``: observation (B, To, Do) -> executed actions (B, Ta, Da).

        A single observation (To, Do) gives (Ta, Da). ``episode_start`` (B,) resets recurrent
        state of the envs that start a new episode.
        """
        obs, single = self.observation_batch(observation)
        if episode_start is not None and np.any(episode_start):
            self.reset(np.asarray(episode_start, dtype=bool).reshape(-1))
        chunk = self.predict_chunk(torch.as_tensor(obs), deterministic=deterministic)
        start = self.config.n_obs_steps - 1
        executed = chunk[:, start : start + self.config.n_action_steps].cpu().numpy()
        return (executed[0] if single else executed), state

    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


# -- registry -----------------------------------------------------------------------------------
_REGISTRY: dict[str, type[PolicyBase]] = {}
P = TypeVar("P", bound=type[PolicyBase])


def register_policy(name: str) -> Callable[[P], P]:
    """Class decorator: register a policy under ``name`` (also its config's ``name``)."""

    def wrap(cls: P) -> P:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"policy name {name!r} is already registered by {_REGISTRY[name]}")
        cls.config_class.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def available_policies() -> list[str]:
    """Names of the registered policies, sorted."""
    return sorted(_REGISTRY)


def get_policy_class(name: str) -> type[PolicyBase]:
    """Return the policy class registered as ``name``; unknown names list the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        hint = did_you_mean(name, _REGISTRY)
        raise KeyError(
            f"unknown policy {name!r}.{hint} Available policies: {available_policies()}"
        ) from None


def config_from_dict(data: dict[str, Any]) -> PolicyConfig:
    """Build a policy config from ``config.json`` content (``{"name": ..., **fields}``)."""
    data = dict(data)
    name = data.pop("name", None)
    if not isinstance(name, str):
        raise ValueError(f"policy config needs a string 'name', got {name!r}")
    cls = get_policy_class(name).config_class
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} for policy {name!r}; known: {sorted(known)}")
    return cls(**data)


def make_policy(
    name: str,
    config: PolicyConfig | None = None,
    stats: dict[str, dict[str, np.ndarray]] | None = None,
    **overrides: Any,
) -> PolicyBase:
    """Construct a registered policy.

    Args:
        name: registry key, e.g. ``"liquid_mdn"``.
        config: a full config; default: the policy's defaults.
        stats: normalisation statistics ``{"obs": {"min", "max"}, "action": {"min", "max"}}``.
        **overrides: config fields to change (``obs_dim=23, action_dim=7``).
    """
    cls = get_policy_class(name)
    if config is None:
        config = cls.config_class(**overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    if not isinstance(config, cls.config_class):
        raise TypeError(
            f"policy {name!r} needs a {cls.config_class.__name__}, got {type(config).__name__}"
        )
    return cls(config, stats)
