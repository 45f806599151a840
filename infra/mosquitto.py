"""The local MQTT broker: a private Mosquitto (Debian's package) on loopback.

Everything lives under ``<data dir>/mosquitto``: ``mosquitto.conf``, the password file
(hashed by ``mosquitto_passwd``), the ACL and the persistence file (QoS 1 messages not yet
acknowledged by the gateway survive a broker restart). Nobody connects anonymously. The
ACL lets a device publish only under its own id (``pattern write devices/%u/telemetry``)
and the gateway user read every device's telemetry. The simulator's user
(``envirostream simulate --via mqtt``) may write every device's topic: it stands for the
whole simulated fleet. The two service passwords are generated once and kept in
``gateway.password`` and ``simulator.password`` (mode 0600); device passwords are generated
by :func:`add_device` (``envirostream gateway add-device ID``) and printed once.
"""

from __future__ import annotations

import getpass
import os
import re
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

from core.errors import ConfigurationError, EnviroStreamError, ServiceUnavailableError
from core.secrets import SecretUrl
from core.settings import Settings
from infra.processes import ServiceProcess, port_open, read_pid, start_service, stop_service

__all__ = [
    "GATEWAY_USER",
    "SIMULATOR_USER",
    "acl_text",
    "add_device",
    "gateway_url",
    "mosquitto_home",
    "mosquitto_status",
    "simulator_url",
    "start_mosquitto",
    "stop_mosquitto",
]

GATEWAY_USER = "envirostream-gateway"
SIMULATOR_USER = "envirostream-simulator"
_SERVICE_USERS = {GATEWAY_USER: "gateway.password", SIMULATOR_USER: "simulator.password"}
_DEVICE_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _service(settings: Settings) -> ServiceProcess:
    return ServiceProcess("mosquitto", settings.data_dir)


def mosquitto_home(settings: Settings) -> Path:
    return settings.data_dir / "mosquitto"


def acl_text(topic_filter: str = "devices/+/telemetry") -> str:
    """The ACL: the gateway reads ``topic_filter``, the simulator writes every device's
    topic, a device writes only its own.

    >>> print(acl_text())
    user envirostream-gateway
    topic read devices/+/telemetry
    <BLANKLINE>
    user envirostream-simulator
    topic write devices/+/telemetry
    <BLANKLINE>
    pattern write devices/%u/telemetry
    <BLANKLINE>
    """
    return (
        f"user {GATEWAY_USER}\ntopic read {topic_filter}\n\n"
        f"user {SIMULATOR_USER}\ntopic write devices/+/telemetry\n\n"
        "pattern write devices/%u/telemetry\n"
    )


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if found is None:
        msg = (
            f"{name} not found: install Mosquitto (apt-get install mosquitto; `make bootstrap` "
            "does it) or point ENVIROSTREAM_MQTT_URL at an MQTT broker"
        )
        setting = "ENVIROSTREAM_MQTT_URL"
        raise ConfigurationError(setting, msg)
    return found


def _set_password(passwd: Path, user: str, password: str) -> None:
    argv = [_binary("mosquitto_passwd"), "-b", str(passwd), user, password]
    if not passwd.exists():
        argv.insert(1, "-c")
    subprocess.run(argv, check=True, capture_output=True, timeout=30)
    passwd.chmod(0o600)


def _write_config(settings: Settings) -> Path:
    home = mosquitto_home(settings)
    (home / "data").mkdir(parents=True, exist_ok=True)
    passwd, acl = home / "passwd", home / "acl"
    for user, name in _SERVICE_USERS.items():
        secret = home / name
        if not secret.exists():
            secret.touch(mode=0o600)
            secret.write_text(secrets.token_urlsafe(24))
            _set_password(passwd, user, secret.read_text())
    acl.write_text(acl_text(settings.mqtt_topic))
    conf = home / "mosquitto.conf"
    conf.write_text(
        f"# written by infra/mosquitto.py; rewritten at every start\n"
        f"user {getpass.getuser()}\n"
        f"listener {settings.mqtt_port} 127.0.0.1\n"
        "allow_anonymous false\n"
        f"password_file {passwd}\n"
        f"acl_file {acl}\n"
        "persistence true\n"
        f"persistence_location {home / 'data'}/\n"
        "autosave_interval 5\n"
        "max_queued_messages 100000\n"
        "max_inflight_messages 1000\n"
        "log_dest stdout\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
    )
    return conf


def start_mosquitto(settings: Settings, timeout: float = 30.0) -> int:
    """Start the local broker (unless running); return its pid."""
    conf = _write_config(settings)
    address = f"127.0.0.1:{settings.mqtt_port}"
    return start_service(
        _service(settings),
        [_binary("mosquitto"), "-c", str(conf)],
        lambda: port_open("127.0.0.1", settings.mqtt_port),
        address,
        timeout,
    )


def stop_mosquitto(settings: Settings) -> bool:
    return stop_service(_service(settings))


def mosquitto_status(settings: Settings) -> dict[str, object]:
    pid = read_pid(_service(settings))
    return {"running": pid is not None, "pid": pid, "port": settings.mqtt_port}


def add_device(settings: Settings, device_id: str, password: str | None = None) -> str:
    """Give ``device_id`` a password on the local broker (a running broker reloads it)."""
    if not _DEVICE_ID.match(device_id):
        msg = f"device id {device_id!r}: use 1-128 letters, digits, '.', '_' or '-'"
        raise EnviroStreamError(msg)
    if device_id in _SERVICE_USERS:
        msg = f"device id {device_id!r} is the user name of a service (gateway, simulator)"
        raise EnviroStreamError(msg)
    _write_config(settings)
    password = password or secrets.token_urlsafe(18)
    _set_password(mosquitto_home(settings) / "passwd", device_id, password)
    pid = read_pid(_service(settings))
    if pid is not None:
        os.kill(pid, signal.SIGHUP)  # mosquitto re-reads the password file and the ACL
    return password


def gateway_url(settings: Settings) -> SecretUrl:
    """Where the gateway connects: ``ENVIROSTREAM_MQTT_URL`` or the local broker."""
    return _service_url(settings, GATEWAY_USER)


def simulator_url(settings: Settings) -> SecretUrl:
    """Where ``simulate --via mqtt`` publishes: ``ENVIROSTREAM_MQTT_URL`` (its user must be
    allowed to write ``devices/+/telemetry``) or the local broker as the simulator's user."""
    return _service_url(settings, SIMULATOR_USER)


def _service_url(settings: Settings, user: str) -> SecretUrl:
    if settings.mqtt_url is not None:
        return settings.mqtt_url
    secret = mosquitto_home(settings) / _SERVICE_USERS[user]
    if not secret.exists():
        service = "Mosquitto"
        raise ServiceUnavailableError(
            service,
            f"127.0.0.1:{settings.mqtt_port}",
            "the local broker was never started: run `envirostream infra up` "
            "or set ENVIROSTREAM_MQTT_URL",
        )
    password = secret.read_text().strip()
    return SecretUrl(f"mqtt://{user}:{password}@127.0.0.1:{settings.mqtt_port}")
