"""The policy contract, for every registered policy, plus the mixture and diffusion specifics.

The noise scheduler the diffusion heads share is tested in ``test_noise_scheduler.py``."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from lnmdn_agents import load_policy, save_policy
from lnmdn_agents.data import Episode, WindowDataset, compute_stats
from lnmdn_agents.policies import (
    PolicyBase,
    TrainingHooks,
    available_policies,
    config_from_dict,
    get_policy_class,
    make_policy,
)
from lnmdn_agents.policies.liquid_mdn.modeling import MixtureParams, mixture_log_prob

POLICIES = available_policies()
DIMS = {"obs_dim": 5, "action_dim": 2, "n_obs_steps": 2, "horizon": 8, "n_action_steps": 4}
# Small sizes for the contract tests; each policy takes the fields its config has.
SMALL = {
    "d_model": 16,
    "n_layers": 1,
    "n_heads": 2,
    "rnn_layers": 2,
    "rnn_hidden": 16,
    "decoder_hidden": 16,
    "action_embed_dim": 8,
    "down_dims": (8, 16),
    "diffusion_step_embed_dim": 8,
    "num_train_timesteps": 20,
    "num_inference_steps": 5,
    "latent_dim": 8,
    "encoder_hidden_dim": 32,
    "hyper_hidden_dim": 32,
    "policy_hidden_dim": 16,
    "denoiser_hidden_dim": 32,
    "denoiser_blocks": 1,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def small_config(name: str, **overrides):
    cls = get_policy_class(name).config_class
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in {**SMALL, **DIMS}.items() if k in fields}
    return cls(**{**kwargs, **overrides})


def episodes(n: int = 4, length: int = 30, seed: int = 0) -> list[Episode]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        obs = np.cumsum(rng.normal(size=(length + 1, 5)), axis=0).astype(np.float32) * 10
        act = (0.05 * obs[:-1, :2] + rng.normal(scale=0.1, size=(length, 2))).astype(np.float32)
        out.append(Episode(obs, act))
    return out


def setup(name: str, n: int = 16, **overrides) -> tuple[PolicyBase, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    eps = episodes()
    cfg = dataclasses.replace(small_config(name), **overrides)
    data = WindowDataset(eps, cfg)
    obs, act = data.window_arrays(np.arange(n))
    policy = make_policy(name, cfg, stats=compute_stats(eps))
    return policy, {"obs": torch.from_numpy(obs), "action": torch.from_numpy(act)}


def history(policy: PolicyBase, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The (B, To, Do) observation history of a training batch (its first To observations)."""
    return batch["obs"][:, : policy.config.n_obs_steps]


# -- registry and configs -----------------------------------------------------------------------
def test_registry_has_the_built_ins_and_names_agree():
    assert {"liquid_mdn", "lstm_mdn", "gru_mdn", "diffusion"} <= set(POLICIES)
    for name in POLICIES:
        assert get_policy_class(name).config_class.name == name
    with pytest.raises(KeyError, match=r"Did you mean 'liquid_mdn'.*Available policies"):
        make_policy("liquid_mnd")


@pytest.mark.parametrize("name", POLICIES)
def test_construction_from_config_and_json_round_trip(name):
    cfg = small_config(name)
    data = json.loads(json.dumps(cfg.to_dict()))
    assert data["name"] == name
    again = config_from_dict(data)
    assert again == cfg
    policy = make_policy(name, again)
    assert policy.config.name == name and policy.num_parameters() > 0


@pytest.mark.parametrize(
    ("name", "overrides", "match"),
    [
        ("liquid_mdn", {"n_action_steps": 8}, "n_action_steps must be <= horizon - n_obs_steps"),
        ("liquid_mdn", {"cell": "lstm"}, "uses cell='cfc'"),
        ("gru_mdn", {"min_std": 0.0}, "min_std must be > 0"),
        ("liquid_mdn", {"prev_action_dropout": 1.0}, "prev_action_dropout must be in"),
        ("liquid_mdn", {"n_components": 0}, "n_components must be an integer >= 1"),
        ("liquid_mdn", {"mean_mse_weight": -1.0}, "mean_mse_weight must be >= 0"),
        ("gru_mdn", {"mean_mse_weight": 1.0, "mixture": "step"}, "set mixture='chunk'"),
        ("diffusion", {"horizon": 7, "n_action_steps": 2}, "horizon must be divisible"),
        ("diffusion", {"sampler": "euler"}, "sampler must be one of"),
        ("diffusion", {"num_inference_steps": 50}, "num_inference_steps must be in"),
        ("diffusion", {"d_model": 10, "n_heads": 4}, "d_model must be divisible by n_heads"),
    ],
)
def test_invalid_config_is_a_clear_error(name, overrides, match):
    with pytest.raises(ValueError, match=match):
        small_config(name, **overrides)


