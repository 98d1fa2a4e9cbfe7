"""Latent Weight Diffusion (``lwd``): latent-dependent decoded policies, reconstruction, closed-loop
replanning, phase switching. The generic contract lives in ``test_policies.py``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lnmdn_agents.checkpoint import load_policy, save_policy
from lnmdn_agents.data import Episode, WindowDataset, compute_stats
from lnmdn_agents.evaluation.offline import offline_metrics
from lnmdn_agents.policies import make_policy
from lnmdn_agents.policies.lwd import LWDConfig, LWDPolicy

TINY = dict(
    obs_dim=4,
    action_dim=2,
    n_obs_steps=2,
    horizon=8,
    n_action_steps=1,
    latent_dim=8,
    encoder_hidden_dim=64,
    hyper_hidden_dim=64,
    policy_hidden_dim=32,
    d_model=32,
    n_layers=1,
    n_heads=2,
    denoiser_hidden_dim=64,
    denoiser_blocks=2,
    num_train_timesteps=20,
    num_inference_steps=5,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides) -> LWDPolicy:
    policy = make_policy("lwd", **{**TINY, **overrides})
    assert isinstance(policy, LWDPolicy)
    return policy


def two_mode_episodes(n: int, length: int = 40, seed: int = 0) -> list[Episode]:
    """Each episode follows one of two reactive behaviours a = +-tanh(W o) (a hidden mode).

    No single policy a = pi(o) fits both modes (its best is a = 0, the mean action), so a
    reconstruction far below the mean-action error shows the latent carries the mode.
    """
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(2, 4)) * 1.5
    episodes = []
    for i in range(n):
        sign = 1.0 if i % 2 == 0 else -1.0
        steps = rng.normal(scale=0.3, size=(length + 1, 4))
        obs = np.cumsum(steps, axis=0) * 0.5 + rng.normal(size=(1, 4))
        obs = np.clip(obs, -2, 2)
        act = sign * np.tanh(obs[:-1] @ w.T)
        episodes.append(Episode(obs.astype(np.float32), act.astype(np.float32)))
    return episodes


# -- config -------------------------------------------------------------------------------------
def test_config_validates_with_the_value_in_the_message():
    with pytest.raises(ValueError, match="replan_every"):
        LWDConfig(replan_every=0)
    with pytest.raises(ValueError, match=r"policy_activation.*'gelu'"):
        LWDConfig(policy_activation="gelu")
    with pytest.raises(ValueError, match="autoencoder_fraction"):
        LWDConfig(autoencoder_fraction=1.0)
    with pytest.raises(ValueError, match="num_inference_steps"):
        LWDConfig(num_train_timesteps=10, num_inference_steps=20)
    with pytest.raises(ValueError, match=r"sampler.*'euler'"):
        LWDConfig(sampler="euler")


def test_windows_carry_one_observation_per_action_only_when_asked():
    config = LWDConfig(**TINY)
    assert config.observation_delta_indices == config.action_delta_indices
    episodes = two_mode_episodes(2)
    item = WindowDataset(episodes, config)[0]
    assert item["obs"].shape == (TINY["horizon"], 4) and item["action"].shape == (8, 2)
    history_only = dataclasses.replace(config, obs_along_horizon=False)
    assert history_only.observation_delta_indices == [-1, 0]
    assert WindowDataset(episodes, history_only)[0]["obs"].shape == (2, 4)


# -- the decoded policy ---------------------------------------------------------------------------
def test_decoded_weights_depend_on_the_latent():
    torch.manual_seed(0)
    policy = tiny().eval()
    z = torch.randn(2, policy.config.latent_dim)
    w_a, w_b = policy.policy_weights(z[:1]), policy.policy_weights(z[1:])
    assert w_a.shape == (1, policy.generated_policy_parameters())
    assert torch.equal(w_a, policy.policy_weights(z[:1].clone()))  # same latent, same weights
    assert not torch.allclose(w_a, w_b)
    obs = torch.randn(1, 5, 4)
    act_a = policy.act(policy.decode(z[:1]), obs)
    act_b = policy.act(policy.decode(z[1:]), obs)
    assert act_a.shape == (1, 5, 2)
    assert (act_a - act_b).abs().max() > 1e-3  # two latents, two behaviours
    # Batched decoding equals decoding one latent at a time.
    both = policy.act(policy.decode(z), obs.expand(2, -1, -1))
    torch.testing.assert_close(both[:1], act_a)
    torch.testing.assert_close(both[1:], act_b)


def test_generated_policy_size_matches_the_mlp():
    policy = make_policy("lwd", obs_dim=5, action_dim=2)
    assert policy.generated_policy_parameters() == 5 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2
    d = policy.decode(torch.zeros(1, policy.config.latent_dim))
    assert d.num_parameters() == policy.generated_policy_parameters()
    assert policy.generated_policy_parameters() < policy.num_parameters() / 100


def test_chunk_holds_the_newest_observation_for_future_steps():
    torch.manual_seed(0)
    policy = tiny().eval()
    obs = torch.randn(3, 2, 4)
    chunk = policy.predict_chunk(obs, deterministic=True)
    assert chunk.shape == (3, 8, 2)
    # Steps >= To - 1 all see o(t): one reactive policy on one observation gives one action.
    torch.testing.assert_close(chunk[:, 1:], chunk[:, 1:2].expand(-1, 7, -1))
    torch.testing.assert_close(chunk, policy.predict_chunk(obs, deterministic=True))
    samples = policy.sample_chunks(obs, 4)
    assert samples.shape == (3, 4, 8, 2)
    assert samples[:, :, -1].std(dim=1).mean() > 0  # k latents, k different policies
    ddpm = tiny(sampler="ddpm").eval()
    ddpm.load_state_dict(policy.state_dict())
    assert ddpm.sample_chunks(obs, 2).shape == (3, 2, 8, 2)
    torch.testing.assert_close(
        ddpm.predict_chunk(obs, deterministic=True), ddpm.predict_chunk(obs, deterministic=True)
    )


def test_dataset_windows_feed_the_evaluators_with_the_history_only():
    torch.manual_seed(0)
    episodes = two_mode_episodes(4)
    policy = tiny().eval()
    obs, action = WindowDataset(episodes, policy.config).window_arrays(slice(0, 6))
    assert obs.shape == (6, 8, 4)  # one observation per action
    window, history = torch.from_numpy(obs), torch.from_numpy(obs[:, :2])
    torch.testing.assert_close(
        policy.predict_chunk(window, deterministic=True),
        policy.predict_chunk(history, deterministic=True),  # future observations are ignored
    )
    metrics = offline_metrics(policy, obs, action, ks=(1, 2), seed=0)
    assert metrics["n_windows"] == 6 and np.isfinite(metrics["best_of_k_mse"]["2"])
    with pytest.raises(ValueError, match=r"\(B, To, Do\)"):
        policy.predict_chunk(torch.from_numpy(obs[:, :5]))


# -- training -------------------------------------------------------------------------------------
def _loader(policy: LWDPolicy, episodes: list[Episode], batch: int = 32):
    data = WindowDataset(episodes, policy.config)
    gen = torch.Generator().manual_seed(0)
    return torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, generator=gen)


def _train(policy: LWDPolicy, loader, epochs: int, lr: float = 2e-3) -> None:
    opt = torch.optim.AdamW(policy.parameters(), lr=lr)
    policy.train()
    for epoch in range(epochs):
        policy.on_epoch_start(epoch, epochs)
        for batch in loader:
            loss, _ = policy.compute_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_autoencoder_reconstructs_far_below_the_mean_action():
    torch.manual_seed(0)
    episodes = two_mode_episodes(24)
    policy = tiny(kl_weight=1e-4)
    policy.normalizer.fit(compute_stats(episodes))
    loader = _loader(policy, episodes)
    policy.on_epoch_start(0, 10)  # phase 1 only
    assert policy.phase == "autoencoder"
    opt = torch.optim.AdamW(policy.parameters(), lr=2e-3)
    for _ in range(12):
        for batch in loader:
            loss, _ = policy.compute_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    policy.eval()
    obs, action = WindowDataset(episodes, policy.config).window_arrays()
    obs_t, act_t = torch.from_numpy(obs), torch.from_numpy(action)
    with torch.no_grad():
        mu, _ = policy.encode(obs_t, act_t)
        recon = policy.act(policy.decode(mu), obs_t)
    a_n = policy.normalizer.normalize_action(act_t)
    err = (policy.normalizer.normalize_action(recon) - a_n).pow(2).mean().item()
    mean_err = (a_n - a_n.mean((0, 1))).pow(2).mean().item()
    assert err < 0.1 * mean_err, (err, mean_err)


def test_phases_switch_with_the_epoch_and_train_only_their_modules():
    policy = tiny()
    assert policy.phase == "joint"
    n = 10  # autoencoder_fraction 0.5: epochs 0-4 phase 1, 5-9 phase 2
    assert [policy.config.phase_for_epoch(e, n) for e in (0, 4, 5, 9)] == [
        "autoencoder",
        "autoencoder",
        "latent_diffusion",
        "latent_diffusion",
    ]
    assert policy.config.phase_for_epoch(0, 1) == "joint"
    assert policy.config.phase_for_epoch(0, 2) == "autoencoder"
    assert policy.config.phase_for_epoch(1, 2) == "latent_diffusion"
    batch = next(iter(_loader(policy, two_mode_episodes(4), batch=16)))
    phase1 = {"encoder", "hypernet"}
    phase2 = {"denoiser", "backbone"}

    def trained_modules() -> set[str]:
        policy.zero_grad(set_to_none=True)
        loss, _ = policy.compute_loss(batch)
        loss.backward()
        return {
            name
            for name, module in policy.named_children()
            if any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())
        }

    policy.train()
    policy.on_epoch_start(0, n)
    assert trained_modules() == phase1
    policy.on_epoch_start(7, n)  # a resumed run lands straight in phase 2
    assert policy.phase == "latent_diffusion"
    assert trained_modules() == phase2
    policy.on_epoch_start(5, n)  # entering phase 2 restarts the latent statistics
    assert policy.latent_stats_count.item() == 0
    policy.compute_loss(batch)
    assert policy.latent_stats_count.item() == 1
    policy.phase = "joint"
    assert trained_modules() == phase1 | phase2


def _sampled_policy_error(policy: LWDPolicy, episodes: list[Episode]) -> float:
    """Error of sampled policies at o(t) to the nearer of the two behaviours, relative to |a|^2."""
    obs, action = WindowDataset(episodes, policy.config).window_arrays(slice(0, None, 7))
    torch.manual_seed(1)
    samples = policy.sample_chunks(torch.from_numpy(obs[:, :2]), 8)[:, :, 1]  # (N, 8, Da)
    truth = torch.from_numpy(action[:, 1])[:, None]  # a(t), one of +-tanh(W o)
    err = torch.minimum((samples - truth).pow(2).sum(-1), (samples + truth).pow(2).sum(-1))
    return (err.mean() / truth.pow(2).sum(-1).mean()).item()


def test_two_phase_training_samples_the_demonstrated_behaviours():
    """After both phases, sampled latents decode into one of the two behaviours."""
    torch.manual_seed(0)
    episodes = two_mode_episodes(24)
    policy = tiny(autoencoder_fraction=0.3)
    policy.normalizer.fit(compute_stats(episodes))
    loader = _loader(policy, episodes)
    opt = torch.optim.AdamW(policy.parameters(), lr=2e-3)
    epochs = 30
    for epoch in range(epochs):
        policy.train()
        policy.on_epoch_start(epoch, epochs)
        if epoch == policy.config.autoencoder_epochs(epochs):
            before = _sampled_policy_error(policy.eval(), episodes)  # untrained denoiser
            policy.train()
        for batch in loader:
            loss, _ = policy.compute_loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert policy.phase == "latent_diffusion"
    after = _sampled_policy_error(policy.eval(), episodes)
    assert after < 0.2 and after < 0.5 * before, (after, before)


def test_train_runs_both_phases_and_the_run_folder_loads(tmp_path):
    import json

    from lnmdn_agents.training import TrainConfig, train

    overrides = {k: v for k, v in TINY.items() if k not in ("obs_dim", "action_dim")}
    config = TrainConfig(
        policy="lwd",
        dataset="synthetic/two-mode",
        epochs=4,
        batch_size=32,
        lr=2e-3,
        warmup_epochs=0,
        output_dir=str(tmp_path),
        run_name="lwd",
        progress=False,
        policy_overrides=overrides,
    )
    run_dir = train(config, episodes=two_mode_episodes(12))
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["train/phase"] for r in records] == [1.0, 1.0, 2.0, 2.0]
    assert "train/recon_mse" in records[1] and "train/diffusion_mse" in records[2]
    assert records[3]["train/diffusion_mse"] < records[2]["train/diffusion_mse"]
    policy = load_policy(run_dir)
    assert isinstance(policy, LWDPolicy) and policy.latent_stats_count.item() > 0
    action, _ = policy.predict(np.zeros((2, 4), np.float32))
    assert action.shape == (1, 2)


# -- closed loop ----------------------------------------------------------------------------------
def test_replan_counter_samples_a_latent_every_replan_every_steps():
    torch.manual_seed(0)
    policy = tiny(replan_every=3).eval()
    obs = np.random.default_rng(0).normal(size=(3, 2, 4)).astype(np.float32)
    queries = []
    actions = []
    for _ in range(7):
        a, state = policy.predict(obs)
        assert a.shape == (3, 1, 2) and state is None
        queries.append(policy.diffusion_queries)
        actions.append(a)
    assert queries == [3, 3, 3, 6, 6, 6, 9]  # steps 0, 3, 6 re-sample every env
    np.testing.assert_array_equal(actions[0], actions[1])  # same weights, same obs
    assert not np.allclose(actions[2], actions[3])  # a fresh latent after 3 steps
    policy.reset(np.array([False, True, False]))  # env 1 finished its episode
    before = policy.diffusion_queries
    a, _ = policy.predict(obs)
    assert policy.diffusion_queries == before + 1
    np.testing.assert_array_equal(a[[0, 2]], actions[-1][[0, 2]])
    a, _ = policy.predict(obs, episode_start=np.array([True, False, False]))
    assert policy.diffusion_queries == before + 2
    policy.reset()
    policy.predict(obs[:2])  # a new batch of envs starts over
    assert policy.diffusion_queries == before + 4
    with pytest.raises(ValueError, match="done_mask has 3 entries"):
        policy.reset(np.array([True, False, True]))


def test_replan_counts_env_steps_with_open_loop_chunks():
    torch.manual_seed(0)
    policy = tiny(replan_every=3, n_action_steps=2).eval()
    obs = np.zeros((2, 4), np.float32)  # a single env's (To, Do) observation
    queries = []
    for _ in range(5):
        a, _ = policy.predict(obs)
        assert a.shape == (2, 2)
        np.testing.assert_array_equal(a[0], a[1])  # newest observation held for the Ta steps
        queries.append(policy.diffusion_queries)
    assert queries == [1, 1, 2, 2, 3]  # steps 0, 4, 8: the first chunk boundary >= 3 steps


def test_predict_rejects_the_reset_tuple_and_bad_shapes():
    policy = tiny()
    obs = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match=r"env\.reset"):
        policy.predict((obs, {}))
    with pytest.raises(ValueError, match=r"\(B, To, Do\)"):
        policy.predict(np.zeros((1, 3, 4), np.float32))


def test_checkpoint_keeps_latent_statistics(tmp_path):
    torch.manual_seed(0)
    episodes = two_mode_episodes(6)
    policy = tiny()
    policy.normalizer.fit(compute_stats(episodes))
    _train(policy, _loader(policy, episodes), epochs=2)
    assert policy.latent_stats_count.item() > 0
    policy.eval()
    save_policy(policy, tmp_path / "run")
    loaded = load_policy(tmp_path / "run")
    torch.testing.assert_close(loaded.latent_std, policy.latent_std)
    obs = torch.from_numpy(WindowDataset(episodes, policy.config).window_arrays(slice(0, 4))[0])
    torch.testing.assert_close(
        loaded.predict_chunk(obs[:, :2], deterministic=True),
        policy.predict_chunk(obs[:, :2], deterministic=True),
    )
