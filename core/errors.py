"""The package's exception hierarchy: catch narrow types, read structured fields."""

from __future__ import annotations

from pathlib import Path


class EnviroStreamError(Exception):
    """Base class of every error raised on purpose by EnviroStream."""


class ConfigurationError(EnviroStreamError):
    """A setting is invalid; ``setting`` names the environment variable."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class ServiceUnavailableError(EnviroStreamError):
    """A service (Kafka, the ClickHouse store, Prometheus) did not answer in time."""

    def __init__(self, service: str, address: str, hint: str = "") -> None:
        text = f"{service} at {address} did not answer"
        if hint:
            text += f"; {hint}"
        super().__init__(text)
        self.service = service
        self.address = address


class ServiceRefusedError(ServiceUnavailableError):
    """A service answered but refused us (authentication, TLS); ``reason`` says what to fix."""

    def __init__(self, service: str, address: str, reason: str) -> None:
        EnviroStreamError.__init__(self, f"{service} at {address} refused the connection: {reason}")
        self.service = service
        self.address = address
        self.reason = reason


class WorkerError(EnviroStreamError):
    """A worker subprocess exited or did not reach a state in time; ``log`` holds its output."""

    def __init__(self, message: str, log: Path) -> None:
        super().__init__(message)
        self.log = log
