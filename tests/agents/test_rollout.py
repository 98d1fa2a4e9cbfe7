"""Closed-loop rollouts on real envs, with small real policies whose behaviour is known."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from torch import Tensor

import lnmdn_envs  # noqa: F401  (registers lnmdn/*)
from lnmdn_agents.evaluation.rollout import (
    EVAL_SEED_BASE,
    eval_seeds,
    evaluate,
    make_eval_env,
    rollout,
    wilson_interval,
)
from lnmdn_agents.evaluation.seeds import fork_torch_rng
from lnmdn_agents.policies.base import PolicyBase, PolicyConfig

PUSHT = "lnmdn/PushT-v0"


class ChaseBlockPolicy(PolicyBase):
    """Push-T: command the agent to the block's position (deterministic, stateless).

    ``jitter`` adds Gaussian noise (pixels) when sampling stochastically.
    """

    def __init__(self, config: PolicyConfig, jitter: float = 0.0):
        super().__init__(config)
        self.jitter = jitter

    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        obs = self.check_obs(obs)
        target = obs[:, -1, 2:4][:, None, :].expand(-1, self.config.horizon, 2).clone()
        if not deterministic and self.jitter > 0:
            target = target + self.jitter * torch.randn_like(target)
        return target


class CountingPolicy(ChaseBlockPolicy):
    """Records, per env, how many chunks it produced since that env's last reset."""

    def __init__(self, config: PolicyConfig, n_envs: int):
        super().__init__(config)
        self.counts = np.zeros(n_envs, dtype=int)
        self.history: list[list[int]] = [[] for _ in range(n_envs)]

    def reset(self, done_mask=None) -> None:
        mask = np.ones(len(self.counts), bool) if done_mask is None else np.asarray(done_mask)
        for i in np.flatnonzero(mask):
            self.history[i].append(int(self.counts[i]))
        self.counts[mask] = 0

    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        self.counts += 1
        return super().predict_chunk(obs, deterministic=deterministic)


def pusht_cfg(ta: int = 8) -> PolicyConfig:
    return PolicyConfig(obs_dim=5, action_dim=2, n_obs_steps=2, horizon=16, n_action_steps=ta)


def manual_episode(policy: PolicyBase, seed: int) -> dict:
    """Reference: one episode with a plain gym.make env, no vector env, as Diffusion Policy's
    test env starts it (``legacy_seeding``, which evaluation applies to Push-T)."""
    env = gym.make(
        PUSHT, n_obs_steps=2, n_action_steps=policy.config.n_action_steps, legacy_seeding=True
    )
    obs, _ = env.reset(seed=seed)
    length, best, success = 0, -math.inf, False
    while True:
        action, _ = policy.predict(obs, deterministic=True)
        obs, _, term, trunc, info = env.step(action)
        length += info["n_steps"]
        best = max(best, info["score"])
        success |= bool(info["is_success"])
        if term or trunc:
            env.close()
            return {"length": length, "score": best, "success": success}


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    lo, hi = wilson_interval(20, 20)
    assert hi == 1.0 and lo == pytest.approx(0.8389, abs=1e-4)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(3, 2)


def test_vector_rollout_matches_single_env_episodes_and_freezes_finished_envs():
    # episodes of different lengths (Ta = 8 on a 300-step limit, some end early on success or not)
    policy = ChaseBlockPolicy(pusht_cfg())
    seeds = eval_seeds(5)
    ref = [manual_episode(policy, s) for s in seeds]
    for n_envs in (1, 3):
        out = evaluate(
            policy, PUSHT, n_episodes=5, n_envs=n_envs, deterministic=True, progress=False
        )
        assert out["seeds"] == seeds and [e["seed"] for e in out["episodes"]] == seeds
        for got, want in zip(out["episodes"], ref, strict=True):
            assert got["length"] == want["length"]
            assert got["score"] == pytest.approx(want["score"])
            assert got["success"] == want["success"]
        assert out["n_episodes"] == 5 and out["n_envs"] == n_envs
        assert out["env_kwargs"] == {"legacy_seeding": True}
        assert 0 <= out["success_ci95"][0] <= out["success_rate"] <= out["success_ci95"][1] <= 1
        assert out["mean_length"] == pytest.approx(np.mean([r["length"] for r in ref]))
    assert seeds[0] == EVAL_SEED_BASE


class FirstObservationPolicy(ChaseBlockPolicy):
    """Keeps the current observation of each env's first chunk of an episode."""

    def __init__(self, config: PolicyConfig):
        super().__init__(config)
        self.first: list[np.ndarray] = []
        self._fresh = True

    def reset(self, done_mask=None) -> None:
        self._fresh = True

    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        if self._fresh:
            self.first.append(obs[0, -1].numpy().astype(np.float64))
            self._fresh = False
        return super().predict_chunk(obs, deterministic=deterministic)


