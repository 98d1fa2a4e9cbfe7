"""Datasets shipped inside the package as compressed ``.npz``, and the code that packs them.

Each ``<namespace>__<name>-vN.npz`` in this folder is one Minari dataset packed by
:func:`export_embedded` (``lnmdn datasets pack``): the concatenated arrays, the episode lengths and
seeds, and the arguments :func:`lnmdn_datasets.minari_io.write_dataset` needs to recreate it.
:func:`install_embedded` unpacks one into the Minari root (``lnmdn datasets build`` and
``lnmdn_agents.data.load_episodes`` do it on first use, through
:func:`lnmdn_datasets.provision.ensure_local`), so a fresh clone trains without building data
first.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path

import numpy as np
from gymnasium.envs.registration import EnvSpec

from lnmdn_datasets.episodes import EpisodeRecord
from lnmdn_datasets.minari_io import (
    CHECKSUM_KEY,
    CODE_URL,
    _json_ready,
    minari_root,
    read_records,
    task_env_spec,
    write_dataset,
)
from lnmdn_envs.atomic import atomic_path

__all__ = ["embedded_dataset_ids", "embedded_path", "export_embedded", "install_embedded"]

logger = logging.getLogger(__name__)


def _slug(dataset_id: str) -> str:
    return dataset_id.replace("/", "__")


def embedded_path(dataset_id: str) -> Path:
    """Where the packaged copy of ``dataset_id`` lives (it may not exist)."""
    return Path(str(resources.files(__name__))) / f"{_slug(dataset_id)}.npz"


def embedded_dataset_ids() -> list[str]:
    """Ids of the datasets shipped inside the package."""
    folder = Path(str(resources.files(__name__)))
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
    task_id, task_kwargs, spec_json = None, {}, None
    if spec is not None:
        spec_obj = spec if isinstance(spec, EnvSpec) else EnvSpec.from_json(spec)
        if spec_obj.entry_point == "lnmdn_envs.registration:make_task_env":
            task_kwargs = dict(spec_obj.kwargs)
            task_id = task_kwargs.pop("env_id", None)
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
        "task_kwargs": task_kwargs,
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
    if header.get("env_spec"):
        env_spec = EnvSpec.from_json(header["env_spec"])
    elif header.get("task_id"):
        env_spec = task_env_spec(header["task_id"], **header.get("task_kwargs", {}))
    else:
        env_spec = None
    return write_dataset(
        dataset_id,
        records,
        env_spec=env_spec,
        description=header["description"],
        algorithm_name=header["algorithm_name"],
        code_permalink=header["code_permalink"],
        metadata={
            **{k: v for k, v in header["metadata"].items() if k != CHECKSUM_KEY},
            "installed_from": "embedded",
        },
        force=force,
    )
