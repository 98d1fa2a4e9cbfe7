"""Offline metrics against closed-form answers, with real policies whose output law is known."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from scipy import integrate, stats
from torch import Tensor

from lnmdn_agents.evaluation.offline import offline_metrics
from lnmdn_agents.policies.base import PolicyBase, PolicyConfig


class GaussianChunkPolicy(PolicyBase):
    """Chunks are Gaussian in normalised units: mean ``mu(obs)`` and std ``sigma``, iid per element.

    ``mu[b, t, d] = obs[b, -1, 0] + cubic * (t - T/2) ** 3``. ``log_prob`` is exact.
    """

    def __init__(self, config: PolicyConfig, sigma: float, cubic: float = 0.0, stats=None):
        super().__init__(config, stats)
        self.sigma = sigma
        self.cubic = cubic

    def mean_norm(self, obs: Tensor) -> Tensor:
        c = self.config
        t = torch.arange(c.horizon, dtype=torch.float32) - c.horizon / 2
        base = obs[:, -1, 0][:, None, None].float()
        return base + self.cubic * t[None, :, None] ** 3 + torch.zeros(1, 1, c.action_dim)

    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        obs = self.check_obs(obs)
        mu = self.mean_norm(obs)
        if not deterministic:
            mu = mu + self.sigma * torch.randn_like(mu)
        return self.normalizer.unnormalize_action(mu)

    def log_prob(self, obs: Tensor, action: Tensor) -> Tensor:
        a_n = self.normalizer.normalize_action(torch.as_tensor(action).float())
        z = (a_n - self.mean_norm(self.check_obs(obs))) / self.sigma
        return (-0.5 * z**2 - math.log(self.sigma) - 0.5 * math.log(2 * math.pi)).sum(dim=(1, 2))


class BoundGaussianPolicy(GaussianChunkPolicy):
    log_prob_is_bound: ClassVar[bool] = True


class TwoModePolicy(PolicyBase):
    """Each chunk is ``obs[-1, 0]`` (mode A) or ``obs[-1, 0] + gap`` (mode B), prob 1/2 each."""

    def __init__(self, config: PolicyConfig, gap: float):
        super().__init__(config)
        self.gap = gap

    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        obs = self.check_obs(obs)
        b, c = obs.shape[0], self.config
        base = obs[:, -1, 0][:, None, None].expand(b, c.horizon, c.action_dim)
        if deterministic:
            return base.clone()
        pick = (torch.rand(b, 1, 1) < 0.5).float()
        return base + pick * self.gap


def windows(n: int, cfg: PolicyConfig, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, cfg.n_obs_steps, cfg.obs_dim, generator=g) - 0.5


CFG = PolicyConfig(obs_dim=3, action_dim=2, n_obs_steps=2, horizon=8, n_action_steps=4)


def test_exact_nll_mse_and_per_step_error():
    sigma = 0.3
    policy = GaussianChunkPolicy(CFG, sigma=sigma)
    obs = windows(64, CFG)
    dev = torch.linspace(-0.4, 0.4, CFG.horizon)  # known offset per horizon step
    actions = policy.mean_norm(obs) + dev[None, :, None]
    out = offline_metrics(policy, obs, actions, ks=(1,), batch_size=10)
    expected_nll = 0.5 * math.log(2 * math.pi * sigma**2) + float((dev**2).mean()) / (2 * sigma**2)
    assert out["nll"] == pytest.approx(expected_nll, rel=1e-5)
    assert out["nll_kind"] == "exact"
    assert out["mse_deterministic"] == pytest.approx(float((dev**2).mean()), rel=1e-5)
    np.testing.assert_allclose(out["per_step_mse"], (dev**2).numpy(), rtol=1e-5, atol=1e-9)
    assert out["action_units"] == "normalised"
    assert out["n_windows"] == 64


def test_sample_mean_mse_and_diversity():
    sigma, k, d = 0.5, 10, 0.2
    policy = GaussianChunkPolicy(CFG, sigma=sigma)
    obs = windows(4000, CFG)
    actions = policy.mean_norm(obs) + d
    out = offline_metrics(policy, obs, actions, ks=(k,), seed=1, batch_size=1000)
    # mean of K iid N(mu, s^2) minus (mu + d): E[(e_bar - d)^2] = s^2 / K + d^2
    assert out["mse_sample_mean"] == pytest.approx(sigma**2 / k + d**2, rel=0.02)
    # unbiased variance across samples has expectation s^2, so diversity -> s
    assert out["diversity"] == pytest.approx(sigma, rel=0.01)


def test_best_of_k_gaussian_matches_order_statistics():
    # one element per chunk (T = Da = 1), so a sample's MSE is sigma^2 Z^2
    cfg = PolicyConfig(obs_dim=1, action_dim=1, n_obs_steps=1, horizon=1, n_action_steps=1)
    sigma = 0.7
    policy = GaussianChunkPolicy(cfg, sigma=sigma)
    obs = windows(20000, cfg, seed=3)
    actions = policy.mean_norm(obs)
    ks = (1, 2, 5, 10)
    out = offline_metrics(policy, obs, actions, ks=ks, seed=2, batch_size=5000)
    for k in ks:
        # E[min_k sigma^2 Z^2] = sigma^2 * int_0^inf P(|Z| > sqrt(u))^k du
        val, _ = integrate.quad(lambda u, k=k: (2 * stats.norm.sf(math.sqrt(u))) ** k, 0, np.inf)
        assert out["best_of_k_mse"][str(k)] == pytest.approx(sigma**2 * val, rel=0.04), k
    assert "jerk" not in out  # T < 4: no third difference


def test_best_of_k_two_modes_halves_per_sample():
    gap = 0.6
    policy = TwoModePolicy(CFG, gap=gap)
    obs = windows(20000, CFG, seed=4)
    actions = obs[:, -1, 0][:, None, None].expand(-1, CFG.horizon, CFG.action_dim)
    out = offline_metrics(policy, obs, actions, ks=(1, 2, 5), seed=0, batch_size=4096)
    # each sample misses with prob 1/2 (MSE gap^2): E[min over k] = gap^2 / 2^k
    for k in (1, 2, 5):
        expected = gap**2 / 2**k
        tol = 4 * gap**2 * math.sqrt(0.5**k * (1 - 0.5**k) / 20000)
        assert abs(out["best_of_k_mse"][str(k)] - expected) < tol, k
    assert "nll" not in out  # no log_prob -> no NLL
    assert out["mse_deterministic"] == pytest.approx(0.0, abs=1e-12)
    # best-of-K never increases with K (nested samples)
    vals = [out["best_of_k_mse"][str(k)] for k in (1, 2, 5)]
    assert vals == sorted(vals, reverse=True)


def test_jerk_of_cubic_chunks_and_noise():
    sigma, cubic = 0.1, 0.01
    policy = GaussianChunkPolicy(CFG, sigma=sigma, cubic=cubic)
    obs = windows(3000, CFG, seed=5)
    actions = policy.mean_norm(obs)
    out = offline_metrics(policy, obs, actions, ks=(4,), batch_size=1000)
    # third difference of c t^3 is 6c; iid noise adds (1 + 9 + 9 + 1) sigma^2
    assert out["jerk_deterministic"] == pytest.approx((6 * cubic) ** 2, rel=1e-4)
    assert out["jerk_demo"] == pytest.approx((6 * cubic) ** 2, rel=1e-4)
    assert out["jerk"] == pytest.approx((6 * cubic) ** 2 + 20 * sigma**2, rel=0.03)


def test_errors_are_in_normalised_units_and_bound_is_labelled():
    # raw action range [0, 10] -> normalised = raw / 5 - 1, so raw errors shrink by 1/25
    st = {
        "obs": {"min": -np.ones(3), "max": np.ones(3)},
        "action": {"min": np.zeros(2), "max": 10 * np.ones(2)},
    }
    policy = BoundGaussianPolicy(CFG, sigma=0.1, stats=st)
    obs = windows(16, CFG)
    raw_mean = policy.normalizer.unnormalize_action(policy.mean_norm(obs))
    out = offline_metrics(policy, obs, raw_mean + 1.0, ks=(1,))  # 1 raw unit = 0.2 normalised
    assert out["mse_deterministic"] == pytest.approx(0.04, rel=1e-4)
    assert out["nll_kind"] == "bound"


def test_seeded_and_restores_global_rng():
    policy = GaussianChunkPolicy(CFG, sigma=0.3)
    obs = windows(32, CFG)
    actions = policy.mean_norm(obs)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = offline_metrics(policy, obs, actions, ks=(1, 3), seed=7)
    after = torch.rand(1)
    b = offline_metrics(policy, obs, actions, ks=(1, 3), seed=7)
    assert a == b
    assert torch.equal(before, after)


def test_bad_input_names_the_value():
    policy = GaussianChunkPolicy(CFG, sigma=0.3)
    obs = windows(4, CFG)
    with pytest.raises(ValueError, match=r"actions must have shape \(N, T, Da\)"):
        offline_metrics(policy, obs, torch.zeros(4, 5, 2))
    with pytest.raises(ValueError, match=r"obs must have shape"):
        offline_metrics(policy, obs[:, :1], torch.zeros(4, 8, 2))
    with pytest.raises(ValueError, match="ks must be"):
        offline_metrics(policy, obs, torch.zeros(4, 8, 2), ks=(0, 2))


# -- latency and parameter counts ---------------------------------------------------------------
class CountingBackbone(torch.nn.Module):
    def __init__(self, do: int, d: int):
        super().__init__()
        self.proj = torch.nn.Linear(do, d)  # do*d + d parameters
        self.calls = 0

    def forward(self, obs_n: Tensor) -> Tensor:
        self.calls += 1
        return self.proj(obs_n)[:, -1]


class TinyHeadPolicy(PolicyBase):
    def __init__(self, config: PolicyConfig):
        super().__init__(config)
        self.backbone = CountingBackbone(config.obs_dim, 4)
        self.head = torch.nn.Linear(4, config.horizon * config.action_dim)
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.ema = torch.nn.Linear(4, 4).requires_grad_(False)  # frozen: not counted

    def predict_chunk(self, obs: Tensor, *, deterministic: bool = False) -> Tensor:
        ctx = self.backbone(self.normalizer.normalize_obs(self.check_obs(obs)))
        out = self.scale * self.head(ctx)
        return out.reshape(-1, self.config.horizon, self.config.action_dim)


def test_count_parameters_by_component():
    from lnmdn_agents.evaluation.latency import count_parameters

    counts = count_parameters(TinyHeadPolicy(CFG))
    hd = CFG.horizon * CFG.action_dim
    assert counts == {
        "backbone": 3 * 4 + 4,
        "head": 4 * hd + hd,  # the child module called "head"
        "other": 1,  # the parameter registered on the policy itself
        "head_total": 4 * hd + hd + 1,  # everything but the backbone
        "total": 3 * 4 + 4 + 4 * hd + hd + 1,
    }
    with pytest.raises(TypeError, match=r"nn\.Module"):
        count_parameters(object())


def test_policy_latency_head_alone_skips_the_backbone():
    from lnmdn_agents.evaluation.latency import measure_latency, policy_latency

    policy = TinyHeadPolicy(CFG)
    out = policy_latency(policy, n_calls=7, warmup=2)
    # end to end: 2 + 7 backbone calls; head alone: none timed, one per round (5) fills the cache
    assert policy.backbone.calls == 9 + 5
    assert out["end_to_end_ms"] > 0 and out["head_ms"] > 0 and out["batch_size"] == 1
    assert "forward" not in vars(policy.backbone)  # the cache is removed afterwards
    policy.predict(np.zeros((CFG.n_obs_steps, CFG.obs_dim), np.float32))
    assert policy.backbone.calls == 15
    assert out["end_to_end"]["n_calls"] == 7 and out["head"]["n_calls"] == 7

    calls = []
    stats_ = measure_latency(lambda: calls.append(1), n_calls=5, warmup=3)
    assert len(calls) == 8 and stats_["p10_ms"] <= stats_["median_ms"] <= stats_["p90_ms"]
    no_backbone = policy_latency(GaussianChunkPolicy(CFG, sigma=0.1), n_calls=3, warmup=0)
    assert no_backbone["head_ms"] is None


@pytest.mark.parametrize("name", __import__("lnmdn_agents").available_policies())
def test_every_registered_policy_gets_every_metric(name):
    import lnmdn_agents
    from lnmdn_agents.evaluation.latency import count_parameters, policy_latency

    policy = lnmdn_agents.make_policy(name)
    c = policy.config
    obs = torch.rand(2, c.n_obs_steps, c.obs_dim) * 2 - 1
    act = torch.rand(2, c.horizon, c.action_dim) * 2 - 1
    out = offline_metrics(policy, obs, act, ks=(1, 2))
    assert len(out["per_step_mse"]) == c.horizon
    assert out["best_of_k_mse"]["2"] <= out["best_of_k_mse"]["1"]
    if callable(getattr(policy, "log_prob", None)):
        assert math.isfinite(out["nll"])
        assert out["nll_kind"] == ("bound" if policy.log_prob_is_bound else "exact")
    lat = policy_latency(policy, n_calls=1, warmup=0)
    assert lat["end_to_end_ms"] > 0
    assert count_parameters(policy)["total"] == policy.num_parameters()