def test_given_start_states_are_restored_as_recorded_not_in_the_legacy_order():
    """Push-T's seeded evaluation starts use DP's legacy order; given states (a dataset's,
    recorded in the env's own order) must come back where they were recorded."""
    state = np.array([200.0, 300.0, 250.0, 260.0, 1.2])
    policy = FirstObservationPolicy(pusht_cfg())
    out = evaluate(
        policy, PUSHT, 1, n_envs=1, start_states=[state], deterministic=True, progress=False
    )
    assert "legacy_seeding" not in out["env_kwargs"]
    np.testing.assert_allclose(policy.first[0], state, atol=1e-6)


def test_recurrent_state_is_reset_per_env_at_episode_start():
    n_envs = 2
    policy = CountingPolicy(pusht_cfg(), n_envs)
    env = make_eval_env(PUSHT, n_envs, n_obs_steps=2, n_action_steps=8)
    episodes, _ = rollout(policy, env, eval_seeds(3), deterministic=True, progress=False)
    env.close()
    # env 0 runs episodes 0 then 2; env 1 runs episode 1, is parked (reset) and stays frozen.
    # Every reset after the first must see exactly the chunks of the episode that just ended.
    chunks = [math.ceil(e["length"] / 8) for e in episodes]
    assert policy.history[0] == [0, chunks[0]]
    assert policy.history[1] == [0, chunks[1]]
    assert policy.counts[0] == chunks[2]  # episode 2 ended the rollout: no reset after it
    assert len(episodes) == 3


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
def test_caller_vector_env_in_autoreset_modes(mode):
    policy = ChaseBlockPolicy(pusht_cfg())
    seeds = eval_seeds(3)
    ref = [manual_episode(policy, s) for s in seeds]
    env = gym.make_vec(
        PUSHT, num_envs=2, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode}
    )
    episodes, _ = rollout(policy, env, seeds, deterministic=True, progress=False)
    env.close()
    assert [e["length"] for e in episodes] == [r["length"] for r in ref]
    assert [e["success"] for e in episodes] == [r["success"] for r in ref]


def test_videos_and_stochastic_sampling_are_seeded(tmp_path):
    policy = ChaseBlockPolicy(pusht_cfg(), jitter=20.0)
    kw = dict(n_episodes=2, n_envs=2, progress=False, env_kwargs={"max_episode_steps": 40})
    a = evaluate(policy, PUSHT, video_dir=tmp_path, n_videos=1, **kw)
    b = evaluate(policy, PUSHT, torch_seed=0, **kw)
    assert [e["score"] for e in a["episodes"]] == [e["score"] for e in b["episodes"]]
    assert len(a["videos"]) == 1
    import imageio.v2 as imageio

    frames = imageio.mimread(a["videos"][0])
    assert len(frames) == 41  # reset frame + one per single step (40-step limit)
    assert all(e["length"] == 40 for e in a["episodes"] + b["episodes"])


def test_evaluation_leaves_the_callers_torch_rng_as_it_was():
    policy = ChaseBlockPolicy(pusht_cfg(), jitter=20.0)
    kw = dict(n_episodes=1, n_envs=1, progress=False, env_kwargs={"max_episode_steps": 8})
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    evaluate(policy, PUSHT, torch_seed=7, **kw)  # seeds and samples inside fork_torch_rng
    assert torch.equal(torch.rand(3), expected)
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="boom"), fork_torch_rng(policy):
        torch.manual_seed(0)
        raise RuntimeError("boom")
    assert torch.equal(torch.get_rng_state(), state)  # restored on the way out of an error too


def test_pointmaze_rollout_sync_and_async_agree():
    pytest.importorskip("gymnasium_robotics")
    cfg = PolicyConfig(obs_dim=6, action_dim=2, n_obs_steps=2, horizon=16, n_action_steps=8)

    class TowardsGoal(PolicyBase):
        def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
            obs = self.check_obs(obs)
            force = torch.clamp(obs[:, -1, 4:6] - obs[:, -1, 0:2], -1, 1)
            return force[:, None, :].expand(-1, self.config.horizon, 2)

    runs = {
        mode: evaluate(
            TowardsGoal(cfg),
            "lnmdn/PointMaze-UMaze-v0",
            n_episodes=3,
            n_envs=2,
            vectorization_mode=mode,
            progress=False,
        )
        for mode in ("sync", "async")  # async: forkserver workers (MuJoCo)
    }
    for out in runs.values():
        assert len(out["episodes"]) == 3
        assert all(0 < e["length"] <= 300 for e in out["episodes"])
        assert out["mean_score"] == pytest.approx(out["success_rate"])  # score = success here
    assert runs["sync"]["episodes"] == runs["async"]["episodes"]


