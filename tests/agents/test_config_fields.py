"""Config fields: type checks with the field named, and typed parsing of --set text."""

from __future__ import annotations

import pytest

from lnmdn_agents import TrainConfig, make_policy
from lnmdn_agents.config_fields import (
    ConfigTypeError,
    check_ints,
    check_range,
    parse_field_value,
)
from lnmdn_agents.policies.diffusion.configuration import DiffusionConfig
from lnmdn_agents.training.cli import _parse_overrides


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"dropout": "x"}, "GRUMDNConfig.dropout must be a number (float), got 'x' (str)"),
        ({"rnn_hidden": 8.5}, "GRUMDNConfig.rnn_hidden must be an integer (int), got 8.5 (float)"),
        ({"d_model": True}, "GRUMDNConfig.d_model must be an integer (int), got True (bool)"),
        ({"mixture": 3}, "GRUMDNConfig.mixture must be a string (str), got 3 (int)"),
    ],
)
def test_wrong_types_name_the_field(overrides, message):
    with pytest.raises(ConfigTypeError) as info:
        make_policy("gru_mdn", **overrides)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)  # callers that catch ValueError still catch it


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: make_policy("liquid_mdn", n_components=0),
            "LiquidMDNConfig.n_components must be an integer >= 1, got n_components=0",
        ),
        (
            lambda: make_policy("gru_mdn", dropout=1.0),
            "GRUMDNConfig.dropout must be in [0, 1), got dropout=1.0",
        ),
        (
            lambda: make_policy("gru_mdn", min_std=0),
            "GRUMDNConfig.min_std must be > 0, got min_std=0",
        ),
        (
            lambda: make_policy("lwd", kl_weight=float("inf")),
            "LWDConfig.kl_weight must be >= 0 and finite, got kl_weight=inf",
        ),
        (
            lambda: make_policy("diffusion", ema_max_decay=1.0),
            "DiffusionConfig.ema_max_decay must be in (0, 1), got ema_max_decay=1.0",
        ),
        (
            lambda: TrainConfig(fraction=0.0),
            "TrainConfig.fraction must be in (0, 1], got fraction=0.0",
        ),
        (
            lambda: TrainConfig(eval_episodes=-1),
            "TrainConfig.eval_episodes must be an integer >= 0, got eval_episodes=-1",
        ),
        (
            lambda: TrainConfig(num_threads=0),
            "TrainConfig.num_threads must be an integer >= 1 or None, got num_threads=0",
        ),
        (
            lambda: TrainConfig(grad_clip=float("nan")),
            "TrainConfig.grad_clip must be >= 0 and finite, got grad_clip=nan",
        ),
    ],
)
def test_bad_values_name_the_field_the_value_and_the_range(make, message):
    """Every config words a value out of range the same way (check_ints / check_range)."""
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == message


def test_range_checks_accept_the_bounds_they_include():
    class Cfg:
        low, high, whole = 0.0, 1.0, 3

    check_range(Cfg(), "low", ge=0, lt=1)
    check_range(Cfg(), "high", gt=0, le=1)
    check_ints(Cfg(), "whole", minimum=3)
    with pytest.raises(ValueError, match=r"Cfg\.high must be < 1, got high=1\.0"):
        check_range(Cfg(), "high", lt=1)
    with pytest.raises(ValueError, match=r"Cfg\.whole must be an integer >= 4, got whole=3"):
        check_ints(Cfg(), "whole", minimum=4)
    with pytest.raises(TypeError, match="at most one of gt/ge"):
        check_range(Cfg(), "low", gt=0, ge=0)


def test_lists_become_tuples_and_ints_are_floats():
    cfg = make_policy("diffusion", down_dims=[8, 16, 16], n_groups=4, ema_power=1).config
    assert cfg.down_dims == (8, 16, 16) and cfg.ema_power == 1
    with pytest.raises(ConfigTypeError, match=r"down_dims must be a list of int values"):
        make_policy("diffusion", down_dims=[8, "16"])


@pytest.mark.parametrize(
    ("name", "raw", "value"),
    [
        ("down_dims", "24,48,48", (24, 48, 48)),
        ("down_dims", "[24, 48, 48]", (24, 48, 48)),
        ("down_dims", "(24,48,48)", (24, 48, 48)),
        ("clip_sample", "false", False),
        ("clip_sample", "True", True),
        ("dropout", "0.1", 0.1),
        ("d_model", "64", 64),
        ("sampler", "ddim", "ddim"),
        ("sampler", '"ddim"', "ddim"),
    ],
)
def test_set_values_are_parsed_by_field_type(name, raw, value):
    assert parse_field_value(DiffusionConfig, name, raw) == value


@pytest.mark.parametrize(
    ("item", "error", "match"),
    [
        ("down_dims=24;48", ConfigTypeError, r"down_dims='24;48'.*--set down_dims=24,48,48"),
        ("clip_sample=maybe", ConfigTypeError, "true or false"),
        ("d_model=6.5", ConfigTypeError, "d_model='6.5'"),
        ("d_modle=64", KeyError, "Did you mean 'd_model'"),
        ("d_model", ValueError, "FIELD=VALUE"),
    ],
)
def test_bad_set_values(item, error, match):
    with pytest.raises(error, match=match):
        _parse_overrides([item], "diffusion")


def test_set_down_dims_trains_the_shape_asked_for():
    overrides = _parse_overrides(["down_dims=8,16,16", "n_groups=4"], "diffusion")
    policy = make_policy("diffusion", **overrides)
    assert policy.config.down_dims == (8, 16, 16)
