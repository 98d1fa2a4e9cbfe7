"""Config fields: type checks with the field named, and typed parsing of --set text."""

from __future__ import annotations

import pytest

from lnmdn_agents import make_policy
from lnmdn_agents.config_fields import ConfigTypeError, parse_field_value
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