def test_unknown_config_field_is_a_clear_error():
    data = small_config("liquid_mdn").to_dict() | {"rnn_hiden": 3}
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['rnn_hiden'\]"):
        config_from_dict(data)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("liquid_mdn", 4.3e6), ("lstm_mdn", 4.3e6), ("gru_mdn", 4.3e6), ("diffusion", 8.6e6)],
)
def test_default_sizes_match_the_paper_on_pusht(name, expected):
    """Default configs on Push-T (Do=5, Da=2): about 4.3M (recurrent MDN) and 8.6M (diffusion)."""
    n = make_policy(name, obs_dim=5, action_dim=2).num_parameters()
    assert abs(n - expected) / expected < 0.03, n


# -- the contract -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", POLICIES)
def test_loss_is_finite_and_decreases_on_a_tiny_dataset(name):
    policy, batch = setup(name)
    if isinstance(policy, TrainingHooks):
        policy.on_epoch_start(0, 2)
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # the same noise each step: the loss is a function of the weights
        loss, info = policy.compute_loss(batch)
        assert torch.isfinite(loss) and all(math.isfinite(v) for v in info.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.05 * abs(losses[0]), losses


@pytest.mark.parametrize("name", POLICIES)
def test_chunk_and_sample_shapes(name):
    policy, batch = setup(name, n=3)
    policy.eval()
    c = policy.config
    obs = history(policy, batch)
    for det in (False, True):
        chunk = policy.predict_chunk(obs, deterministic=det)
        assert chunk.shape == (3, c.horizon, c.action_dim) and torch.isfinite(chunk).all()
    samples = policy.sample_chunks(obs, 4)
    assert samples.shape == (3, 4, c.horizon, c.action_dim) and torch.isfinite(samples).all()
    policy.reset()
    actions, state = policy.predict(obs.numpy(), deterministic=True)
    assert actions.shape == (3, c.n_action_steps, c.action_dim) and state is None
    policy.reset()
    single, _ = policy.predict(obs[0].numpy(), episode_start=np.array([True]))
    assert single.shape == (c.n_action_steps, c.action_dim)


@pytest.mark.parametrize("name", POLICIES)
def test_deterministic_chunks_repeat(name):
    policy, batch = setup(name, n=3)
    policy.eval()
    obs = history(policy, batch)
    policy.reset()
    a = policy.predict_chunk(obs, deterministic=True)
    policy.reset()
    b = policy.predict_chunk(obs, deterministic=True)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", POLICIES)
def test_input_batch_is_not_mutated(name):
    policy, batch = setup(name, n=4)
    before = {k: v.clone() for k, v in batch.items()}
    policy.compute_loss(batch)
    policy.predict_chunk(history(policy, batch))
    if hasattr(policy, "log_prob"):
        policy.log_prob(history(policy, batch), batch["action"])
    for k in before:
        assert torch.equal(before[k], batch[k]), k


@pytest.mark.parametrize("name", POLICIES)
def test_save_load_round_trip_gives_identical_outputs(name, tmp_path):
    policy, batch = setup(name, n=3)
    policy.eval()
    obs = history(policy, batch)
    save_policy(policy, tmp_path / name)
    loaded = load_policy(tmp_path / name)
    assert type(loaded) is type(policy) and loaded.config == policy.config
    for k, v in policy.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    policy.reset()
    loaded.reset()
    assert torch.equal(
        policy.predict_chunk(obs, deterministic=True), loaded.predict_chunk(obs, deterministic=True)
    )
    torch.manual_seed(3)
    a = policy.sample_chunks(obs, 2)
    torch.manual_seed(3)
    b = loaded.sample_chunks(obs, 2)
    assert torch.equal(a, b)


@pytest.mark.parametrize("name", POLICIES)
def test_bad_observations_are_clear_errors(name):
    policy, batch = setup(name, n=2)
    obs = history(policy, batch)
    with pytest.raises(ValueError, match=r"obs must have shape \(B, To, Do\)"):
        policy.predict_chunk(obs[:, :, :3])
    with pytest.raises(ValueError, match=r"obs must have shape"):
        policy.predict_chunk(obs[0, 0])
    bad = obs.clone()
    bad[1, 0, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        policy.predict_chunk(bad)
    with pytest.raises(ValueError, match=r"obs, info = env\.reset"):
        policy.predict((obs[0].numpy(), {}))


@pytest.mark.parametrize("name", POLICIES)
def test_corrupted_checkpoints_are_clear_errors(name, tmp_path):
    policy, _ = setup(name, n=2)
    folder = save_policy(policy, tmp_path / "ok")
    weights = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    with pytest.raises(ValueError, match="corrupted or truncated"):
        load_policy(folder)
    folder = save_policy(policy, tmp_path / "badjson")
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_policy(folder)
    folder = save_policy(policy, tmp_path / "other")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["d_model"] = cfg["d_model"] * 2
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not match"):
        load_policy(folder)
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_policy(tmp_path / "missing")


@pytest.mark.parametrize("name", POLICIES)
def test_sb3_evaluate_policy_runs_on_the_chunked_env(name):
    gym = pytest.importorskip("gymnasium")
    sb3 = pytest.importorskip("stable_baselines3.common.evaluation")
    import lnmdn_envs  # noqa: F401  (registers the ids)

    try:
        env = gym.make("lnmdn/PushT-v0", n_obs_steps=2, n_action_steps=4, max_episode_steps=6)
    except (ImportError, gym.error.Error) as err:  # pragma: no cover - env not built yet
        pytest.skip(f"lnmdn/PushT-v0 is not available: {err}")
    policy = make_policy(name, small_config(name)).eval()
    mean, std = sb3.evaluate_policy(policy, env, n_eval_episodes=2, deterministic=True)
    assert math.isfinite(mean) and math.isfinite(std)
    env.close()


# -- mixture density heads ----------------------------------------------------------------------
def test_mixture_log_prob_matches_a_hand_computed_case():
    """Two components in 1-D: 0.25 N(0, 1) + 0.75 N(2, 0.5^2) at x = 1."""
    logw = torch.log(torch.tensor([0.25, 0.75]))
    means = torch.tensor([[0.0], [2.0]])
    stds = torch.tensor([[1.0], [0.5]])
    by_hand = 0.25 * math.exp(-0.5) / math.sqrt(2 * math.pi) + 0.75 * math.exp(-2.0) / (
        0.5 * math.sqrt(2 * math.pi)
    )
    got = mixture_log_prob(logw, means, stds, torch.tensor([1.0]))
    assert got.item() == pytest.approx(math.log(by_hand), rel=1e-6)
    # far in the tail, a naive sum of exps underflows; log-sum-exp stays finite and exact
    far = mixture_log_prob(logw, means, stds, torch.tensor([60.0]))
    # there the wide component dominates: log 0.25 + log N(60; 0, 1) (the other is e^-4900 smaller)
    expected = math.log(0.25) - 0.5 * 60.0**2 - 0.5 * math.log(2 * math.pi)
    assert far.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("name", ["liquid_mdn", "lstm_mdn", "gru_mdn"])
def test_mdn_chunk_log_prob_is_the_exact_mixture_density(name):
    """mixture="chunk": log_prob is one K-component mixture over the flattened (T, Da) chunk."""
    policy, batch = setup(name, n=3, mixture="chunk")
    policy.eval()
    obs, act = history(policy, batch), batch["action"]
    got = policy.log_prob(obs, act)
    with torch.no_grad():
        summary = policy.encode(policy.normalizer.normalize_obs(obs))
        mix = policy.chunk_mixture(summary)
        dist = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(logits=mix.log_weights),
            torch.distributions.Independent(torch.distributions.Normal(mix.means, mix.stds), 1),
        )
        expected = dist.log_prob(policy.normalizer.normalize_action(act).flatten(1))
        det = policy.predict_chunk(obs, deterministic=True)
        mode = policy.normalizer.unnormalize_action(mix.mode_mean().reshape(det.shape))
    c = policy.config
    assert mix.means.shape == (3, c.n_components, c.horizon * c.action_dim)
    assert torch.allclose(got, expected, atol=1e-4)
    assert (mix.stds >= c.min_std).all()
    # deterministic = the most likely component's whole trajectory
    assert torch.allclose(det, mode, atol=1e-5)


def test_mdn_chunk_samples_are_whole_component_trajectories():
    """With tiny stds every sampled chunk is (close to) one component's mean trajectory."""
    policy, batch = setup("liquid_mdn", n=2, mixture="chunk", min_std=1e-6)
    policy.eval()
    with torch.no_grad():
        head = policy.chunk_head[-1]
        k, n = policy.config.n_components, policy.config.horizon * policy.config.action_dim
        head.bias[k + k * n :] = -30.0  # softplus(-30) ~ 1e-13: stds at the floor
        head.weight[k + k * n :] = 0.0
        obs = history(policy, batch)
        summary = policy.encode(policy.normalizer.normalize_obs(obs))
        means = policy.chunk_mixture(summary).means  # (B, K, T*Da)
        samples = policy.normalizer.normalize_action(policy.sample_chunks(obs, 8)).flatten(2)
    dist = (samples[:, :, None] - means[:, None]).abs().amax(-1).min(-1).values  # (B, 8)
    assert (dist < 1e-3).all()


@pytest.mark.parametrize("name", ["liquid_mdn", "lstm_mdn", "gru_mdn"])
def test_mdn_log_prob_is_the_exact_autoregressive_density(name):
    """mixture="step": log_prob equals sum_t log p(a_t | a_<t, o), via torch.distributions."""
    policy, batch = setup(name, n=3, mixture="step")
    policy.eval()
    obs, act = history(policy, batch), batch["action"]
    got = policy.log_prob(obs, act)
    with torch.no_grad():
        summary = policy.encode(policy.normalizer.normalize_obs(obs))
        act_n = policy.normalizer.normalize_action(act)
        _, stepwise = policy.decode(summary, "mode", targets=act_n)  # checks the shapes only
        mix = policy.teacher_forced(summary, act_n)
        dist = torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(logits=mix.log_weights),
            torch.distributions.Independent(torch.distributions.Normal(mix.means, mix.stds), 1),
        )
        expected = dist.log_prob(act_n).sum(1)
    assert stepwise is not None and stepwise.shape == (3,)
    assert torch.allclose(got, expected, atol=1e-4)
    assert (mix.stds >= policy.config.min_std).all()


