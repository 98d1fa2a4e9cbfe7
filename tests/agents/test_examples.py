"""The example scripts that choose settings, run on a real (tiny) training run."""

from __future__ import annotations

import importlib.util
import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from lnmdn_agents.training import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def tiny_pusht_run(tmp_path: Path, policy: str, run_name: str = "run", **fields: Any) -> Path:
    """One epoch of a tiny ``policy`` on 5% of the embedded Push-T keypoint data."""
    config = TrainConfig(
        policy=policy,
        dataset="lnmdn/pusht/expert-v2",  # embedded: installed on first load
        fraction=0.05,
        epochs=1,
        batch_size=64,
        output_dir=str(tmp_path),
        run_name=run_name,
        progress=False,
        val_max_windows=32,
        num_threads=1,
        **fields,
    )
    return train(config)


def test_action_horizon_replays_the_runs_own_validation(tmp_path, monkeypatch, capsys):
    """At the run's own Ta and episode count the script reproduces the run's last closed-loop
    validation exactly (same seeds, same env, same acting); other Ta values act differently."""
    run = tiny_pusht_run(
        tmp_path,
        "liquid_mdn",
        eval_every=1,
        eval_episodes=3,
        policy_overrides={
            "d_model": 16,
            "n_layers": 1,
            "n_heads": 2,
            "horizon": 8,
            "n_action_steps": 4,
            "rnn_layers": 1,
            "rnn_hidden": 16,
            "decoder_hidden": 16,
            "action_embed_dim": 8,
        },
    )
    logged = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
    argv = ["action_horizon.py", str(run), "--ta", "4,1", "--episodes", "3"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(EXAMPLES / "action_horizon.py"), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["run", "Ta"]
    rows = {int(line.split()[1]): line.split()[2:] for line in lines[1:]}
    assert set(rows) == {4, 1}
    success, score, length = (float(x) for x in rows[4])
    assert success == round(logged["eval/success_rate"], 2)
    assert score == round(logged["eval/mean_score"], 3)
    assert length == round(logged["eval/mean_length"])
    assert 0.0 <= float(rows[1][0]) <= 1.0


def test_lwd_latent_gap_scores_the_decoder_under_each_latent(tmp_path, monkeypatch, capsys):
    """Four latents per run, finite errors, the same numbers twice; a non-lwd run is refused."""
    tiny = {"d_model": 16, "n_layers": 1, "n_heads": 2}
    run = tiny_pusht_run(tmp_path, "lwd", policy_overrides={**tiny, "latent_dim": 4})
    gap = runpy.run_path(str(EXAMPLES / "lwd_latent_gap.py"))["latent_gap"]
    first = gap(run, n_windows=64)
    assert list(first) == ["posterior mean", "prior sample", "prior deterministic", "mean latent"]
    assert all(0.0 <= v < 10.0 for pair in first.values() for v in pair)
    assert gap(run, n_windows=64) == first
    monkeypatch.setattr(sys, "argv", ["lwd_latent_gap.py", str(run), "--windows", "64"])
    runpy.run_path(str(EXAMPLES / "lwd_latent_gap.py"), run_name="__main__")
    rows = capsys.readouterr().out.splitlines()[1:]
    assert len(rows) == 4 and float(rows[0].split()[-1]) == pytest.approx(
        first["posterior mean"][1], abs=1e-4
    )
    other = tiny_pusht_run(tmp_path, "liquid_mdn", run_name="liq", policy_overrides=tiny)
    with pytest.raises(SystemExit, match="not an lwd one"):
        gap(other, n_windows=8)


def test_can_failures_sorts_an_expert_trace_by_the_stage_reached(tmp_path):
    """The Can expert's own trace, cut before each stage, is sorted into that stage's failure;
    whole, it is a success (or, not counted as one, a can let go away from the gripper)."""
    if importlib.util.find_spec("robosuite") is None:
        pytest.skip("lnmdn/Can-v0 needs the 'mujoco' extra")
    import numpy as np

    import lnmdn_envs
    from lnmdn_agents.data import Episode
    from lnmdn_datasets.experts import rollout_expert
    from lnmdn_datasets.experts.can import CanExpert
    from lnmdn_envs.can_observation import CAN_OBS_SLICES

    script = runpy.run_path(str(EXAMPLES / "can_failures.py"))
    classify = script["classify"]
    env = lnmdn_envs.make_task_env("lnmdn/Can-v0")
    try:
        ep = rollout_expert(env, CanExpert(), 0, np.random.default_rng([0, 0]))
    finally:
        env.close()
    obs = ep.observations.astype(np.float64)
    can, eef = obs[:, CAN_OBS_SLICES["Can_pos"]], obs[:, CAN_OBS_SLICES["robot0_eef_pos"]]
    gap = np.linalg.norm(can - eef, axis=1)
    fingers = obs[:, CAN_OBS_SLICES["robot0_gripper_qpos"]]
    reached = int(np.argmax(gap <= 0.02))
    closed = int(np.argmax((gap <= 0.02) & (fingers[:, 0] - fingers[:, 1] < script["OPEN_GRIP"])))
    lifted = int(np.argmax(can[:, 2] - can[0, 2] >= 0.05))
    assert 0 < reached < closed < lifted < len(obs) - 1
    assert classify(True, obs)[0] == "success"
    assert classify(False, obs[:reached])[0] == "missed"
    assert classify(False, obs[: reached + 1])[0] == "not closed"
    assert classify(False, obs[: closed + 1])[0] == "not lifted"
    assert classify(False, obs[: lifted + 1])[0] == "held"
    kind, figures = classify(False, obs)
    assert kind == "dropped" and figures["final_gap"] > script["HELD_GAP"]
    assert figures["lift"] > 0.05 and figures["closest"] <= 0.02 and 0.04 < figures["grip"] < 0.06
    tiny = {"d_model": 16, "n_layers": 1, "n_heads": 2, "latent_dim": 4}
    timing = script["grasp_timing"]([Episode(ep.observations, ep.actions)])
    assert timing["steps"] >= 1 and timing["never_closed"] == 0 and timing["episodes"] == 1
    assert 0 <= timing["median_wait"] <= closed - reached  # it closes once there
    run = tiny_pusht_run(tmp_path, "lwd", eval_every=1, eval_episodes=1, policy_overrides=tiny)
    with pytest.raises(SystemExit, match="reads Can's observation"):
        script["diagnose"](run, 1, None, 0.02, 0.03)
