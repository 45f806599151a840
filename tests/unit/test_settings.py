"""Settings: defaults, validation messages that name the variable, docs kept in sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.settings import load_settings, settings_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_defaults_point_at_the_local_services() -> None:
    s = load_settings({})
    assert s.uses_local_kafka and s.bootstrap_servers == "127.0.0.1:19092"
    assert s.uses_local_store and s.store_url.get_secret_value() == "http://127.0.0.1:18123"
    assert s.window_label == "1m"


def test_external_services_are_taken_from_the_environment() -> None:
    s = load_settings(
        {
            "ENVIROSTREAM_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
            "ENVIROSTREAM_CLICKHOUSE_URL": "https://u:p@ch:8443/",
        }
    )
    assert not s.uses_local_kafka and s.bootstrap_servers == "k1:9092,k2:9092"
    assert not s.uses_local_store and s.store_url.get_secret_value() == "https://u:p@ch:8443"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("ENVIROSTREAM_KAFKA_BOOTSTRAP", "localhost", "host:port"),
        ("ENVIROSTREAM_CLICKHOUSE_URL", "ch:8123", "http"),
        ("ENVIROSTREAM_WINDOW_SECONDS", "-5", "greater than 0"),
        ("ENVIROSTREAM_LATE_POLICY", "ignore", "'correct' or 'store'"),
        ("ENVIROSTREAM_METRICS_PORT", "70000", "less than or equal"),
        ("ENVIROSTREAM_TOPIC_PARTITIONS", "many", "integer"),
        ("ENVIROSTREAM_WORKER_GC_THRESHOLD", "700,10", "three positive integers"),
        ("ENVIROSTREAM_WORKER_GC_THRESHOLD", "700,0,10", "three positive integers"),
    ],
)
def test_invalid_values_name_the_variable_and_the_value(
    variable: str, value: str, fragment: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        load_settings({variable: value})
    assert info.value.setting == variable
    assert fragment in str(info.value)
    assert repr(value) in str(info.value)


def test_window_label_reads_like_the_size() -> None:
    assert load_settings({"ENVIROSTREAM_WINDOW_SECONDS": "10"}).window_label == "10s"
    assert load_settings({"ENVIROSTREAM_WINDOW_SECONDS": "3600"}).window_label == "1h"
    assert load_settings({"ENVIROSTREAM_WINDOW_SECONDS": "1.5"}).window_label == "1500ms"


def test_every_setting_is_documented() -> None:
    assert settings_table() in DOCS.read_text(), (
        "docs/configuration.md is out of date: paste core.settings.settings_table()"
    )


def test_settings_environ_rebuilds_the_same_settings_in_a_child() -> None:
    from core.settings import settings_environ

    settings = load_settings({}, window_seconds=5, kafka_bootstrap="k:9092")
    env = settings_environ(settings, {"PATH": "/bin", "ENVIROSTREAM_STALE": "x"})
    assert env["PATH"] == "/bin" and "ENVIROSTREAM_STALE" not in env
    assert load_settings(env) == settings


def test_the_workers_gc_thresholds_are_read_as_gc_takes_them() -> None:
    assert load_settings({}).gc_thresholds == (700, 10, 1000)
    settings = load_settings({"ENVIROSTREAM_WORKER_GC_THRESHOLD": " 700, 10 ,10"})
    assert settings.gc_thresholds == (700, 10, 10)
