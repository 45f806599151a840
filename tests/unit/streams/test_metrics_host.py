"""/metrics listens on loopback unless ENVIROSTREAM_METRICS_HOST opens it (issue #14)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from core.errors import ConfigurationError
from core.settings import load_settings
from infra.processes import free_port
from streams.run import serve_metrics


def listening_addresses(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp writes them) listening on ``port``."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, _, hex_port = local.partition(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
            found.add(address)
    return found


def test_the_default_is_loopback() -> None:
    assert load_settings({}).metrics_host == "127.0.0.1"
    opened = load_settings({"ENVIROSTREAM_METRICS_HOST": "0.0.0.0"})
    assert opened.metrics_host == "0.0.0.0"


def test_metrics_bind_to_the_host_given() -> None:
    loopback, everywhere = free_port(), free_port()
    serve_metrics(loopback, CollectorRegistry(), "ENVIROSTREAM_METRICS_PORT")
    serve_metrics(everywhere, CollectorRegistry(), "ENVIROSTREAM_METRICS_PORT", "0.0.0.0")
    assert listening_addresses(loopback) == {"0100007F"}  # 127.0.0.1
    assert listening_addresses(everywhere) == {"00000000"}  # 0.0.0.0


def test_a_taken_port_names_the_setting_and_the_host() -> None:
    port = free_port()
    serve_metrics(port, CollectorRegistry(), "ENVIROSTREAM_METRICS_PORT")
    with pytest.raises(ConfigurationError) as err:
        serve_metrics(port, CollectorRegistry(), "ENVIROSTREAM_METRICS_PORT")
    assert err.value.setting == "ENVIROSTREAM_METRICS_PORT"
    assert f"127.0.0.1:{port}" in str(err.value)
