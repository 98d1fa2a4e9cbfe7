"""What both diffusion heads share: the noise scheduler (spacings, steps) and timestep embedding."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from lnmdn_agents import load_policy
from lnmdn_agents.config_fields import parse_field_value
from lnmdn_agents.policies import config_from_dict, make_policy
from lnmdn_agents.policies.diffusion import DiffusionConfig
from lnmdn_agents.policies.lwd import LWDConfig
from lnmdn_agents.policies.noise_scheduler import SPACINGS, NoiseScheduler, SinusoidalPosEmb

SHIPPED_DIFFUSION = Path(__file__).parents[2] / "checkpoints" / "pusht_diffusion" / "best"


pytestmark = pytest.mark.usefixtures("one_thread")


# -- timestep selection ---------------------------------------------------------------------------
def test_schedule_is_squared_cosine():
    ac = NoiseScheduler(100).alphas_cumprod
    assert (ac[1:] < ac[:-1]).all() and 0.99 < ac[0] < 1 and ac[-1] < 1e-3


@pytest.mark.parametrize(
    ("n", "k", "leading", "trailing"),
    [
        (100, 10, [90, 80, 70, 60, 50, 40, 30, 20, 10, 0], [99, 89, 79, 69, 59, 49, 39, 29, 19, 9]),
        (20, 5, [16, 12, 8, 4, 0], [19, 15, 11, 7, 3]),
        (100, 3, [66, 33, 0], [99, 66, 32]),  # k does not divide N
        (100, 1, [0], [99]),
        (4, 4, [3, 2, 1, 0], [3, 2, 1, 0]),  # every level: the spacings agree
    ],
)
def test_each_spacing_selects_these_timesteps(n, k, leading, trailing):
    s = NoiseScheduler(n)
    assert s.timesteps(k, "leading") == leading
    assert s.timesteps(k, "trailing") == trailing


def test_leading_fifty_of_a_hundred_steps_by_two():
    steps = NoiseScheduler(100).timesteps(50, "leading")
    assert steps[:3] == [98, 96, 94] and steps[-1] == 0 and len(steps) == 50


def test_bad_steps_or_spacing_are_clear_errors():
    s = NoiseScheduler(100)
    with pytest.raises(ValueError, match=r"num_inference_steps must be in \[1, 100\]"):
        s.timesteps(0, "leading")
    with pytest.raises(ValueError, match=r"spacing must be one of .*'linspace'"):
        s.timesteps(10, "linspace")
    with pytest.raises(ValueError, match="sampler must be one of"):
        s.sample(lambda x, t: x, (1, 2), sampler="euler", num_inference_steps=2, spacing="leading")


# -- the reverse chain ----------------------------------------------------------------------------
@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize(("sampler", "steps"), [("ddpm", 50), ("ddim", 10), ("ddim", 3)])
def test_a_perfect_denoiser_recovers_the_clean_sample(sampler, steps, spacing):
    """With the exact epsilon for a known x0, the reverse chain must land on x0."""
    s = NoiseScheduler(100)
    x0 = torch.tensor([[0.3, -0.7], [0.9, 0.1]])
    seen: list[int] = []

    def perfect(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(int(t[0]))
        a = float(s.alphas_cumprod[int(t[0])])
        return (x - math.sqrt(a) * x0) / math.sqrt(1 - a)

    torch.manual_seed(0)
    x = s.sample(perfect, (2, 2), sampler=sampler, num_inference_steps=steps, spacing=spacing)
    assert seen == s.timesteps(steps, spacing)
    assert torch.allclose(x, x0, atol=1e-4)


def test_deterministic_sampling_starts_at_zero_and_draws_nothing():
    s = NoiseScheduler(20)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    start: list[torch.Tensor] = []

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        start.append(x.clone())
        return torch.full_like(x, 0.1)

    x = s.sample(
        denoise, (3, 2), sampler="ddpm", num_inference_steps=5, spacing="trailing",
        deterministic=True,
    )  # fmt: skip
    assert torch.equal(start[0], torch.zeros(3, 2)) and x.shape == (3, 2)
    assert torch.equal(torch.get_rng_state(), state)


def test_matches_diffusers_when_installed():
    diffusers = pytest.importorskip("diffusers", reason="diffusers is an optional oracle")
    ours = NoiseScheduler(100)
    ref = diffusers.DDPMScheduler(
        num_train_timesteps=100, beta_schedule="squaredcos_cap_v2", clip_sample=True
    )
    assert torch.allclose(ref.alphas_cumprod.double(), ours.alphas_cumprod, atol=1e-6)
    ref.set_timesteps(50)
    assert ref.timesteps.tolist() == ours.timesteps(50, "leading")
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, 2, generator=g)
    for t in ref.timesteps.tolist():
        eps = torch.randn(3, 8, 2, generator=g)
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(t))
        expected = ref.step(eps, t, x, generator=torch.Generator().manual_seed(t)).prev_sample
        assert torch.allclose(ours.ddpm_step(eps, t, x, t - 2, noise), expected, atol=1e-5)
    for spacing in SPACINGS:
        ddim = diffusers.DDIMScheduler(
            num_train_timesteps=100,
            beta_schedule="squaredcos_cap_v2",
            clip_sample=True,
            timestep_spacing=spacing,
        )
        ddim.set_timesteps(10)
        assert ddim.timesteps.tolist() == ours.timesteps(10, spacing)
        for t in ddim.timesteps.tolist():
            eps = torch.randn(3, 8, 2, generator=g)
            expected = ddim.step(eps, t, x).prev_sample
            assert torch.allclose(ours.ddim_step(eps, t, x, t - 10), expected, atol=1e-5)


# -- the heads' spacing field ---------------------------------------------------------------------
TINY_DIFFUSION = dict(
    obs_dim=5, action_dim=2, horizon=8, n_action_steps=4, d_model=16, n_layers=1, n_heads=2,
    down_dims=(8, 16), diffusion_step_embed_dim=8, num_train_timesteps=20, num_inference_steps=5,
)  # fmt: skip
TINY_LWD = dict(
    obs_dim=5, action_dim=2, horizon=8, d_model=16, n_layers=1, n_heads=2, latent_dim=8,
    encoder_hidden_dim=32, hyper_hidden_dim=32, policy_hidden_dim=16, denoiser_hidden_dim=32,
    denoiser_blocks=1, num_train_timesteps=20, num_inference_steps=5,
)  # fmt: skip


def test_defaults_keep_each_heads_spacing():
    assert DiffusionConfig().spacing == "leading"  # Diffusion Policy's
    assert LWDConfig().spacing == "trailing"
    assert parse_field_value(DiffusionConfig, "spacing", "trailing") == "trailing"  # --set
    with pytest.raises(ValueError, match=r"spacing must be one of .*'middle'"):
        LWDConfig(spacing="middle")
    with pytest.raises(ValueError, match=r"spacing must be one of .*'middle'"):
        DiffusionConfig(spacing="middle")


@pytest.mark.parametrize(("name", "default"), [("diffusion", "leading"), ("lwd", "trailing")])
def test_a_config_saved_before_the_field_loads_with_the_old_spacing(name, default):
    fields = TINY_DIFFUSION if name == "diffusion" else TINY_LWD
    saved = json.loads(json.dumps(make_policy(name, **fields).config.to_dict()))
    del saved["spacing"]
    assert config_from_dict(saved).spacing == default


def test_a_diffusion_checkpoint_saved_before_the_field_samples_leading(tmp_path):
    """Checkpoints written before ``spacing`` existed load with the spacing they were made with."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(SHIPPED_DIFFUSION, old)
    saved = json.loads((old / "config.json").read_text())
    saved.pop("spacing", None)
    (old / "config.json").write_text(json.dumps(saved))
    assert load_policy(old).config.spacing == "leading"
    assert load_policy(SHIPPED_DIFFUSION).config.spacing == "leading"