def test_sb3_evaluate_policy_runs_our_policy():
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor

    policy = ChaseBlockPolicy(pusht_cfg())
    env = Monitor(gym.make(PUSHT, max_episode_steps=80))
    mean, std = evaluate_policy(policy, env, n_eval_episodes=2, deterministic=True)
    env.close()
    assert np.isfinite(mean) and np.isfinite(std)


def test_bad_arguments_are_explained():
    policy = ChaseBlockPolicy(pusht_cfg(ta=4))
    env = make_eval_env(PUSHT, 1, n_obs_steps=2, n_action_steps=8)
    with pytest.raises(ValueError, match="n_action_steps=4"):
        rollout(policy, env, [EVAL_SEED_BASE], progress=False)
    env.close()
    with pytest.raises(ValueError, match="one seed per episode"):
        evaluate(policy, PUSHT, n_episodes=3, seeds=[1, 2], progress=False)
    with pytest.raises(ValueError, match="distinct"):
        evaluate(policy, PUSHT, n_episodes=2, seeds=[1, 1], progress=False)


def test_episode_length_in_env_steps_and_in_chunks_as_sb3_counts_it():
    """evaluate: mean_length in env steps (300 for a full Push-T episode), mean_chunks in policy
    calls, which is what SB3's evaluate_policy reports as the episode length (ceil(300 / 8))."""
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    policy = ChaseBlockPolicy(pusht_cfg())
    seed = EVAL_SEED_BASE + 3
    out = evaluate(policy, PUSHT, 1, seeds=[seed], n_envs=1, deterministic=True, progress=False)
    venv = DummyVecEnv([lambda: Monitor(gym.make(PUSHT))])
    venv.seed(seed)  # the same start as evaluate's episode
    _, sb3_lengths = evaluate_policy(
        policy, venv, n_eval_episodes=1, deterministic=True, return_episode_rewards=True
    )
    venv.close()
    episode = out["episodes"][0]
    assert sb3_lengths == [episode["chunks"]] and out["mean_chunks"] == episode["chunks"]
    assert episode["chunks"] == math.ceil(episode["length"] / 8) < episode["length"]


UNGUARDED = """
import sys
sys.path.insert(0, {tests!r})
import torch
from test_rollout import pusht_cfg
from lnmdn_agents.evaluation import evaluate
from lnmdn_agents.evaluation.rollout import make_eval_env, spawn_is_safe
from lnmdn_agents.policies.base import PolicyConfig
from test_rollout import ChaseBlockPolicy

class Still(ChaseBlockPolicy):
    def predict_chunk(self, obs, *, deterministic=False):
        obs = self.check_obs(obs)
        return torch.zeros(obs.shape[0], self.config.horizon, 2)

policy = Still(PolicyConfig(obs_dim=6, action_dim=2, n_obs_steps=2, horizon=16, n_action_steps=8))
print("safe at top level:", spawn_is_safe())
out = evaluate(policy, "lnmdn/PointMaze-Bimodal-v0", n_episodes=2, n_envs=2, progress=False)
print("episodes", out["n_episodes"], out["mean_length"])
if __name__ == "__main__":
    print("safe in the guard:", spawn_is_safe())
"""


def test_evaluate_runs_from_a_script_without_a_main_guard(tmp_path):
    """The README's evaluate(...) pasted into a file without `if __name__ == "__main__":` used to
    crash (forkserver workers re-ran the script); it now runs with sync envs."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "eval_script.py"
    script.write_text(UNGUARDED.format(tests=str(Path(__file__).parent)))
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "safe at top level: False" in proc.stdout
    assert "episodes 2 300.0" in proc.stdout
    assert "safe in the guard: True" in proc.stdout
    assert "bootstrapping" not in proc.stderr


def test_off_a_terminal_one_log_line_per_batch_of_episodes(caplog, capsys):
    policy = ChaseBlockPolicy(pusht_cfg())
    with caplog.at_level("INFO", logger="lnmdn_agents.evaluation.loop"):
        evaluate(policy, PUSHT, 4, n_envs=2, env_kwargs={"max_episode_steps": 16})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rollout:")]
    assert [x.split(",")[0] for x in lines] == ["rollout: 2/4 episodes", "rollout: 4/4 episodes"]
    assert "\r" not in capsys.readouterr().err  # no tqdm redraws off a terminal
