"""The local Mosquitto's files: loopback only, no anonymous clients, hashed passwords, the ACL."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import EnviroStreamError, ServiceUnavailableError
from core.settings import load_settings
from infra.mosquitto import (
    GATEWAY_USER,
    SIMULATOR_USER,
    add_device,
    gateway_url,
    mosquitto_home,
    simulator_url,
)


def test_devices_get_hashed_passwords_and_only_their_own_topic(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path, mqtt_port=18999)
    with pytest.raises(ServiceUnavailableError, match="infra up"):
        gateway_url(settings)  # never started: no gateway password yet
    password = add_device(settings, "pack-1")
    home = mosquitto_home(settings)
    users = dict(line.split(":", 1) for line in (home / "passwd").read_text().splitlines())
    assert set(users) == {GATEWAY_USER, SIMULATOR_USER, "pack-1"}
    assert password not in users["pack-1"] and users["pack-1"].startswith("$")  # a hash
    assert (home / "passwd").stat().st_mode & 0o077 == 0
    assert (home / "gateway.password").stat().st_mode & 0o077 == 0
    conf = (home / "mosquitto.conf").read_text()
    assert "listener 18999 127.0.0.1\n" in conf and "allow_anonymous false\n" in conf
    acl = (home / "acl").read_text()
    assert "pattern write devices/%u/telemetry" in acl
    assert f"user {GATEWAY_USER}\ntopic read devices/+/telemetry" in acl
    url = gateway_url(settings)
    secret = (home / "gateway.password").read_text()
    assert url.get_secret_value() == f"mqtt://{GATEWAY_USER}:{secret}@127.0.0.1:18999"
    assert secret not in str(url)
    # The simulator's own account writes every device's topic (and only that).
    assert f"user {SIMULATOR_USER}\ntopic write devices/+/telemetry\n" in acl
    sim_secret = (home / "simulator.password").read_text()
    assert (home / "simulator.password").stat().st_mode & 0o077 == 0 and sim_secret != secret
    assert simulator_url(settings).get_secret_value().startswith(f"mqtt://{SIMULATOR_USER}:")


@pytest.mark.parametrize("device", ["a/b", "+", "#", "", GATEWAY_USER, SIMULATOR_USER, "x" * 129])
def test_ids_that_would_break_the_acl_are_refused(tmp_path: Path, device: str) -> None:
    settings = load_settings({}, data_dir=tmp_path)
    with pytest.raises(EnviroStreamError, match="device id"):
        add_device(settings, device)
