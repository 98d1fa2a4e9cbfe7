"""Converters from public demonstration formats into Minari datasets of the lnmdn tasks.

* :func:`convert_pusht_zarr`: Diffusion Policy's Push-T replay buffer
  (``pusht_cchi_v7_replay.zarr``, zarr v2): ``data/state`` (N, 5) = agent x, y, block x, y,
  angle; ``data/action`` (N, 2); ``data/keypoint`` (N, 9, 2); ``meta/episode_ends`` (E,)
  cumulative step counts.
* :func:`convert_robomimic_hdf5`: robomimic v1.5 low-dim hdf5 (``can/ph/low_dim_v15.hdf5``):
  ``data/demo_N/{obs/<key>, next_obs/<key>, actions, states, rewards, dones}``, ``data`` attribute
  ``env_args`` (JSON), ``mask/train`` and ``mask/valid``.

Both write with :func:`lnmdn_datasets.minari_io.write_dataset` (atomic), against the single-step
task env (``lnmdn/PushT-v0``, ``lnmdn/Can-v0``) so ``recover_environment()`` works.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from lnmdn_datasets.episodes import EpisodeRecord
from lnmdn_datasets.minari_io import write_dataset

__all__ = ["CAN_OBS_KEYS", "convert_pusht_zarr", "convert_robomimic_hdf5", "pusht_coverage"]

logger = logging.getLogger(__name__)

#: robomimic low-dim keys, in the order of the lnmdn/Can-v0 observation (23 = 14 + 3 + 4 + 2).
CAN_OBS_KEYS: tuple[tuple[str, int], ...] = (
    ("object", 14),
    ("robot0_eef_pos", 3),
    ("robot0_eef_quat", 4),
    ("robot0_gripper_qpos", 2),
)


def pusht_coverage(states: np.ndarray) -> np.ndarray:
    """Coverage of the Push-T goal by the block for states (N, 5) = agent xy, block xy, angle."""
    from lnmdn_envs.pusht import GOAL_POSE
    from lnmdn_envs.pusht_geometry import T_AREA, t_overlap_area, t_world_rects

    goal = t_world_rects(*GOAL_POSE)
    return np.array(
        [t_overlap_area(t_world_rects(s[2], s[3], s[4]), goal) / T_AREA for s in states],
        dtype=np.float64,
    )


def convert_pusht_zarr(
    path: str | Path, dataset_id: str = "lnmdn/pusht/dp-human-v0", force: bool = False
) -> Path:
    """Convert Diffusion Policy's Push-T zarr replay buffer into a Minari dataset.

    Diffusion Policy stores, per step t, the state seen before ``action[t]``, and no state after
    an episode's last action. Every action is kept (so the windows match Diffusion Policy's
    sampler: L - 7 per episode for T=16, To=2, Ta=8, the reference's 24,208 windows) and the
    final observation of each episode repeats its last state (``infos["final_repeated"]`` marks
    it). The angle is wrapped to ``[0, 2 pi)`` as ``lnmdn/PushT-v0`` observes it; ``infos["state"]``
    keeps the raw state and ``infos["keypoint"]`` the keypoints. Rewards are
    ``clip(coverage / 0.95, 0, 1)`` of the state after each action, computed with the suite's
    exact polygon coverage; an episode terminates on its last step if that state is a success.

    Args:
        path: the ``.zarr`` folder (or zip store).
        dataset_id: the Minari id to write.
        force: replace an existing dataset.

    Returns:
        The dataset folder.
    """
    import zarr

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no Push-T zarr at {path}")
    try:
        root: Any = zarr.open_group(str(path), mode="r")
        state = np.asarray(root["data/state"][:], dtype=np.float64)
        action = np.asarray(root["data/action"][:], dtype=np.float64)
        ends = np.asarray(root["meta/episode_ends"][:], dtype=np.int64)
        keypoint = np.asarray(root["data/keypoint"][:]) if "keypoint" in root["data"] else None
    except KeyError as err:
        raise KeyError(
            f"{path} is not a Diffusion Policy Push-T replay buffer: missing {err}; expected "
            "data/state (N, 5), data/action (N, 2), meta/episode_ends (E,)"
        ) from None
    n = len(state)
    if state.shape != (n, 5) or action.shape != (n, 2):
        raise ValueError(
            f"expected data/state (N, 5) and data/action (N, 2), got {state.shape} and "
            f"{action.shape}"
        )
    if len(ends) == 0 or ends[-1] != n or np.any(np.diff(np.concatenate([[0], ends])) < 1):
        raise ValueError(
            f"meta/episode_ends must be increasing cumulative step counts ending at N={n}, got "
            f"{ends[:5].tolist()}...{ends[-1:].tolist()}"
        )
    from lnmdn_envs.pusht import SUCCESS_THRESHOLD

    coverage = pusht_coverage(state)
    records = []
    starts = np.concatenate([[0], ends[:-1]])
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        st = state[s:e]
        obs = st.copy()
        obs[:, 4] = np.mod(obs[:, 4], 2 * math.pi)
        obs = np.concatenate([obs, obs[-1:]])
        states = np.concatenate([st, st[-1:]])
        cov_next = np.concatenate([coverage[s + 1 : e], coverage[e - 1 : e]])
        success_next = cov_next > SUCCESS_THRESHOLD
        length = e - s
        terminations = np.zeros(length, bool)
        terminations[-1] = bool(success_next[-1])
        truncations = np.zeros(length, bool)
        truncations[-1] = not terminations[-1]
        infos: dict[str, np.ndarray] = {
            "state": states,
            "is_success": np.concatenate([[coverage[s] > SUCCESS_THRESHOLD], success_next]),
            "score": np.clip(np.concatenate([[coverage[s]], cov_next]) / SUCCESS_THRESHOLD, 0, 1),
            "final_repeated": np.eye(1, length + 1, length, dtype=bool)[0],
        }
        if keypoint is not None:
            kp = keypoint[s:e].reshape(length, -1).astype(np.float64)
            infos["keypoint"] = np.concatenate([kp, kp[-1:]])
        records.append(
            EpisodeRecord(
                observations=obs,
                actions=action[s:e],
                rewards=np.clip(cov_next / SUCCESS_THRESHOLD, 0.0, 1.0),
                terminations=terminations,
                truncations=truncations,
                infos=infos,
            )
        )
    final_success = float(np.mean([r.infos["is_success"][-1] for r in records]))
    return write_dataset(
        dataset_id,
        records,
        task_id="lnmdn/PushT-v0",
        description=(
            f"Push-T demonstrations converted from Diffusion Policy's zarr replay buffer "
            f"({path.name}): {len(records)} episodes, {n} steps. The final observation of each "
            "episode repeats its last state (the source stores none after the last action)."
        ),
        algorithm_name="converted from Diffusion Policy Push-T zarr",
        metadata={
            "source": str(path.name),
            "source_format": "diffusion_policy_pusht_zarr",
            "final_state_success_rate": final_success,
            "final_observation": "repeats the last state",
        },
        force=force,
    )


def _demo_index(name: str) -> int:
    match = re.fullmatch(r"demo_(\d+)", name)
    return int(match.group(1)) if match else -1


def _low_dim(group: Any, demo: str, where: str) -> np.ndarray:
    missing = [k for k, _ in CAN_OBS_KEYS if k not in group]
    if missing:
        raise KeyError(
            f"{demo}/{where} lacks {missing} (found {sorted(group)}); the converter maps "
            f"robomimic's low-dim Can keys {[k for k, _ in CAN_OBS_KEYS]} onto lnmdn/Can-v0's "
            "23-D observation"
        )
    parts = []
    for key, dim in CAN_OBS_KEYS:
        arr = np.asarray(group[key][()], dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != dim:
            raise ValueError(f"{demo}/{where}/{key} must be (L, {dim}), got {arr.shape}")
        parts.append(arr)
    return np.concatenate(parts, axis=1)


def convert_robomimic_hdf5(
    path: str | Path, dataset_id: str = "lnmdn/can/robomimic-ph-v0", force: bool = False
) -> Path:
    """Convert a robomimic v1.5 low-dim hdf5 (Can) into a Minari dataset.

    Observations are ``obs`` of every step followed by ``next_obs`` of the last step, mapped to
    the 23-D layout ``object (14), robot0_eef_pos (3), robot0_eef_quat (4),
    robot0_gripper_qpos (2)``. ``states`` (MuJoCo ``[time, qpos, qvel]`` before each action) go to
    ``infos["state"]``, the last one repeated for the final observation. ``dones`` become
    terminations; an episode that does not end done is truncated. ``env_args`` and the
    ``mask/train`` / ``mask/valid`` episode indices are kept in the metadata. Demos are ordered
    by their number (``demo_0, demo_1, ..., demo_10``).

    Args:
        path: the ``.hdf5`` file.
        dataset_id: the Minari id to write.
        force: replace an existing dataset.

    Returns:
        The dataset folder.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no robomimic hdf5 at {path}")
    records = []
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise KeyError(f"{path} has no 'data' group: not a robomimic dataset")
        data = f["data"]
        env_args = json.loads(data.attrs["env_args"]) if "env_args" in data.attrs else {}
        env_name = env_args.get("env_name")
        if env_name is not None and env_name != "PickPlaceCan":
            raise ValueError(
                f"{path} holds {env_name!r} demonstrations; this converter maps PickPlaceCan "
                "(lnmdn/Can-v0) only"
            )
        demos = sorted((k for k in data if _demo_index(k) >= 0), key=_demo_index)
        if not demos:
            raise ValueError(f"{path} has no data/demo_N groups")
        for demo in demos:
            g = data[demo]
            obs = _low_dim(g["obs"], demo, "obs")
            next_obs = _low_dim(g["next_obs"], demo, "next_obs")
            actions = np.asarray(g["actions"][()], dtype=np.float64)
            length = len(actions)
            if obs.shape[0] != length or next_obs.shape[0] != length:
                raise ValueError(
                    f"{demo}: obs/next_obs have {obs.shape[0]}/{next_obs.shape[0]} steps, "
                    f"actions {length}"
                )
            rewards = np.asarray(g["rewards"][()], dtype=np.float64)
            dones = np.asarray(g["dones"][()]).astype(bool)
            truncations = np.zeros(length, bool)
            truncations[-1] = not dones[-1]
            infos: dict[str, np.ndarray] = {
                "is_success": np.concatenate([[False], rewards > 0]),
            }
            if "states" in g:
                states = np.asarray(g["states"][()], dtype=np.float64)
                infos["state"] = np.concatenate([states, states[-1:]])
            records.append(
                EpisodeRecord(
                    observations=np.concatenate([obs, next_obs[-1:]]),
                    actions=actions,
                    rewards=rewards,
                    terminations=dones,
                    truncations=truncations,
                    infos=infos,
                )
            )
        masks: dict[str, list[int]] = {}
        if "mask" in f:
            position = {name: i for i, name in enumerate(demos)}
            for key in f["mask"]:
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["mask"][key]]
                masks[key] = sorted(position[n] for n in names if n in position)
    success = float(np.mean([r.infos["is_success"][-1] for r in records]))
    return write_dataset(
        dataset_id,
        records,
        task_id="lnmdn/Can-v0",
        description=(
            f"robomimic Can demonstrations converted from {path.name}: {len(records)} episodes "
            f"({', '.join(f'{k}: {len(v)}' for k, v in masks.items()) or 'no masks'}), "
            "low-dim observation mapped to lnmdn/Can-v0's 23-D layout."
        ),
        algorithm_name="converted from robomimic v1.5 hdf5",
        metadata={
            "source": path.name,
            "source_format": "robomimic_v1.5_hdf5",
            "source_env_args": env_args,
            "masks": masks,
            "demo_names": demos,
            "final_reward_success_rate": success,
        },
        force=force,
    )