@pytest.mark.parametrize("spacing", SPACINGS)
@pytest.mark.parametrize("name", ["diffusion", "lwd"])
def test_each_head_samples_at_its_configured_timesteps(name, spacing, monkeypatch):
    fields = TINY_DIFFUSION if name == "diffusion" else TINY_LWD
    policy = make_policy(name, **fields, spacing=spacing).eval()
    net = policy.unet if name == "diffusion" else policy.denoiser
    seen: list[int] = []
    forward = net.forward

    def recording(x, t, context):
        seen.append(int(t[0]))
        return forward(x, t, context)

    monkeypatch.setattr(net, "forward", recording)
    policy.predict_chunk(torch.zeros(2, 2, 5))
    assert seen == NoiseScheduler(20).timesteps(5, spacing)
    assert seen[0] == (19 if spacing == "trailing" else 16)


# -- the timestep embedding -----------------------------------------------------------------------
def test_both_heads_embed_timesteps_with_the_one_sinusoidal_embedding():
    out = SinusoidalPosEmb(8)(torch.tensor([0, 1, 99]))
    assert out.shape == (3, 8)
    torch.testing.assert_close(out[0], torch.tensor([0.0, 0, 0, 0, 1, 1, 1, 1]))
    f = 10000.0 ** (-torch.arange(4) / 3)  # 1 down to 1e-4
    torch.testing.assert_close(out[2], torch.cat([(99 * f).sin(), (99 * f).cos()]))
    assert SinusoidalPosEmb(7)(torch.tensor([3])).shape == (1, 7)  # odd: zero-padded
    diffusion = make_policy("diffusion", **TINY_DIFFUSION)
    lwd = make_policy("lwd", **TINY_LWD)
    assert isinstance(diffusion.unet.step_encoder[0], SinusoidalPosEmb)
    assert isinstance(lwd.denoiser.t_embed, SinusoidalPosEmb)
