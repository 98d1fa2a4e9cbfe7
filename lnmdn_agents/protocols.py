"""The two evaluation protocols: ``standard`` (lnmdn's) and ``reference`` (the liquid-MDN paper's).

A protocol fixes what a policy's observation window holds and how demonstrations are split into
train / validation / test; the metrics are the same under both::

    standard :  obs |o(t-1)|o(t)|                              To past observations
                split by episode (70/15/15): no demonstration on two sides
    reference:  obs |o(t-1)|o(t)|o(t+1) ... o(t+14)|           one observation per action
                split by window (70/15/15, at random): overlapping windows of one
                demonstration fall in train and in test

The reference protocol reproduces the paper's notebooks (``correll/liquidnets``,
``01_training.ipynb``): the observation window is cut with the action window, so a chunk's
observations include the ones after the current step, which the actions determine closely (on
Push-T the action is the agent's next position). A bidirectional transformer encodes the window;
the paper's liquid head reads step t's encoding at step t, its diffusion head the mean over the
window (here: the CfC stack reads the tokens in order, the diffusion head the mean;
:mod:`lnmdn_agents.policies.backbone`). A policy takes the longer window through its config
(``obs_window="horizon"``), never through the evaluator.

In closed loop no observation after the current step exists. A reference-trained policy gets its
To past observations, and the window's later steps are filled with the current observation
(``PolicyBase.check_obs``), as at the end of a demonstration. The paper's closed-loop notebook
(``04_pusht_closedloop.ipynb``) instead rolls out a separate model that reads the 2 past
observations, from states of validation windows (:mod:`lnmdn_agents.evaluation.starts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PROTOCOLS", "Protocol", "get_protocol", "protocol_overrides"]


@dataclass(frozen=True)
class Protocol:
    """One protocol.

    Attributes:
        name: ``"standard"`` or ``"reference"``.
        obs_window: the policy config's ``obs_window`` under it.
        split_unit: :func:`lnmdn_agents.data.make_splits`' ``split_unit``.
        label: how tables and figures name it.
    """

    name: str
    obs_window: str
    split_unit: str
    label: str


PROTOCOLS: dict[str, Protocol] = {
    "standard": Protocol("standard", "history", "episode", "standard (To past obs, episode split)"),
    "reference": Protocol(
        "reference", "horizon", "window", "reference (obs over the horizon, window split)"
    ),
}


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    try:
        return PROTOCOLS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown protocol {name!r}; known: {sorted(PROTOCOLS)}") from None


def protocol_overrides(name: str, policy: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with the protocol's ``obs_window`` set, checked against the policy.

    Raises:
        ValueError: ``overrides`` sets another ``obs_window``, or the policy's config has no
            ``obs_window`` or refuses the protocol's (``lwd``).
    """
    import dataclasses

    from lnmdn_agents.policies import get_policy_class

    protocol = get_protocol(name)
    given = overrides.get("obs_window", protocol.obs_window)
    if given != protocol.obs_window:
        raise ValueError(
            f"policy override obs_window={given!r} contradicts protocol {name!r} (which sets "
            f"obs_window={protocol.obs_window!r}); drop the override or pick the other protocol"
        )
    cls = get_policy_class(policy).config_class
    if "obs_window" not in {f.name for f in dataclasses.fields(cls)}:
        if protocol.obs_window == "history":
            return dict(overrides)
        raise ValueError(f"policy {policy!r} has no obs_window field; use protocol 'standard'")
    if protocol.obs_window != "history":
        window: dict[str, Any] = {"obs_window": protocol.obs_window}
        cls(**window)  # a config that refuses it says why (lwd)
    return {**overrides, "obs_window": protocol.obs_window}
