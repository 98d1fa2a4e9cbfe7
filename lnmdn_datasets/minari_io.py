"""Reading and writing Minari datasets: atomic, and without jax.

Minari's ``DataCollector`` needs jax (``minari[create]``) to append steps; this module builds each
episode's arrays itself and hands whole :class:`minari.data_collector.EpisodeBuffer` objects to
:func:`minari.create_dataset_from_buffers`, which needs only ``minari[hdf5]``.

Atomic output: a dataset is written under a hidden build folder inside the Minari root
(``<root>/.lnmdn-build-<pid>-<uuid>/<id>``; Minari ignores hidden folders) and moved into
``<root>/<id>`` only once complete (``lnmdn_envs.atomic.replace_directory``). An interrupted build
leaves no dataset behind, only a hidden folder that the next build removes.

Single-step observations: a dataset stores per-step observations ``(Do,)`` and actions ``(Da,)``,
so its env spec (:func:`task_env_spec`) builds the single-step task env
(``lnmdn_envs.make_task_env``); ``minari.load_dataset(id).recover_environment()`` returns it, with
the dataset's spaces. Its id is the task id with ``-Step`` before the version
(``lnmdn/PushT-Step-v0``); the chunked env stays ``gym.make("lnmdn/PushT-v0")``.

Where a dataset comes from when it is missing (the packed copy, its recipe, a download) is decided
above this module, in :mod:`lnmdn_datasets.provision`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

import lnmdn_datasets._requirements  # noqa: F401  (a missing 'datasets' extra fails here, named)
from lnmdn_datasets.episodes import EpisodeRecord, content_checksum
from lnmdn_envs.atomic import replace_directory

__all__ = [
    "AUTHOR",
    "AUTHOR_CONTACT",
    "CHECKSUM_KEY",
    "CODE_URL",
    "EpisodeRecord",
    "content_checksum",
    "dataset_checksum",
    "minari_root",
    "read_records",
    "task_env_spec",
    "write_dataset",
]

logger = logging.getLogger(__name__)

AUTHOR = "lnmdn contributors"
AUTHOR_CONTACT = "https://github.com/lnmdn/lnmdn/issues"
CODE_URL = "https://github.com/lnmdn/lnmdn/tree/main/lnmdn_datasets"
_BUILD_PREFIX = ".lnmdn-build-"
CHECKSUM_KEY = "content_sha256"
"""Dataset metadata key of :func:`content_checksum`, written by :func:`write_dataset`."""


# -- content checksum of a stored dataset -------------------------------------------------------
def dataset_checksum(dataset_id: str) -> str:
    """:func:`content_checksum` of a local Minari dataset, computed from the stored arrays."""
    return content_checksum(read_records(dataset_id))


# -- roots, specs -------------------------------------------------------------------------------
def minari_root() -> Path:
    """The local Minari root (``MINARI_DATASETS_PATH`` or ``~/.minari/datasets``), created."""
    from minari.storage.datasets_root_dir import get_dataset_path

    return Path(get_dataset_path())


@contextlib.contextmanager
def _root_env(path: Path) -> Iterator[None]:
    """Point Minari at ``path`` for the duration (Minari reads the root from the environment)."""
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def task_env_spec(task_id: str, **kwargs: Any) -> EnvSpec:
    """Env spec that builds the single-step task env ``lnmdn_envs.make_task_env(task_id)``.

    Args:
        task_id: a registered lnmdn id, e.g. ``"lnmdn/PushT-v0"``.
        **kwargs: task keyword arguments stored in the spec (JSON-serialisable).

    Returns:
        An :class:`EnvSpec` with id ``<task>-Step-v<N>``; ``gym.make(spec)`` works in a fresh
        process (the entry point imports ``lnmdn_envs``).
    """
    from lnmdn_envs.registration import TASKS, step_env_id

    if task_id not in TASKS:
        raise ValueError(f"unknown lnmdn task {task_id!r}; known: {sorted(TASKS)}")
    return EnvSpec(
        id=step_env_id(task_id),
        entry_point="lnmdn_envs.registration:make_task_env",
        # make_task_env applies the task's TimeLimit itself; a spec limit would add a second one.
        max_episode_steps=None,
        kwargs={"env_id": task_id, **kwargs},
    )


def _spaces_of(spec: EnvSpec) -> tuple[gym.Space[Any], gym.Space[Any]]:
    env = gym.make(spec)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()


# -- writing ------------------------------------------------------------------------------------
def _remove_stale_builds(root: Path) -> None:
    """Remove hidden build folders left by interrupted builds of processes no longer running."""
    for path in root.glob(f"{_BUILD_PREFIX}*"):
        try:
            pid = int(path.name[len(_BUILD_PREFIX) :].split("-", 1)[0])
        except ValueError:
            continue
        if pid == os.getpid() or _pid_alive(pid):
            continue
        logger.info("removing %s, left by an interrupted build", path)
        shutil.rmtree(path, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _ensure_namespaces(dataset_id: str) -> None:
    from minari.dataset.minari_dataset import parse_dataset_id
    from minari.namespace import create_namespace, list_local_namespaces

    namespace = parse_dataset_id(dataset_id)[0]
    if namespace is not None and namespace not in list_local_namespaces():
        try:
            create_namespace(namespace)
        except ValueError:
            # Created by a concurrent build between the check and the call.
            if namespace not in list_local_namespaces():
                raise


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_dataset(
    dataset_id: str,
    episodes: Sequence[EpisodeRecord],
    *,
    task_id: str | None = None,
    env_spec: EnvSpec | None = None,
    observation_space: gym.Space[Any] | None = None,
    action_space: gym.Space[Any] | None = None,
    description: str,
    algorithm_name: str,
    author: str = AUTHOR,
    author_email: str = AUTHOR_CONTACT,
    code_permalink: str = CODE_URL,
    metadata: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write episodes as a Minari dataset, atomically.

    Args:
        dataset_id: Minari id, ``namespace/name-vN``.
        episodes: the episodes, in order.
        task_id: lnmdn task the data comes from; sets the env spec (:func:`task_env_spec`) and,
            unless given, the spaces (those of the task env).
        env_spec: an explicit env spec instead of ``task_id``.
        observation_space: the per-step observation space (default: the env's).
        action_space: the per-step action space (default: the env's).
        description: what the data is (shown by ``minari show``).
        algorithm_name: how it was made (expert class, converter).
        author: author name(s).
        author_email: contact.
        code_permalink: link to the code that made it.
        metadata: extra JSON-ready keys stored in the dataset metadata (expert success rate,
            seeds, recipe version...). ``content_sha256`` (:func:`content_checksum` of the
            stored arrays) is always added.
        force: replace an existing dataset of the same id (the old one stays readable until the
            new one is complete).

    Returns:
        The dataset folder ``<minari root>/<dataset_id>``.

    Raises:
        FileExistsError: the dataset exists and ``force`` is false.
        ValueError: no episodes, or observations/actions outside the given spaces' shapes.
    """
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    if not episodes:
        raise ValueError(f"no episodes to write for {dataset_id!r}")
    root = minari_root()
    final = root / dataset_id
    if final.exists() and not force:
        raise FileExistsError(
            f"dataset {dataset_id!r} already exists at {final}; pass force=True (--force) to "
            "rebuild it"
        )
    if task_id is not None:
        if env_spec is not None:
            raise ValueError("pass task_id or env_spec, not both")
        env_spec = task_env_spec(task_id)
    if (observation_space is None or action_space is None) and env_spec is not None:
        env_obs, env_act = _spaces_of(env_spec)
        observation_space = observation_space or env_obs
        action_space = action_space or env_act
    if observation_space is None or action_space is None:
        raise ValueError("give task_id/env_spec or both observation_space and action_space")
    box_obs = isinstance(observation_space, gym.spaces.Box)
    for i, ep in enumerate(episodes):
        if box_obs and np.shape(ep.observations)[1:] != observation_space.shape:
            raise ValueError(
                f"episode {i} observations have per-step shape {np.shape(ep.observations)[1:]}, "
                f"the observation space {observation_space.shape}"
            )
        if ep.actions.shape[1:] != action_space.shape:
            raise ValueError(
                f"episode {i} actions have per-step shape {ep.actions.shape[1:]}, the action "
                f"space {action_space.shape}"
            )
    obs_dtype = observation_space.dtype
    act_dtype = action_space.dtype
    buffers = [
        EpisodeBuffer(
            id=i,
            seed=ep.seed,
            observations=(
                ep.observations.astype(obs_dtype, copy=False) if box_obs else ep.observations
            ),
            actions=ep.actions.astype(act_dtype, copy=False),
            rewards=ep.rewards,
            terminations=ep.terminations,
            truncations=ep.truncations,
            infos=dict(ep.infos) if ep.infos else None,
        )
        for i, ep in enumerate(episodes)
    ]

    _remove_stale_builds(root)
    build_root = root / f"{_BUILD_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    build_root.mkdir()
    try:
        with _root_env(build_root), warnings.catch_warnings():
            # eval_env None -> Minari warns and uses env_spec for evaluation, which we want.
            warnings.filterwarnings("ignore", message=".*eval_env.*", category=UserWarning)
            minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=env_spec,
                observation_space=observation_space,
                action_space=action_space,
                algorithm_name=algorithm_name,
                author=author,
                author_email=author_email,
                code_permalink=code_permalink,
                description=description,
                requirements=["lnmdn>=0.1"],
            )
            from minari.dataset.minari_storage import MinariStorage

            # the checksum of what was stored, read back as verify will read it
            extra = {**(metadata or {}), CHECKSUM_KEY: dataset_checksum(dataset_id)}
            storage = MinariStorage.read(build_root / dataset_id / "data")
            storage.update_metadata(_json_ready(extra))
        _ensure_namespaces(dataset_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        # The replaced dataset waits under a build name, so a crash leaves it to the next clean-up.
        trash = root / f"{_BUILD_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}-old"
        replace_directory(build_root / dataset_id, final, aside=trash)
    finally:
        shutil.rmtree(build_root, ignore_errors=True)
    logger.info("wrote %s (%d episodes) to %s", dataset_id, len(episodes), final)
    return final


def read_records(dataset_id: str) -> list[EpisodeRecord]:
    """Read a local Minari dataset back into :class:`EpisodeRecord` objects (with seeds)."""
    import minari

    dataset = minari.load_dataset(dataset_id)
    n = dataset.total_episodes
    seeds: list[int | None] = [None] * n
    with contextlib.suppress(Exception):
        for i, meta in enumerate(dataset.storage.get_episode_metadata(range(n))):
            seeds[i] = int(meta["seed"]) if "seed" in meta else None
    records = []
    for i, ep in enumerate(dataset.iterate_episodes()):
        records.append(
            EpisodeRecord(
                observations=ep.observations,
                actions=ep.actions,
                rewards=ep.rewards,
                terminations=ep.terminations,
                truncations=ep.truncations,
                infos={k: v for k, v in (ep.infos or {}).items() if isinstance(v, np.ndarray)},
                seed=seeds[i],
            )
        )
    return records
