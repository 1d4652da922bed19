"""PipelineConfig: defaults, validation (ConfigError naming the key), reading TOML."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import pytest

from meltica_trio import ConfigError, Exhaustion, PipelineConfig
from meltica_trio import _defaults as d


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "meltica.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _fields(key: str, value: object) -> dict[str, Any]:
    return {key: value}


def test_defaults_are_the_named_constants() -> None:
    config = PipelineConfig()
    assert config.intake_capacity == d.INTAKE_CAPACITY
    assert config.lane_capacity == d.LANE_CAPACITY
    assert config.pool_max_wait == d.POOL_MAX_WAIT
    assert config.on_pool_exhausted is Exhaustion.RAISE
    assert config.reorder_window == d.REORDER_WINDOW
    assert config.max_lateness == d.MAX_LATENESS
    assert config.stream_idle_ttl == d.STREAM_IDLE_TTL
    assert config.pool_capacity == 65_536
    assert config.dlq_capacity == 10_000
    assert config.debug is False


def test_the_pool_default_holds_the_intake_and_the_documented_lanes() -> None:
    config = PipelineConfig()
    # The docstring asks for pool_capacity > intake + subscribers x lane_capacity.
    assert config.pool_capacity > config.intake_capacity + 16 * config.lane_capacity


def test_a_config_is_a_frozen_value() -> None:
    config = PipelineConfig(lane_capacity=8)
    assert config == PipelineConfig(lane_capacity=8)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.lane_capacity = 9  # type: ignore[misc]


def test_fields_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        PipelineConfig(8)  # type: ignore[call-arg]


def test_the_exhaustion_policy_may_be_given_by_name() -> None:
    assert PipelineConfig(on_pool_exhausted="heap").on_pool_exhausted is Exhaustion.HEAP


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("intake_capacity", 0),
        ("lane_capacity", 0),
        ("lane_capacity", -5),
        ("pool_capacity", 0),
        ("stream_idle_ttl", 0.0),
        ("dlq_capacity", 0),
        ("pool_max_wait", -0.001),
        ("reorder_window", -1),
        ("max_lateness", -1.0),
        ("max_lateness", math.nan),
    ],
)
def test_an_out_of_range_value_raises_config_error_naming_the_key(key: str, value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        PipelineConfig(**_fields(key, value))
    assert caught.value.key == key
    assert repr(value) in caught.value.reason
    assert str(caught.value).startswith(f"{key}: ")


@pytest.mark.parametrize(("key", "value"), [("reorder_window", 0), ("pool_max_wait", 0.0)])
def test_zero_is_allowed_where_it_means_off(key: str, value: float) -> None:
    assert getattr(PipelineConfig(**_fields(key, value)), key) == value


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("intake_capacity", 1.5),
        ("lane_capacity", "10"),
        ("dlq_capacity", True),
        ("max_lateness", "fast"),
        ("debug", "false"),
        ("on_pool_exhausted", "sometimes"),
    ],
)
def test_a_value_of_the_wrong_type_raises_config_error_naming_the_key(
    key: str, value: object
) -> None:
    with pytest.raises(ConfigError) as caught:
        PipelineConfig(**_fields(key, value))
    assert caught.value.key == key


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="lane_capacity"):
        PipelineConfig(lane_capacity=0)


def test_from_toml_reads_the_pipeline_table(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        title = "ignored: outside the [pipeline] table"

        [pipeline]
        intake_capacity = 128
        lane_capacity = 32
        pool_max_wait = 0.5
        on_pool_exhausted = "heap"
        debug = true

        [providers.binance]
        url = "wss://example.invalid"
        """,
    )
    assert PipelineConfig.from_toml(path) == PipelineConfig(
        intake_capacity=128,
        lane_capacity=32,
        pool_max_wait=0.5,
        on_pool_exhausted=Exhaustion.HEAP,
        debug=True,
    )


def test_from_toml_reads_top_level_keys_when_there_is_no_pipeline_table(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "reorder_window = 0\nmax_lateness = 0.25\n")
    config = PipelineConfig.from_toml(str(path))
    assert config == PipelineConfig(reorder_window=0, max_lateness=0.25)


def test_from_toml_of_an_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    assert PipelineConfig.from_toml(_write(tmp_path, "")) == PipelineConfig()


def test_from_toml_accepts_integers_for_seconds(tmp_path: Path) -> None:
    config = PipelineConfig.from_toml(_write(tmp_path, "[pipeline]\nstream_idle_ttl = 60\n"))
    assert config.stream_idle_ttl == 60


def test_from_toml_names_an_unknown_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "[pipeline]\nlane_capacity = 4\nlane_capacty = 8\n")
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_toml(path)
    assert caught.value.key == "lane_capacty"
    assert "unknown" in caught.value.reason
    assert "lane_capacity" in caught.value.reason  # the known keys are listed


def test_from_toml_names_every_unknown_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "zeta = 1\nalpha = 2\n")
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_toml(path)
    assert caught.value.key == "alpha, zeta"


def test_from_toml_of_bad_toml_raises_config_error_naming_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[pipeline\nlane_capacity = \n")
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_toml(path)
    assert caught.value.key == str(path)
    assert "cannot read" in caught.value.reason
    assert caught.value.__cause__ is not None


def test_from_toml_of_a_missing_file_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_toml(path)
    assert caught.value.key == str(path)
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_from_toml_of_a_bad_value_names_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "[pipeline]\nlane_capacity = 0\n")
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_toml(path)
    assert caught.value.key == "lane_capacity"


def test_from_toml_of_a_float_capacity_names_the_key(tmp_path: Path) -> None:
    # TOML 1e3 is a float; a channel size must be an integer.
    path = _write(tmp_path, "[pipeline]\nintake_capacity = 1e3\n")
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_toml(path)
    assert caught.value.key == "intake_capacity"


def test_from_toml_of_a_pipeline_key_that_is_not_a_table_raises_config_error(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, 'pipeline = "fast"\n')
    with pytest.raises(ConfigError) as caught:
        PipelineConfig.from_toml(path)
    assert caught.value.key == "pipeline"
