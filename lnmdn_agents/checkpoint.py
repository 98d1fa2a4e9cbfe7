"""Policy checkpoints: ``config.json`` + ``model.safetensors``, written atomically, no pickle.

Loading an untrusted checkpoint runs no code: JSON and safetensors hold data only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lnmdn_agents.policies.base import PolicyBase, config_from_dict, get_policy_class

# The project's one atomic-write helper lives in the lowest layer; these names stay importable
# from here, where they used to be defined.
from lnmdn_envs.atomic import atomic_path, atomic_write_bytes, atomic_write_text, current_umask

__all__ = [
    "BEST_DIR",
    "atomic_write_bytes",
    "atomic_write_text",
    "current_umask",
    "load_policy",
    "policy_metadata",
    "save_policy",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
BEST_DIR = "best"
"""Folder of a run folder that holds the checkpoint closed-loop validation selected."""


def save_policy(
    policy: PolicyBase, directory: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Save ``policy`` as ``directory/config.json`` + ``directory/model.safetensors``.

    Args:
        policy: a registered policy.
        directory: output folder (created).
        extra: JSON-serialisable metadata stored in the safetensors header (strings only).

    Returns:
        The folder.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()}
    metadata = {k: json.dumps(v) for k, v in (extra or {}).items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata=metadata or None)
    atomic_write_text(directory / CONFIG_NAME, json.dumps(policy.config.to_dict(), indent=2) + "\n")
    return directory


def policy_metadata(directory: str | Path) -> dict[str, Any]:
    """The ``extra`` that :func:`save_policy` stored with the weights (decoded from JSON)."""
    from safetensors import safe_open

    with safe_open(str(Path(directory) / WEIGHTS_NAME), framework="pt") as f:
        stored = f.metadata() or {}
    return {k: json.loads(v) for k, v in stored.items()}


def load_policy(directory: str | Path, map_location: str | torch.device = "cpu") -> PolicyBase:
    """Load a policy saved by :func:`save_policy` (or a training run folder).

    Raises:
        FileNotFoundError: the folder has no ``config.json`` / ``model.safetensors``.
        ValueError: the files are corrupted or do not match the config.
    """
    directory = Path(directory)
    cfg_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for p in (cfg_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(
                f"{p} not found: a policy folder holds {CONFIG_NAME} and {WEIGHTS_NAME} "
                "(written by lnmdn train or lnmdn_agents.save_policy)"
            )
    try:
        data = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{cfg_path} is not valid JSON ({err}); the checkpoint is corrupted"
        ) from err
    config = config_from_dict(data)
    policy = get_policy_class(config.name)(config)
    try:
        state = load_file(str(weights_path), device=str(map_location))
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(
            f"{weights_path} could not be read ({err}); the checkpoint is corrupted or truncated"
        ) from err
    try:
        missing, unexpected = policy.load_state_dict(state, strict=False)
    except RuntimeError as err:  # tensor shapes differ from what the config builds
        first = str(err).split("\n\t")[1:2]
        raise ValueError(
            f"{weights_path} does not match {config.name!r} with {cfg_path}: {first}; "
            "the config and the weights come from different runs"
        ) from None
    if missing or unexpected:
        raise ValueError(
            f"{weights_path} does not match {config.name!r} with {cfg_path}: "
            f"missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}"
        )
    policy.to(map_location)
    policy.eval()
    return policy