@pytest.mark.parametrize("name", ["liquid_mdn", "gru_mdn"])
def test_mdn_step_decoder_agrees_with_the_teacher_forced_pass(name):
    """Feeding the deterministic chunk back through the teacher-forced GRU reproduces it."""
    policy, batch = setup(name, n=3, mixture="step")
    policy.eval()
    with torch.no_grad():
        summary = policy.encode(policy.normalizer.normalize_obs(history(policy, batch)))
        det, _ = policy.decode(summary, "mode")
        again = policy.teacher_forced(summary, det).mode_mean()
    assert torch.allclose(det, again, atol=1e-5)


def test_mean_mse_term_is_the_closest_components_error():
    """mean_mse_weight adds w x the winner-takes-all MSE of the component means to the NLL."""
    policy, batch = setup("liquid_mdn", n=4, mixture="chunk")
    c, head = policy.config, policy.chunk_head[-1]
    k, n = c.n_components, c.horizon * c.action_dim

    def mean_bias_grad(weight: float) -> tuple[torch.Tensor, float, dict[str, float]]:
        policy.config.mean_mse_weight = weight
        policy.zero_grad()
        loss, info = policy.compute_loss(batch)
        loss.backward()
        return head.bias.grad[k : k + k * n].reshape(k, n).clone(), float(loss.detach()), info

    g0, nll, info0 = mean_bias_grad(0.0)
    g1, loss, info = mean_bias_grad(2.5)
    assert set(info0) == {"nll"} and info["nll"] == pytest.approx(nll, rel=1e-6)
    with torch.no_grad():
        obs = policy.normalizer.normalize_obs(history(policy, batch))
        means = policy.chunk_mixture(policy.encode(obs)).means  # (B, K, T*Da)
    target = policy.normalizer.normalize_action(batch["action"]).flatten(1)
    per_k = ((means - target[:, None]) ** 2).mean(-1)  # (B, K)
    assert info["mean_mse"] == pytest.approx(float(per_k.min(-1).values.mean()), rel=1e-5)
    assert loss == pytest.approx(info["nll"] + 2.5 * info["mean_mse"], rel=1e-5)
    # the extra gradient reaches the closest component of each chunk and no other
    pulled = (g1 - g0).abs().amax(-1) > 1e-7
    assert pulled.tolist() == [i in set(per_k.argmin(-1).tolist()) for i in range(k)]


