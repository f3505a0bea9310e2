"""Property-based tests (hypothesis) of config files and run.json configs: whatever a file holds,
reading it gives a valid TrainConfig or one ConfigError, never another exception (issue 14)."""
from __future__ import annotations

import json
import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaekit.errors import ConfigError
from vaekit.training.config import FIELDS, TrainConfig, build_config

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = sorted(FIELDS) + ["beta", "iw_k", "gamma", "lambda_od", "code_dim", "latent-dim", "batch-size", "no_such_key"]
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-10**30, max_value=10**30)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12)
           | st.sampled_from(["vae", "ae", "mlp", "conv", "digits", "learned", "1,2", "cosine", "cpu", "0.5", "-1"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                      max_leaves=8)
CONFIGS = st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), VALUES, max_size=6)


def _check(path) -> None:
    try:
        config = build_config(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(config, TrainConfig)
    assert config.latent_dim >= 1 and config.epochs >= 1 and config.batch_size >= 1
    assert math.isfinite(config.lr) and config.lr > 0


@SETTINGS
@given(values=CONFIGS)
def test_any_json_config_is_read_or_refused_in_one_line(tmp_path, values):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(values), encoding="utf-8")
    _check(path)


@SETTINGS
@given(values=CONFIGS)
def test_any_yaml_config_is_read_or_refused_in_one_line(tmp_path, values):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    _check(path)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


TOML_SCALARS = (st.booleans() | st.integers(min_value=-2**63, max_value=2**63 - 1) | st.floats()
                | st.text(max_size=10) | st.sampled_from(["vae", "mlp", "digits", "1,2"]))
TOML_CONFIGS = st.dictionaries(st.sampled_from(KEYS), TOML_SCALARS | st.lists(TOML_SCALARS, max_size=3), max_size=6)


@SETTINGS
@given(values=TOML_CONFIGS)
def test_any_toml_config_is_read_or_refused_in_one_line(tmp_path, values):
    path = tmp_path / "c.toml"
    path.write_text("".join(f"{json.dumps(key)} = {_toml_value(value)}\n" for key, value in values.items()), encoding="utf-8")
    _check(path)


@SETTINGS
@given(content=st.binary(max_size=200), suffix=st.sampled_from([".toml", ".yaml", ".json"]))
def test_any_bytes_are_read_or_refused_in_one_line(tmp_path, content, suffix):
    path = tmp_path / f"c{suffix}"
    path.write_bytes(content)
    _check(path)


@SETTINGS
@given(values=CONFIGS)
def test_a_run_json_config_is_rebuilt_or_refused_in_one_line(values):
    """What vaekit.training.run.Run.config does with run.json's config (it turns ConfigError into RunError)."""
    try:
        config = TrainConfig.from_dict(values, source="run.json").resolved()
    except ConfigError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(config, TrainConfig)


@pytest.mark.parametrize("seed", [-1, 0, 2**63 - 1])
def test_seeds_torch_can_take_are_accepted(tmp_path, seed):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"seed": seed}))
    assert build_config(path).seed == seed
