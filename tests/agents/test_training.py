"""Training loop: determinism, resume, metrics, run folder, config checks, DDP (torchrun, gloo)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lnmdn_agents import load_policy
from lnmdn_agents.checkpoint import policy_metadata
from lnmdn_agents.data import Episode
from lnmdn_agents.evaluation.run_folders import run_train_config
from lnmdn_agents.evaluation.runs import read_train_config
from lnmdn_agents.policies import get_policy_class, make_policy
from lnmdn_agents.training import TrainConfig, lr_at, train
from lnmdn_agents.training import loop as loop_mod
from lnmdn_agents.training.config import native_bfloat16
from lnmdn_agents.training.ema import EMA, EMASchedule

WINDOW = {"horizon": 8, "n_action_steps": 4}
SMALL = {
    "liquid_mdn": {"rnn_layers": 2, "rnn_hidden": 16, "decoder_hidden": 16, "action_embed_dim": 8},
    "gru_mdn": {"rnn_layers": 1, "rnn_hidden": 16, "decoder_hidden": 16, "action_embed_dim": 8},
    "diffusion": {
        "down_dims": [8, 16],
        "diffusion_step_embed_dim": 8,
        "num_train_timesteps": 20,
        "num_inference_steps": 5,
    },
}
BACKBONE = {"d_model": 16, "n_layers": 1, "n_heads": 2}


def synthetic_episodes(n: int = 8, length: int = 24, seed: int = 0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        obs = np.cumsum(rng.normal(size=(length + 1, 5)), axis=0).astype(np.float32)
        act = (0.5 * obs[:-1, :2] + rng.normal(scale=0.05, size=(length, 2))).astype(np.float32)
        out.append(Episode(obs, act))
    return out


def config(tmp_path: Path, policy: str = "gru_mdn", **kw) -> TrainConfig:
    base = dict(
        policy=policy,
        dataset="synthetic",
        epochs=3,
        batch_size=16,
        warmup_epochs=1.0,
        lr=3e-3,
        output_dir=str(tmp_path),
        run_name=f"{policy}_run",
        progress=False,
        val_max_windows=32,
        num_threads=1,
        policy_overrides={**BACKBONE, **WINDOW, **SMALL[policy]},
    )
    base.update(kw)
    return TrainConfig(**base)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model.safetensors"))


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float = 0.0):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol, rtol=0), k


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    eps = synthetic_episodes()
    a = train(config(tmp_path, run_name="a", epochs=2), episodes=eps)
    b = train(config(tmp_path, run_name="b", epochs=2), episodes=eps)
    c = train(config(tmp_path, run_name="c", epochs=2, seed=1), episodes=eps)
    assert_same(weights(a), weights(b))
    wa, wc = weights(a), weights(c)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_run_folder_and_metrics(tmp_path):
    overrides = {**BACKBONE, **WINDOW, **SMALL["liquid_mdn"], "mixture": "step"}
    run = train(
        config(tmp_path, "liquid_mdn", policy_overrides=overrides), episodes=synthetic_episodes()
    )
    assert {"config.json", "model.safetensors", "train_config.json", "metrics.jsonl"} <= {
        p.name for p in run.iterdir()
    }
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    for r in records:
        for key in ("step", "train/loss", "train/lr", "val/loss", "val/nll"):
            assert np.isfinite(r[key]), key
        assert r["charts/samples_per_sec"] > 0
    # the free-running share of the loss rises over the epochs (on_epoch_start hook)
    assert [r["train/free_running_weight"] for r in records] == [0.0, 0.25, 0.5]
    assert records[-1]["train/loss"] < records[0]["train/loss"]
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["policy"] == "liquid_mdn" and saved["epochs"] == 3
    policy = load_policy(run)
    assert policy.config.name == "liquid_mdn" and policy.config.horizon == 8
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert latest["epoch"] == 3
    assert len(list((run / "checkpoints").glob("epoch_*"))) == 2  # keep_checkpoints


@pytest.mark.parametrize("policy", ["diffusion", "gru_mdn"])
def test_resume_after_interruption_gives_the_same_weights(tmp_path, monkeypatch, policy):
    eps = synthetic_episodes()
    full = train(config(tmp_path, policy, run_name="full"), episodes=eps)

    original = loop_mod.save_checkpoint

    def crash_after_epoch_1(run_dir, epoch, *args, **kwargs):
        path = original(run_dir, epoch, *args, **kwargs)
        if epoch == 1:
            raise KeyboardInterrupt("simulated interruption")
        return path

    monkeypatch.setattr(loop_mod, "save_checkpoint", crash_after_epoch_1)
    cfg = config(tmp_path, policy, run_name="interrupted")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, episodes=eps)
    monkeypatch.setattr(loop_mod, "save_checkpoint", original)
    with pytest.raises(FileExistsError, match="resume"):
        train(cfg, episodes=eps)
    resumed = train(cfg, resume=True, episodes=eps)
    assert_same(weights(full), weights(resumed))
    epochs = [json.loads(x)["epoch"] for x in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2]
    if policy == "diffusion":  # the saved weights are the EMA ones, distinct from the raw ones
        ckpt = load_file(str(resumed / "checkpoints" / "epoch_0003" / "state.safetensors"))
        w = weights(resumed)
        assert torch.equal(w["unet.final.1.weight"], ckpt["ema.unet.final.1.weight"])
        assert not torch.equal(ckpt["model.unet.final.1.weight"], ckpt["ema.unet.final.1.weight"])


def test_resume_with_other_settings_is_refused(tmp_path):
    eps = synthetic_episodes()
    train(config(tmp_path, epochs=1), episodes=eps)
    with pytest.raises(ValueError, match="lr"):
        train(config(tmp_path, epochs=1, lr=1e-2), resume=True, episodes=eps)


def test_corrupted_checkpoint_on_resume_is_a_clear_error(tmp_path):
    eps = synthetic_episodes()
    run = train(config(tmp_path, epochs=1), episodes=eps)
    (run / "checkpoints" / "epoch_0001" / "state.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="corrupted"):
        train(config(tmp_path, epochs=1), resume=True, episodes=eps)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fraction": 0.0}, "fraction must be in"),
        ({"epochs": 0}, "epochs must be an integer >= 1"),
        ({"lr": 1e-4, "min_lr": 1e-3}, "min_lr"),
        ({"policy": "liquid_mnd"}, "Did you mean 'liquid_mdn'"),
        ({"policy_overrides": {"d_modle": 8}}, "unknown field"),
        ({"device": "tpu"}, "device must be"),
        ({"precision": "fp16"}, "precision must be one of"),
    ],
)
def test_invalid_train_config(kwargs, match):
    with pytest.raises((ValueError, KeyError), match=match):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("policy", ["liquid_mdn", "diffusion"])
def test_bfloat16_training_learns_and_saves_float32_weights(tmp_path, policy):
    eps = synthetic_episodes()
    run = train(config(tmp_path, policy, precision="bfloat16", epochs=4), episodes=eps)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["train/loss"] < records[0]["train/loss"]
    assert all(w.dtype == torch.float32 for w in weights(run).values())
    # the loss is computed in float32 under autocast (the heads cast their outputs)
    policy_obj = load_policy(run).train()
    batch = {"obs": torch.randn(4, 2, 5), "action": torch.randn(4, 8, 2)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = policy_obj.compute_loss(batch)
    assert loss.dtype == torch.float32


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_without_hardware_support_warns(tmp_path, monkeypatch, caplog, native):
    # without AMX / AVX512-BF16, autocast emulates bfloat16: 10-21x slower than float32 on an
    # AVX2 CPU, so the loop says so and names the fix
    monkeypatch.setattr(loop_mod, "native_bfloat16", lambda device: native)
    cfg = config(tmp_path, "liquid_mdn", precision="bfloat16", epochs=1)
    with caplog.at_level("WARNING", logger=loop_mod.__name__):
        train(cfg, episodes=synthetic_episodes())
    warned = [r.getMessage() for r in caplog.records if "bfloat16 arithmetic" in r.getMessage()]
    assert len(warned) == (0 if native else 1)
    if warned:
        assert "precision='bfloat16'" in warned[0] and "drop --precision bfloat16" in warned[0]


def test_native_bfloat16_reads_the_hardware():
    # the CPU answer is oneDNN's; other devices (e.g. "meta") are taken at their word
    cpu = native_bfloat16(torch.device("cpu"))
    assert cpu == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert native_bfloat16(torch.device("meta")) is True


def test_lr_schedule_warmup_then_cosine():
    lrs = [lr_at(s, 100, 10, 1e-3, 1e-6) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[9:]))
    assert lr_at(100, 100, 10, 1e-3, 1e-6) == pytest.approx(1e-6)


def test_cli_train(tmp_path):
    """``lnmdn train`` end to end on a dataset that is not there: a clear error, no traceback."""
    from typer.testing import CliRunner

    from lnmdn_agents.cli import app

    result = CliRunner().invoke(app, ["train", "--policy", "nope", "--output-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "unknown policy 'nope'" in result.output


DDP_SCRIPT = """
import json, sys
import numpy as np
import torch
sys.path.insert(0, {tests!r})
from test_training import config, synthetic_episodes
from lnmdn_agents.training import train
from pathlib import Path
torch.set_num_threads(1)
run = train(config(Path({out!r}), run_name={name!r}, epochs=2), episodes=synthetic_episodes())
"""


def test_ddp_two_processes_match_one(tmp_path):
    """torchrun, 2 CPU processes (gloo), global batch 16 = 2 x 8: the same weights as 1 process."""
    tests_dir = str(Path(__file__).parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    for nproc, name in ((1, "single"), (2, "ddp")):
        script = tmp_path / f"{name}.py"
        script.write_text(
            textwrap.dedent(DDP_SCRIPT.format(tests=tests_dir, out=str(tmp_path), name=name))
        )
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += ["--nproc_per_node", str(nproc), str(script)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    single, ddp = weights(tmp_path / "single"), weights(tmp_path / "ddp")
    # The attention key bias has a zero gradient in exact arithmetic (softmax is shift-invariant),
    # so Adam turns float round-off (which differs with the reduction order) into full-size steps
    # there. It cannot change any output; compare the query and value parts of the bias only.
    d = BACKBONE["d_model"]
    for w in (single, ddp):
        for k in [k for k in w if k.endswith("self_attn.in_proj_bias")]:
            w[k] = torch.cat([w[k][:d], w[k][2 * d :]])
    assert_same(single, ddp, atol=1e-5)
    obs = torch.randn(4, 2, 5) * 3
    out = [
        load_policy(tmp_path / n).predict_chunk(obs, deterministic=True) for n in ("single", "ddp")
    ]
    assert torch.allclose(out[0], out[1], atol=1e-5)
    for name, procs in (("single", 1), ("ddp", 2)):
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(x)["charts/processes"] for x in lines] == [procs, procs]


def test_cli_options_are_generated_from_train_config():
    import dataclasses

    from typer.testing import CliRunner

    from lnmdn_agents.cli import app
    from lnmdn_agents.training.cli import _parse_overrides

    result = CliRunner().invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for f in dataclasses.fields(TrainConfig):
        flag = "--set" if f.name == "policy_overrides" else "--" + f.name.replace("_", "-")
        assert flag in result.output, flag
    assert "--resume" in result.output
    assert _parse_overrides(["d_model=128", "down_dims=[8,16]", "sampler=ddim"]) == {
        "d_model": 128,
        "down_dims": [8, 16],
        "sampler": "ddim",
    }
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        _parse_overrides(["d_model"])


def test_closed_loop_validation_keeps_the_best_checkpoint(tmp_path):
    """eval_every: validation seeds (50000+), eval/* metrics, and best/ holds the best epoch."""
    cfg = config(
        tmp_path,
        "liquid_mdn",
        epochs=3,
        eval_every=1,
        eval_episodes=2,
        eval_env="lnmdn/PushT-v0",
    )
    run = train(cfg, episodes=synthetic_episodes())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    scores = [r["eval/mean_score"] for r in records]
    assert len(scores) == 3 and all(0.0 <= x <= 1.0 for x in scores)
    assert all(0.0 <= r["eval/success_rate"] <= 1.0 for r in records)
    minutes = [r["charts/train_minutes"] for r in records]
    assert minutes == sorted(minutes) and minutes[0] > 0
    best = load_policy(run / "best")
    meta = policy_metadata(run / "best")
    best_epoch = meta["epoch"]
    assert meta["eval/mean_score"] == max(scores)
    assert best_epoch == 1 + scores.index(max(scores))  # the first epoch with the best score
    assert best.config.to_dict() == load_policy(run).config.to_dict()
    # lnmdn eval RUN/best reads the run's settings (dataset, env) as lnmdn eval RUN does
    assert read_train_config(run / "best") == read_train_config(run) != {}
    # scripts that replay the run's validation rebuild its settings from the same file
    rebuilt = run_train_config(run / "best")
    assert isinstance(rebuilt, TrainConfig) and rebuilt.eval_every == 1
    assert rebuilt.dataset == read_train_config(run)["dataset"]
    with pytest.raises(FileNotFoundError, match="not a training run"):
        run_train_config(tmp_path / "nothing")


@pytest.mark.parametrize(
    ("selection", "kept"),
    [
        # success rates over 20 episodes: 0.9's standard error is sqrt(0.9 * 0.1 / 20) = 0.067
        ("best", {1: True, 2: True, 3: False, 4: False, 5: False}),
        ("latest_within_se", {1: True, 2: True, 3: True, 4: False, 5: True}),
    ],
)
def test_selection_rules_pick_the_kept_checkpoint(tmp_path, selection, kept):
    """ "best" keeps the first highest score; "latest_within_se" moves on to every later
    checkpoint within one standard error of the highest (0.85 and 0.9 after 0.9; not 0.8),
    and a resumed run's logged records set where the band lies."""
    from lnmdn_agents.training.validation import BestCheckpoint

    policy = make_policy("gru_mdn", obs_dim=3, action_dim=2, horizon=4, n_action_steps=2)
    scores = {1: 0.5, 2: 0.9, 3: 0.85, 4: 0.8, 5: 0.9}
    best = BestCheckpoint(tmp_path / "best", selection=selection)
    records = []
    for epoch, score in scores.items():
        record = {"eval/mean_score": score, "eval/episodes": 20}
        assert best.offer(policy, record, epoch, 10 * epoch) == kept[epoch], epoch
        records.append(record)
    meta = policy_metadata(tmp_path / "best")
    assert meta["epoch"] == max(e for e, k in kept.items() if k)
    assert meta["selection"] == selection
    # a resumed run: the records logged before it set the highest score and its band
    resumed = BestCheckpoint(tmp_path / "best", records[:3], selection)
    assert resumed.offer(policy, {"eval/mean_score": 0.8, "eval/episodes": 20}, 4, 40) is False
    # a logged std replaces the Bernoulli bound: a std of 0.4 over 100 episodes gives 0.04
    wide = BestCheckpoint(
        tmp_path / "w",
        [{"eval/mean_score": 0.9, "eval/std_score": 0.4, "eval/episodes": 100}],
        "latest_within_se",
    )
    assert wide.error == pytest.approx(0.04)
    assert wide.offer(policy, {"eval/mean_score": 0.87, "eval/episodes": 100}, 2, 20)
    assert not wide.offer(policy, {"eval/mean_score": 0.85, "eval/episodes": 100}, 3, 30)
    # a perfect validation is not exact: 20 / 20 keeps a band of 0.056 (plus-four), so 0.95 is in it
    perfect = BestCheckpoint(
        tmp_path / "p", [{"eval/mean_score": 1.0, "eval/episodes": 20}], "latest_within_se"
    )
    assert perfect.error == pytest.approx(((22 / 24) * (2 / 24) / 24) ** 0.5)
    assert perfect.offer(policy, {"eval/mean_score": 0.95, "eval/episodes": 20}, 2, 20)
    assert not perfect.offer(policy, {"eval/mean_score": 0.9, "eval/episodes": 20}, 3, 30)
    with pytest.raises(ValueError, match="selection must be one of"):
        BestCheckpoint(tmp_path / "x", selection="last")
    with pytest.raises(ValueError, match="selection must be one of"):
        config(tmp_path, selection="newest")


def test_selected_epoch_replays_a_rule_on_logged_records():
    """What examples/selection_rules.py prints: the epoch (epochs done) each rule keeps, from
    metrics.jsonl records (0-based epochs), runs that did not log the episode count included."""
    from lnmdn_agents.training.validation import selected_epoch

    scores = [0.5, 0.9, 0.85, 0.8, 0.9]
    records = [{"epoch": 10 * i + 9, "eval/mean_score": x} for i, x in enumerate(scores)]
    records.insert(1, {"epoch": 12, "train/loss": 0.1})  # epochs without validation are skipped
    assert selected_epoch(records, "best", episodes=20) == 20
    assert selected_epoch(records, "latest_within_se", episodes=20) == 50
    # 1000 episodes make the band 0.009 wide: 0.85 and 0.8 fall out, the tie at 0.9 stays in
    assert selected_epoch(records[:5], "latest_within_se", episodes=1000) == 20
    assert selected_epoch(records, "latest_within_se", episodes=1000) == 50
    assert selected_epoch([{"epoch": 0, "train/loss": 1.0}]) is None


def test_closed_loop_validation_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="eval_every must be an integer >= 0"):
        config(tmp_path, eval_every=-1)
    with pytest.raises(ValueError, match="eval_episodes >= 1"):
        config(tmp_path, eval_every=2, eval_episodes=0)


def test_resume_with_more_epochs_extends_a_finished_run(tmp_path):
    eps = synthetic_episodes()
    run = train(config(tmp_path, epochs=2), episodes=eps)
    before = weights(run)
    extended = train(config(tmp_path, epochs=3), resume=True, episodes=eps)
    records = [json.loads(x) for x in (extended / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert json.loads((run / "train_config.json").read_text())["epochs"] == 3
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["epoch"] == 3
    after = weights(extended)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # it trained on
    # from the step reached, the learning rate follows the schedule of a 3-epoch run
    fresh = train(config(tmp_path, epochs=3, run_name="fresh"), episodes=eps)
    fresh_records = [json.loads(x) for x in (fresh / "metrics.jsonl").read_text().splitlines()]
    assert records[2]["train/lr"] == fresh_records[2]["train/lr"]
    assert records[1]["train/lr"] < fresh_records[1]["train/lr"]  # the 2-epoch run had decayed
    with pytest.raises(ValueError, match="cannot shorten"):
        train(config(tmp_path, epochs=2), resume=True, episodes=eps)


def test_overwrite_replaces_a_run(tmp_path):
    eps = synthetic_episodes()
    run = train(config(tmp_path, epochs=2), episodes=eps)
    (run / "stale.txt").write_text("from the old run")
    with pytest.raises(FileExistsError, match="--overwrite"):
        train(config(tmp_path, epochs=1), episodes=eps)
    with pytest.raises(ValueError, match="exclude each other"):
        train(config(tmp_path, epochs=1), resume=True, overwrite=True, episodes=eps)
    again = train(config(tmp_path, epochs=1), overwrite=True, episodes=eps)
    assert again == run and not (run / "stale.txt").exists()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


def test_without_a_terminal_one_log_line_per_epoch_and_no_bar(tmp_path, caplog, capsys):
    """progress=True off a terminal (pytest captures stderr): no tqdm redraws, a line per epoch."""
    eps = synthetic_episodes()
    with caplog.at_level("INFO", logger="lnmdn_agents.training"):
        train(config(tmp_path, epochs=2, progress=True), episodes=eps)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [x.split(":")[0] for x in lines] == ["epoch 1/2", "epoch 2/2"]
    assert "train/loss" in lines[0] and "val/loss" in lines[0]
    assert "\r" not in capsys.readouterr().err


def test_tensorboard_events_have_the_keys_of_metrics_jsonl(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(config(tmp_path, epochs=2), episodes=synthetic_episodes())
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert tags == set(records[0]) - {"step"}
    loss = events.Scalars("train/loss")
    assert [e.step for e in loss] == [r["step"] for r in records]
    assert [e.value for e in loss] == pytest.approx([r["train/loss"] for r in records])


def test_train_config_fields_are_type_checked():
    with pytest.raises(TypeError, match=r"TrainConfig.lr must be a number \(float\), got 'x'"):
        TrainConfig(lr="x")
    with pytest.raises(TypeError, match=r"TrainConfig\.epochs must be an integer"):
        TrainConfig(epochs=2.5)
    with pytest.raises(TypeError, match=r"TrainConfig\.progress must be true or false"):
        TrainConfig(progress="no")
    assert TrainConfig(lr=1, seed=np.int64(3)).seed == 3


def test_resume_accepts_tuple_overrides_saved_as_json_lists(tmp_path):
    """--set down_dims=8,16 gives a tuple; train_config.json stores a list: still the same run."""
    eps = synthetic_episodes()
    overrides = {**BACKBONE, **WINDOW, **SMALL["diffusion"], "down_dims": (8, 16)}
    train(config(tmp_path, "diffusion", epochs=1, policy_overrides=overrides), episodes=eps)
    cfg = config(tmp_path, "diffusion", epochs=2, policy_overrides=overrides)
    run = train(cfg, resume=True, episodes=eps)
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["epoch"] == 2


def test_ema_schedule_is_read_from_the_policy_config_and_warms_up():
    diffusion = get_policy_class("diffusion").config_class
    schedule = EMASchedule.from_policy_config(diffusion(ema_power=0.5, ema_max_decay=0.99))
    assert schedule == EMASchedule(power=0.5, max_decay=0.99)
    decays = [EMASchedule().decay(s) for s in (0, 10, 1000, 10**9)]  # Diffusion Policy's values
    assert decays[0] == 0.0 and decays[1] < decays[2] < decays[3] == 0.9999
    assert EMASchedule.from_policy_config(diffusion(use_ema=False)) is None
    gru = get_policy_class("gru_mdn").config_class
    assert EMASchedule.from_policy_config(gru()) is None  # the MDN heads: off unless asked for
    assert EMASchedule.from_policy_config(gru(use_ema=True)) == EMASchedule()
    assert EMASchedule.from_policy_config(get_policy_class("lwd").config_class()) is None


def test_ema_update_averages_the_parameters_and_copies_the_buffers():
    policy = make_policy("diffusion", **BACKBONE, **WINDOW, **SMALL["diffusion"])
    ema = EMA.for_policy(policy)
    assert ema is not None and not any(p.requires_grad for p in ema.model.parameters())
    start = {k: v.clone() for k, v in ema.model.state_dict().items()}
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
        policy.normalizer.obs_min.fill_(-7.0)
    ema.update(policy, step=3)
    decay = ema.schedule.decay(3)
    assert 0.0 < decay < 1.0
    name, param = next(iter(policy.named_parameters()))
    expected = decay * start[name] + (1.0 - decay) * param
    assert torch.allclose(ema.model.state_dict()[name], expected, atol=1e-6, rtol=0)
    assert torch.equal(ema.model.normalizer.obs_min, policy.normalizer.obs_min)  # not averaged
    assert EMA.for_policy(make_policy("diffusion", use_ema=False, **SMALL["diffusion"])) is None


def test_a_moved_run_folder_from_before_a_new_field_resumes(tmp_path):
    eps = synthetic_episodes()
    first = train(config(tmp_path, run_name="old", epochs=1), episodes=eps)
    saved_path = first / "train_config.json"
    saved = json.loads(saved_path.read_text())
    del saved["precision"]  # written before the field existed: it counts as its default
    saved_path.write_text(json.dumps(saved))
    first.rename(tmp_path / "moved")
    run = train(config(tmp_path, run_name="moved", epochs=2), resume=True, episodes=eps)
    assert policy_metadata(run)["epoch"] == 2
    with pytest.raises(ValueError, match="precision"):
        train(config(tmp_path, run_name="moved", epochs=3, precision="bfloat16"), resume=True,
              episodes=eps)  # fmt: skip
