"""The two protocols: what their windows hold, how they split, and what a reference policy reads.

The leak tests build episodes whose observations and actions carry their own step index, so a
window's content says which steps it holds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_bench import TINY_MODELS

from lnmdn_agents.data import Episode, make_splits
from lnmdn_agents.policies import make_policy
from lnmdn_agents.protocols import get_protocol
from lnmdn_agents.training import TrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def stamped_episodes(n: int = 12, seed: int = 0) -> list[Episode]:
    """Episodes whose obs[:, 0] and actions[:, 0] are the step index, obs[:, 1] the episode."""
    rng = np.random.default_rng(seed)
    out = []
    for e in range(n):
        length = int(rng.integers(30, 60))
        obs = np.zeros((length + 1, 5), np.float32)
        obs[:, 0] = np.arange(length + 1)
        obs[:, 1] = e
        obs[:, 2:] = rng.normal(size=(length + 1, 3))
        act = np.zeros((length, 2), np.float32)
        act[:, 0] = np.arange(length)
        act[:, 1] = e
        out.append(Episode(obs, act))
    return out


def protocol_config(protocol: str, policy: str = "liquid_mdn"):
    """The policy config a training run of ``protocol`` builds (the trainer's own path)."""
    cfg = TrainConfig(policy=policy, protocol=protocol, policy_overrides=TINY_MODELS[policy])
    return cfg.policy_config(obs_dim=5, action_dim=2)


def every_window(protocol: str):
    """(obs step indices, action step indices, current steps, split name) of every window."""
    cfg = protocol_config(protocol)
    splits = make_splits(
        stamped_episodes(), cfg, seed=0, split_unit=get_protocol(protocol).split_unit
    )
    for name in ("train", "val", "test"):
        windows = getattr(splits, name)
        obs, act = windows.window_arrays()
        _, t = windows.current_steps()
        yield obs[..., 0], act[..., 0], t, name


@pytest.mark.parametrize("split_unit", ["episode", "window"])
def test_standard_windows_never_hold_a_later_observation(split_unit):
    cfg = protocol_config("standard")
    assert cfg.input_obs_steps == cfg.n_obs_steps == 2
    splits = make_splits(stamped_episodes(), cfg, seed=0, split_unit=split_unit)
    n = 0
    for windows in (splits.train, splits.val, splits.test):
        obs, _ = windows.window_arrays()
        _, t = windows.current_steps()
        steps = obs[..., 0]
        assert steps.shape[1] == 2
        # the leak check: no observation after the window's current step
        assert (steps <= t[:, None]).all()
        assert (steps[:, -1] == t).all()
        n += len(windows)
    assert n > 300


def test_reference_windows_hold_the_observations_after_the_current_step():
    cfg = protocol_config("reference")
    assert cfg.input_obs_steps == cfg.horizon == 16
    future = 0
    for obs_steps, act_steps, t, _ in every_window("reference"):
        assert obs_steps.shape[1] == 16
        # one observation per action: the one each demonstrated action was taken after
        assert (obs_steps == act_steps).all()
        assert (obs_steps[:, 1] == t).all()  # offset 0 is the current step (To - 1 = 1)
        later = obs_steps[:, 2:] > t[:, None]
        future += int(later.any(axis=1).sum())
    # every window holds later observations, except the padded ends of episodes
    assert future > 0.9 * sum(len(t) for *_, t, _ in every_window("reference"))


def test_window_split_puts_an_episode_on_both_sides_and_the_episode_split_never_does():
    episodes = stamped_episodes()
    cfg = protocol_config("standard")
    by_episode = make_splits(episodes, cfg, seed=0, split_unit="episode")
    parts = {k: set(v.tolist()) for k, v in by_episode.episodes.items()}
    assert not parts["train"] & parts["test"] and not parts["train"] & parts["val"]
    by_window = make_splits(episodes, cfg, seed=0, split_unit="window")
    shared = set(by_window.episodes["train"].tolist()) & set(by_window.episodes["test"].tolist())
    assert len(shared) >= len(episodes) - 1
    sizes = [len(by_window.train), len(by_window.val), len(by_window.test)]
    assert sum(sizes) == len(by_episode.train) + len(by_episode.val) + len(by_episode.test)
    assert abs(sizes[2] / sum(sizes) - 0.15) < 0.01
    # no window on two sides: (episode, t) pairs are disjoint
    keys = [set(zip(*w.current_steps(), strict=True)) for w in (by_window.train, by_window.test)]
    assert not keys[0] & keys[1]


@pytest.mark.parametrize("name", ["liquid_mdn", "diffusion"])
def test_a_reference_policy_reads_the_future_and_closed_loop_fills_it_with_the_present(name):
    torch.manual_seed(0)
    policy = make_policy(name, obs_window="horizon", **TINY_MODELS[name]).eval()
    window = torch.randn(3, 16, 5)
    changed = window.clone()
    changed[:, 5:] += 1.0  # observations after the current step
    a = policy.predict_chunk(window, deterministic=True)
    b = policy.predict_chunk(changed, deterministic=True)
    assert not torch.allclose(a, b)
    history = window[:, :2]
    filled = torch.cat([history, history[:, -1:].expand(-1, 14, -1)], dim=1)
    live = policy.predict_chunk(history, deterministic=True)
    assert torch.allclose(live, policy.predict_chunk(filled, deterministic=True))
    standard = make_policy(name, **TINY_MODELS[name])
    with pytest.raises(ValueError, match=r"obs must have shape \(B, To, Do\) = \(B, 2, 5\)"):
        standard.predict_chunk(window)


def test_offline_metrics_give_a_reference_policy_its_whole_window():
    from lnmdn_agents.evaluation.offline import offline_metrics

    torch.manual_seed(0)
    policy = make_policy("liquid_mdn", obs_window="horizon", **TINY_MODELS["liquid_mdn"]).eval()
    obs = torch.randn(8, 16, 5)
    act = torch.randn(8, 16, 2)
    got = offline_metrics(policy, obs, act, ks=(1,))["mse_deterministic"]
    norm = policy.normalizer
    det = policy.predict_chunk(obs, deterministic=True)
    want = ((norm.normalize_action(det) - norm.normalize_action(act)) ** 2).mean().item()
    assert got == pytest.approx(want, rel=1e-5)
    # the same windows with the future replaced by the present score otherwise
    filled = torch.cat([obs[:, :2], obs[:, 1:2].expand(-1, 14, -1)], dim=1)
    blind = offline_metrics(policy, filled, act, ks=(1,))["mse_deterministic"]
    assert abs(blind - got) > 1e-5


def test_protocol_settings_are_checked():
    with pytest.raises(ValueError, match="unknown protocol 'paper'; known"):
        TrainConfig(protocol="paper")
    with pytest.raises(ValueError, match="lwd conditions its latent prior on the To history"):
        TrainConfig(policy="lwd", protocol="reference")
    with pytest.raises(ValueError, match="contradicts protocol 'standard'"):
        TrainConfig(policy="diffusion", policy_overrides={"obs_window": "horizon"})
    with pytest.raises(ValueError, match="obs_window must be one of"):
        make_policy("diffusion", obs_window="future")
    with pytest.raises(ValueError, match="split_unit must be one of"):
        make_splits(stamped_episodes(2), protocol_config("standard"), split_unit="step")


def test_offline_evaluation_refuses_a_policy_of_the_other_protocol(monkeypatch):
    from lnmdn_agents.evaluation.offline import evaluate_offline

    policy = make_policy("diffusion", **TINY_MODELS["diffusion"])
    with pytest.raises(ValueError, match="trained with \\(lnmdn train --protocol"):
        evaluate_offline(policy, "lnmdn/pusht/expert-v0", protocol="reference")