def test_prev_action_dropout_acts_in_training_only():
    """The dropout hides previous actions from the teacher-forced decoder in training only."""
    policy, batch = setup("liquid_mdn", n=4, mixture="step")
    policy.config.prev_action_dropout = 0.9
    obs = policy.normalizer.normalize_obs(history(policy, batch))
    act = policy.normalizer.normalize_action(torch.as_tensor(batch["action"]))
    with torch.no_grad():
        summary = policy.encode(obs)
        policy.eval()
        a = policy.teacher_forced(summary, act).means
        b = policy.teacher_forced(summary, act).means
        policy.train()
        torch.manual_seed(0)
        c = policy.teacher_forced(summary, act).means
    assert torch.equal(a, b)
    assert not torch.allclose(a[:, 1:], c[:, 1:])  # later steps lost their previous actions
    assert torch.allclose(a[:, 0], c[:, 0])  # the first step never had one


def test_mixture_mode_and_samples():
    logw = torch.log(torch.tensor([[0.1, 0.9]]))
    means = torch.tensor([[[5.0, 5.0], [-1.0, 2.0]]])
    stds = torch.full((1, 2, 2), 1e-3)
    mix = MixtureParams(logw, means, stds)
    assert torch.equal(mix.mode_mean(), torch.tensor([[-1.0, 2.0]]))
    torch.manual_seed(0)
    draws = torch.stack([mix.sample()[0] for _ in range(400)])
    share = (draws[:, 0] > 2).float().mean().item()
    assert 0.05 < share < 0.16  # the 0.1 component


