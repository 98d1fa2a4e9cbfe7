from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest

from lnmdn_envs import make_task_env
from lnmdn_envs.suggest import did_you_mean

ROOT = Path(__file__).resolve().parents[2]


def test_the_closest_known_name_follows_a_sentence():
    known = {"diffusion": 1, "liquid_mdn": 2, "lwd": 3}  # any iterable of names: a dict's keys
    assert did_you_mean("difusion", known) == " Did you mean 'diffusion'?"
    assert did_you_mean("liquid-mdn", iter(known)) == " Did you mean 'liquid_mdn'?"


def test_nothing_close_says_nothing():
    assert did_you_mean("zzz", ["diffusion", "lwd"]) == ""
    assert did_you_mean("lwd", []) == ""


def test_an_unknown_task_id_gets_the_hint():
    with pytest.raises(
        gym.error.Error, match=r"task 'lnmdn/PushT-v9'\. Did you mean 'lnmdn/PushT-v0'\?"
    ):
        make_task_env("lnmdn/PushT-v9")


def test_no_module_has_its_own_lookup():
    """Every "Did you mean" of the packages comes from did_you_mean."""
    own = [
        str(path.relative_to(ROOT))
        for package in ("lnmdn_envs", "lnmdn_datasets", "lnmdn_agents")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "suggest.py" and "get_close_matches" in path.read_text()
    ]
    assert own == []
