"""Writing, installing and fetching Minari datasets: atomic, and without jax.

Minari's ``DataCollector`` needs jax (``minari[create]``) to append steps; this module builds each
episode's arrays itself and hands whole :class:`minari.data_collector.EpisodeBuffer` objects to
:func:`minari.create_dataset_from_buffers`, which needs only ``minari[hdf5]``.

Atomic output: a dataset is written under a hidden build folder inside the Minari root
(``<root>/.lnmdn-build-<pid>-<uuid>/<id>``; Minari ignores hidden folders) and renamed into
``<root>/<id>`` only once complete. An interrupted build leaves no dataset behind, only a hidden
folder that the next build removes.

Single-step observations: a dataset stores per-step observations ``(Do,)`` and actions ``(Da,)``,
so its env spec (:func:`task_env_spec`) builds the single-step task env
(``lnmdn_envs.make_task_env``); ``minari.load_dataset(id).recover_environment()`` returns it, with
the dataset's spaces. Its id is the task id with ``-Step`` before the version
(``lnmdn/PushT-Step-v0``); the chunked env stays ``gym.make("lnmdn/PushT-v0")``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from lnmdn_envs.atomic import atomic_path, replace_directory

__all__ = [
    "AUTHOR",
    "AUTHOR_CONTACT",
    "CHECKSUM_KEY",
    "CODE_URL",
    "DatasetDownloadError",
    "EpisodeRecord",
    "content_checksum",
    "dataset_checksum",
    "download_dataset",
    "embedded_dataset_ids",
    "embedded_path",
    "ensure_local",
    "export_embedded",
    "install_embedded",
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
_EMBEDDED_PACKAGE = "lnmdn_datasets.embedded"
CHECKSUM_KEY = "content_sha256"
"""Dataset metadata key of :func:`content_checksum`, written by :func:`write_dataset`."""


class DatasetDownloadError(RuntimeError):
    """A dataset could not be downloaded (no network, missing extra, unknown remote id)."""


@dataclass
class EpisodeRecord:
    """One episode as Minari stores it (L steps).

    Attributes:
        observations: (L + 1, Do); the last one follows the last action. A dict of such arrays
            for dict observation spaces (e.g. D4RL's PointMaze layout).
        actions: (L, Da).
        rewards: (L,).
        terminations: (L,) bool.
        truncations: (L,) bool.
        infos: per-step extras, each (L + 1, ...): index 0 from ``reset``, index t + 1 from the
            step of ``actions[t]`` (Minari's convention). ``"state"`` holds the simulator state
            (``env.unwrapped.get_state()``) before each step, for replay.
        seed: the ``env.reset(seed=...)`` seed of the episode, or None.
    """

    observations: Any
    actions: np.ndarray
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: dict[str, np.ndarray] = field(default_factory=dict)
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.observations, dict):
            self.observations = {k: np.asarray(v) for k, v in self.observations.items()}
            n_obs = {len(v) for v in self.observations.values()}
            if len(n_obs) != 1:
                raise ValueError(f"observation dict entries differ in length: {sorted(n_obs)}")
            n_observations = n_obs.pop()
        else:
            self.observations = np.asarray(self.observations)
            n_observations = len(self.observations)
        self.actions = np.asarray(self.actions)
        self.rewards = np.asarray(self.rewards, dtype=np.float64).reshape(-1)
        self.terminations = np.asarray(self.terminations, dtype=bool).reshape(-1)
        self.truncations = np.asarray(self.truncations, dtype=bool).reshape(-1)
        self.infos = {k: np.asarray(v) for k, v in self.infos.items()}
        n = len(self.actions)
        if n < 1 or n_observations != n + 1:
            raise ValueError(
                f"an episode needs L >= 1 actions and L + 1 observations, got "
                f"{n_observations} observations and {n} actions"
            )
        for name in ("rewards", "terminations", "truncations"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} must have L={n} entries, got {len(getattr(self, name))}")
        for key, value in self.infos.items():
            if len(value) != n + 1:
                raise ValueError(
                    f"infos[{key!r}] must have L + 1 = {n + 1} entries, got {len(value)}"
                )

    def __len__(self) -> int:
        """L, the number of steps."""
        return len(self.actions)


# -- content checksum ---------------------------------------------------------------------------
def _hash_array(h: Any, name: str, value: Any) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            _hash_array(h, f"{name}.{key}", value[key])
        return
    arr = np.ascontiguousarray(np.asarray(value))
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
    h.update(arr.tobytes())


def content_checksum(episodes: Sequence[EpisodeRecord]) -> str:
    """SHA-256 of a dataset's content: every episode's arrays (values, dtypes, shapes) and seed.

    Two datasets with the same checksum hold bit-identical data; metadata (description, build
    time, versions) is not part of it.
    """
    import hashlib

    h = hashlib.sha256()
    for i, ep in enumerate(episodes):
        h.update(f"episode {i} seed {ep.seed}|".encode())
        for name in ("observations", "actions", "rewards", "terminations", "truncations"):
            _hash_array(h, name, getattr(ep, name))
        _hash_array(h, "infos", ep.infos)
    return h.hexdigest()


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


# -- embedded datasets --------------------------------------------------------------------------
def _slug(dataset_id: str) -> str:
    return dataset_id.replace("/", "__")


def embedded_path(dataset_id: str) -> Path:
    """Where the packaged copy of ``dataset_id`` lives (it may not exist)."""
    return Path(str(resources.files(_EMBEDDED_PACKAGE))) / f"{_slug(dataset_id)}.npz"


def embedded_dataset_ids() -> list[str]:
    """Ids of the datasets shipped inside the package."""
    folder = Path(str(resources.files(_EMBEDDED_PACKAGE)))
    return sorted(p.stem.replace("__", "/") for p in folder.glob("*.npz"))


def export_embedded(dataset_id: str, path: str | Path | None = None) -> Path:
    """Pack a local dataset into one compressed ``.npz`` (what ships in ``embedded/``).

    The file holds the concatenated arrays, episode lengths, seeds, and the arguments
    :func:`write_dataset` needs to recreate the Minari dataset (JSON).
    """
    import minari

    dataset = minari.load_dataset(dataset_id)
    records = read_records(dataset_id)
    meta = dict(dataset.storage.metadata)
    spec = meta.get("env_spec")
    task_id, spec_json = None, None
    if spec is not None:
        spec_obj = spec if isinstance(spec, EnvSpec) else EnvSpec.from_json(spec)
        if spec_obj.entry_point == "lnmdn_envs.registration:make_task_env":
            task_id = spec_obj.kwargs.get("env_id")
        else:
            spec_json = spec_obj.to_json()
    standard = {
        "dataset_id",
        "env_spec",
        "eval_env_spec",
        "observation_space",
        "action_space",
        "data_format",
        "minari_version",
        "total_episodes",
        "total_steps",
        "dataset_size",
        "requirements",
        "author",
        "author_email",
        "algorithm_name",
        "code_permalink",
        "description",
    }
    header = {
        "dataset_id": dataset_id,
        "task_id": task_id,
        "env_spec": spec_json,
        "description": meta.get("description", ""),
        "algorithm_name": meta.get("algorithm_name", ""),
        "code_permalink": meta.get("code_permalink", CODE_URL),
        "metadata": {k: v for k, v in meta.items() if k not in standard},
    }
    if any(isinstance(r.observations, dict) for r in records):
        raise ValueError(f"{dataset_id} has dict observations; only Box observations can be packed")
    info_keys = sorted(set.intersection(*(set(r.infos) for r in records))) if records else []
    arrays: dict[str, np.ndarray] = {
        "header": np.array(json.dumps(_json_ready(header))),
        "lengths": np.array([len(r) for r in records], dtype=np.int64),
        "seeds": np.array([-1 if r.seed is None else r.seed for r in records], dtype=np.int64),
        "observations": np.concatenate([r.observations for r in records]),
        "actions": np.concatenate([r.actions for r in records]),
        "rewards": np.concatenate([r.rewards for r in records]),
        "terminations": np.concatenate([r.terminations for r in records]),
        "truncations": np.concatenate([r.truncations for r in records]),
    }
    for key in info_keys:
        arrays[f"info.{key}"] = np.concatenate([r.infos[key] for r in records])
    out = Path(path) if path is not None else embedded_path(dataset_id)
    with atomic_path(out) as tmp:
        np.savez_compressed(tmp, **arrays)
    return out


def install_embedded(dataset_id: str, path: str | Path | None = None, force: bool = False) -> Path:
    """Install a packaged dataset into the Minari root (atomically; see :func:`write_dataset`)."""
    src = Path(path) if path is not None else embedded_path(dataset_id)
    if not src.is_file():
        raise FileNotFoundError(
            f"no embedded copy of {dataset_id!r} at {src}; embedded: {embedded_dataset_ids()}"
        )
    with np.load(src, allow_pickle=False) as z:
        header = json.loads(str(z["header"]))
        lengths, seeds = z["lengths"], z["seeds"]
        obs, act = z["observations"], z["actions"]
        rew, term, trunc = z["rewards"], z["terminations"], z["truncations"]
        infos = {k.split(".", 1)[1]: z[k] for k in z.files if k.startswith("info.")}
    if header["dataset_id"] != dataset_id:
        raise ValueError(f"{src} holds {header['dataset_id']!r}, not {dataset_id!r}")
    records = []
    o = a = 0
    for length, seed in zip(lengths.tolist(), seeds.tolist(), strict=True):
        records.append(
            EpisodeRecord(
                observations=obs[o : o + length + 1],
                actions=act[a : a + length],
                rewards=rew[a : a + length],
                terminations=term[a : a + length],
                truncations=trunc[a : a + length],
                infos={k: v[o : o + length + 1] for k, v in infos.items()},
                seed=None if seed < 0 else int(seed),
            )
        )
        o += length + 1
        a += length
    logger.info("installing the embedded %s into %s", dataset_id, minari_root())
    return write_dataset(
        dataset_id,
        records,
        task_id=header["task_id"],
        env_spec=EnvSpec.from_json(header["env_spec"]) if header.get("env_spec") else None,
        description=header["description"],
        algorithm_name=header["algorithm_name"],
        code_permalink=header["code_permalink"],
        metadata={
            **{k: v for k, v in header["metadata"].items() if k != CHECKSUM_KEY},
            "installed_from": "embedded",
        },
        force=force,
    )


# -- remote ---------------------------------------------------------------------------------------
def download_dataset(dataset_id: str) -> None:
    """Download a Minari dataset (e.g. ``D4RL/pointmaze/umaze-v2``) with a clear error offline.

    Raises:
        DatasetDownloadError: the download failed; the message says why and what to do.
    """
    import minari

    root = minari_root()
    local_only = _local_only_advice(dataset_id)
    if local_only is not None:
        raise DatasetDownloadError(local_only)  # no network round trip for an id never hosted
    existed = (root / dataset_id).exists()
    advice = (
        f"Download it where the network allows (`minari download {dataset_id}`) and copy the "
        f"folder <minari root>/{dataset_id} into this machine's Minari root ({root}; set by "
        "MINARI_DATASETS_PATH)."
    )
    try:
        minari.download_dataset(dataset_id)
    except ImportError as err:
        raise DatasetDownloadError(
            f"cannot download {dataset_id!r}: {err}. Install the 'agents' extra "
            "(pip install -c constraints.txt -e '.[agents]'), which includes minari[hf]. " + advice
        ) from err
    except Exception as err:
        if not existed:
            shutil.rmtree(root / dataset_id, ignore_errors=True)
        raise DatasetDownloadError(
            f"could not download {dataset_id!r} from Minari's remote "
            f"({type(err).__name__}: {err}). This machine may have no network access. " + advice
        ) from err


def _local_only_advice(dataset_id: str) -> str | None:
    """For an id that is made locally and never hosted (``lnmdn/...``): how to make it."""
    if not dataset_id.startswith("lnmdn/"):
        return None
    from lnmdn_datasets.recipes import RECIPES

    if embedded_path(dataset_id).is_file():
        how = f"it ships inside the package: `lnmdn datasets build {dataset_id}` installs it"
    elif dataset_id in RECIPES:
        how = f"build it from its recipe here: `lnmdn datasets build {dataset_id}`"
    else:
        how = (
            f"it has no recipe (recipes: {sorted(RECIPES)}); make it with `lnmdn datasets "
            "convert` from its source, or copy its folder into the Minari root "
            f"({minari_root()}) from the machine that made it"
        )
    return (
        f"{dataset_id!r} is not hosted on any Minari remote (lnmdn datasets are made "
        f"locally); {how}"
    )


def ensure_local(dataset_id: str) -> bool:
    """Make ``dataset_id`` local if possible: install the embedded copy, build it, or download it.

    In order: the packaged copy (``lnmdn_datasets/embedded``: Push-T); a recipe marked
    ``auto_build`` (PointMaze, under a minute; Can, about 6 minutes); a download for remote
    namespaces (``D4RL/``).

    Returns:
        True when the dataset is now local; False when nothing could provide it (then
        ``lnmdn datasets build`` or a converter must make it).

    Raises:
        DatasetDownloadError: a remote dataset's download failed.
    """
    import minari

    if dataset_id in minari.list_local_datasets():
        return True
    if embedded_path(dataset_id).is_file():
        try:
            install_embedded(dataset_id)
        except (FileExistsError, OSError):
            # Another process installed it at the same time: fine if it is there now.
            if dataset_id not in minari.list_local_datasets():
                raise
        return True
    from lnmdn_datasets.recipes import RECIPES, build

    recipe = RECIPES.get(dataset_id)
    if recipe is not None and recipe.auto_build:
        logger.warning(
            "%s is not in the Minari root %s: building it now from its recipe (%d episodes of "
            "%s; `lnmdn datasets build %s` does the same)",
            dataset_id,
            minari_root(),
            recipe.n_episodes,
            recipe.expert_name,
            dataset_id,
        )
        try:
            build(recipe)
        except FileExistsError:
            if dataset_id not in minari.list_local_datasets():
                raise
        return True
    if dataset_id.startswith("D4RL/"):
        download_dataset(dataset_id)
        return True
    return False