def test_diffusion_log_prob_is_a_bound_that_prefers_the_data():
    """The ELBO is flagged as a bound, and a trained model scores data above shifted data."""
    policy, batch = setup("diffusion", n=16)
    assert policy.log_prob_is_bound
    opt = torch.optim.Adam(policy.parameters(), lr=3e-3)
    for _ in range(60):
        loss, _ = policy.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    obs, act = history(policy, batch), batch["action"]
    torch.manual_seed(0)
    on_data = policy.log_prob(obs, act)
    span = policy.normalizer.action_max - policy.normalizer.action_min
    torch.manual_seed(0)
    off_data = policy.log_prob(obs, act + 0.5 * span)
    assert on_data.shape == (16,) and torch.isfinite(on_data).all()
    assert on_data.mean() > off_data.mean()


def test_the_policies_with_epoch_schedules_implement_the_training_hooks():
    hooked = {n for n in POLICIES if isinstance(make_policy(n, small_config(n)), TrainingHooks)}
    assert hooked == {"liquid_mdn", "lstm_mdn", "gru_mdn", "lwd"}  # not diffusion: no schedule


def test_diffusion_stratified_bound_estimates_the_full_bound():
    """The default log_prob (a few stratified timesteps) averages to the all-terms bound."""
    policy, batch = setup("diffusion", n=8)
    policy.eval()
    obs, act = history(policy, batch), batch["action"]
    full = dataclasses.replace(policy.config, elbo_terms=policy.config.num_train_timesteps)
    few = dataclasses.replace(policy.config, elbo_terms=6)
    torch.manual_seed(0)
    policy.config = full
    exact = torch.stack([policy.log_prob(obs, act) for _ in range(40)]).mean()
    policy.config = few
    estimate = torch.stack([policy.log_prob(obs, act) for _ in range(200)]).mean()
    assert abs(float(estimate - exact)) < 0.05 * abs(float(exact)), (estimate, exact)


def test_missing_agents_extra_names_it():
    """Importing lnmdn_agents without torch says which extra to install."""
    import subprocess
    import sys

    code = "import sys; sys.modules['torch'] = None; import lnmdn_agents"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode != 0
    assert "ImportError" in out.stderr and ".[agents]" in out.stderr and "'torch'" in out.stderr
