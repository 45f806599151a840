"""One validated settings object, read from ``ENVIROSTREAM_*`` environment variables.

Every field has a default that works on one laptop; docs/configuration.md lists them.
An invalid value stops the process at start with a message naming the variable.
URLs that may carry a password (``ENVIROSTREAM_CLICKHOUSE_URL``,
``ENVIROSTREAM_ALERTMANAGER_URL``, ``ENVIROSTREAM_SCHEMA_REGISTRY_URL``) are
:class:`~core.secrets.SecretUrl` and ``ENVIROSTREAM_KAFKA_SASL_PASSWORD`` a ``SecretStr``:
they print redacted. Kafka's transport security: :mod:`core.settings_kafka`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from core.errors import ConfigurationError
from core.secrets import SecretUrl, redact_url
from core.settings_api import ApiSettings
from core.settings_detection import DetectionSettings
from core.settings_gateway import GatewaySettings
from core.settings_kafka import KafkaSecuritySettings
from core.settings_metrics import MetricsSettings
from core.settings_registry import RegistrySettings
from core.settings_runtime import RuntimeSettings
from core.settings_sink import SinkSettings

ENV_PREFIX = "ENVIROSTREAM_"
SECRET_FIELDS = frozenset(
    {"clickhouse_url", "alertmanager_url", "mqtt_url", "schema_registry_url", "kafka_sasl_password"}
)


class Settings(
    DetectionSettings,
    RegistrySettings,
    KafkaSecuritySettings,
    GatewaySettings,
    ApiSettings,
    SinkSettings,
    MetricsSettings,
    RuntimeSettings,
):
    """Settings of every EnviroStream process (frozen once built)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(
        default=Path(".envirostream"),
        description="Local state: Kafka log dirs, the embedded ClickHouse store, pid files, logs.",
    )
    cache_dir: Path = Field(
        default=Path(".cache"),
        description="Downloaded artefacts kept between runs (Kafka's jars from Maven Central).",
    )
    nab_dir: Path | None = Field(
        default=None,
        description="The NAB dataset read by `envirostream bench nab` (or `--nab-dir`); "
        "unset = `../shared/datasets/nab` relative to the repository root.",
    )
    skab_dir: Path | None = Field(
        default=None,
        description="The SKAB dataset (valve1/*.csv, anomaly-free/) read by `envirostream "
        "bench skab` (or `--skab-dir`); unset = `../shared/datasets/skab` relative to the "
        "repository root.",
    )
    # --- Kafka -------------------------------------------------------------------------
    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port[,host:port] of an existing cluster; unset = the local broker.",
    )
    kafka_port: int = Field(default=19092, ge=1, le=65535, description="Local broker port.")
    kafka_controller_port: int = Field(
        default=19093, ge=1, le=65535, description="Local broker's KRaft controller port."
    )
    kafka_version: str = Field(default="4.1.1", description="Apache Kafka fetched from Maven.")
    kafka_heap: str = Field(default="768m", description="-Xmx of the local broker.")
    topic_partitions: int = Field(
        default=12,
        ge=1,
        le=1024,
        description="Partitions of the data topics created (= max workers that share the "
        "load); size for growth: docs/scaling.md. Existing topics are never grown.",
    )
    topic_replication: int = Field(
        default=1, ge=1, le=16, description="Replication factor of created topics."
    )
    readings_retention_hours: float = Field(
        default=72.0, gt=0, description="Kafka retention of telemetry.readings."
    )
    derived_retention_hours: float = Field(
        default=168.0, gt=0, description="Kafka retention of aggregates, anomalies, alerts, DLQ."
    )
    # --- ClickHouse --------------------------------------------------------------------
    clickhouse_url: SecretUrl | None = Field(
        default=None,
        description="http(s)://user:password@host:port of a ClickHouse server; "
        "unset = the embedded chdb store under the data dir.",
    )
    clickhouse_database: str = Field(
        default="envirostream",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Database holding the tables (created if missing).",
    )
    store_port: int = Field(default=18123, ge=1, le=65535, description="Embedded store HTTP port.")
    store_password_file: Path | None = Field(
        default=None,
        description="File holding the embedded store's password (user `default`); unset = "
        "`<data dir>/store.password`, generated (random, 0600) on the store's first start. "
        "See docs/security.md.",
    )
    readings_ttl_days: int = Field(
        default=30, ge=1, description="ClickHouse TTL of raw readings (from storage time)."
    )
    aggregates_ttl_days: int = Field(
        default=365, ge=1, description="ClickHouse TTL of aggregates, anomalies and alerts."
    )
    rollups_refresh: bool = Field(
        default=True,
        description="Recompute the hourly/daily rollups after every `aggregates` insert "
        "(off: fill them with `sinks.rollups.backfill_rollups`; see docs/storage.md).",
    )
    rollups_ttl_days: int = Field(
        default=1825,
        ge=1,
        description="ClickHouse TTL of the hourly and daily rollups (`aggregates_1h`, `_1d`).",
    )
    # --- stream worker -----------------------------------------------------------------
    app_id: str = Field(
        default="envirostream",
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Faust app id = the workers' consumer group.",
    )
    window_seconds: float = Field(
        default=60.0, gt=0, le=86400, description="Tumbling window size (event time)."
    )
    allowed_lateness_seconds: float = Field(
        default=10.0,
        ge=0,
        le=86400,
        description=(
            "How far behind its own device's newest event time a reading may still join its"
            " window before the window is emitted."
        ),
    )
    late_policy: Literal["correct", "store"] = Field(
        default="correct",
        description=(
            "Readings whose window was already emitted are always stored raw; correct: also"
            " re-emit that window's aggregate recomputed from the stored readings; store: only"
            " count them."
        ),
    )
    correction_horizon_hours: float = Field(
        default=168.0,
        ge=0,
        le=24 * 366,
        description=(
            "How far behind its device's clock a late reading still corrects its window's"
            " aggregate (beyond it the reading is stored raw and counted)."
        ),
    )
    max_future_seconds: float = Field(
        default=300.0,
        ge=0,
        le=86400 * 366,
        description=(
            "A reading stamped further ahead of the worker's wall clock is dead-lettered"
            " (future_timestamp) and moves no clock."
        ),
    )
    event_time_floor: str = Field(
        default="1990-01-01",
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description=(
            "Readings stamped before this UTC date are dead-lettered (implausible_timestamp)."
        ),
    )
    idle_close_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Close a partition's open windows after this long without input.",
    )
    commit_interval_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often safe input offsets are committed."
    )
    session_timeout_seconds: float = Field(
        default=30.0,
        ge=6,
        le=300,
        description="Consumer-group session timeout: how soon a dead worker's partitions move.",
    )
    worker_batch_size: int = Field(
        default=5000, ge=1, le=1_000_000, description="Records per worker batch (max)."
    )
    worker_batch_seconds: float = Field(
        default=0.5, gt=0, le=60, description="Max wait to fill a worker batch."
    )
    worker_agents: str = Field(
        default="",
        description="Python modules (comma-separated) whose `register(app)` adds Faust agents "
        "to the worker (docs/extending.md); empty: none.",
    )
    # --- alerting and logs (sinks: core/settings_sink.py; metrics: core/settings_metrics.py)
    alertmanager_url: SecretUrl | None = Field(
        default=None, description="Alertmanager to forward device alerts to (optional)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of every process."
    )

    @field_validator("event_time_floor")
    @classmethod
    def _check_floor(cls, value: str) -> str:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            msg = f"expected a date YYYY-MM-DD, got {value!r}"
            raise ValueError(msg) from None
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        for part in value.split(","):
            host, sep, port = part.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                msg = f"expected host:port[,host:port], got {value!r}"
                raise ValueError(msg)
        return value.strip()

    @field_validator("worker_agents")
    @classmethod
    def _check_agents(cls, value: str) -> str:
        names = [n.strip() for n in value.split(",") if n.strip()]
        for name in names:
            if not all(part.isidentifier() for part in name.split(".")):
                msg = f"{name!r} is not a Python module name (e.g. mypkg.agents)"
                raise ValueError(msg)
        return ",".join(names)

    @property
    def agent_modules(self) -> list[str]:
        """The modules of ``ENVIROSTREAM_WORKER_AGENTS``, in order."""
        return [n for n in self.worker_agents.split(",") if n]

    @field_validator("clickhouse_url", "schema_registry_url", "alertmanager_url", mode="before")
    @classmethod
    def _check_url(cls, value: object) -> object:
        if isinstance(value, SecretUrl):
            value = value.get_secret_value()
        if not isinstance(value, str):
            return value
        if value.strip() == "":
            return None
        if not value.startswith(("http://", "https://")):
            msg = f"expected an http:// or https:// URL, got {redact_url(value)!r}"
            raise ValueError(msg)
        return value.rstrip("/")

    @model_validator(mode="after")
    def _check_ports(self) -> Settings:
        local = [self.kafka_port, self.kafka_controller_port]
        if self.kafka_secured:
            local.append(self.kafka_secure_port)
        if self.kafka_bootstrap is None and len(set(local)) < len(local):
            msg = "kafka_port, kafka_controller_port and kafka_secure_port must differ"
            raise ValueError(msg)
        return self

    # --- derived values ----------------------------------------------------------------
    @property
    def uses_local_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect: the cluster, or the local broker's (secured) listener."""
        port = self.kafka_secure_port if self.kafka_secured else self.kafka_port
        return self.kafka_bootstrap or f"127.0.0.1:{port}"

    @property
    def uses_local_store(self) -> bool:
        return self.clickhouse_url is None

    @property
    def store_url(self) -> SecretUrl:
        """The ClickHouse URL to connect to (prints redacted; ``get_secret_value()`` to use)."""
        return self.clickhouse_url or SecretUrl(f"http://127.0.0.1:{self.store_port}")

    @property
    def store_password_path(self) -> Path:
        """The embedded store's password file (``ENVIROSTREAM_STORE_PASSWORD_FILE``)."""
        return self.store_password_file or self.data_dir / "store.password"

    @property
    def window_ms(self) -> int:
        return round(self.window_seconds * 1000)

    @property
    def lateness_ms(self) -> int:
        return round(self.allowed_lateness_seconds * 1000)

    @property
    def max_future_ms(self) -> int:
        return round(self.max_future_seconds * 1000)

    @property
    def event_time_floor_ms(self) -> int:
        """``event_time_floor`` as milliseconds since the epoch (UTC midnight)."""
        day = dt.date.fromisoformat(self.event_time_floor)
        return (day - dt.date(1970, 1, 1)).days * 86_400_000

    @property
    def window_label(self) -> str:
        """Human form of the window size, as stored in ``aggregates.window_size`` (``1m``)."""
        ms = self.window_ms
        for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
            if ms % size == 0:
                return f"{ms // size}{unit}"
        return f"{ms}ms"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build and validate the settings; raise :class:`ConfigurationError` naming the variable."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env:
            values[name] = env[key]
    values.update(overrides)
    try:
        # Values are passed explicitly so an injected environ is honoured, not os.environ.
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        named = re.search(ENV_PREFIX + r"([A-Z_]+)", err["msg"])  # a check across settings
        loc_field = str(err["loc"][0]) if err["loc"] else None
        field = loc_field or (named.group(1).lower() if named else "settings")
        given = values.get(field, "<unset>")
        if isinstance(given, str):
            given = "<hidden>" if field == "kafka_sasl_password" else redact_url(given)
        text = (
            f"{err['msg']} (given: {given!r})"
            if loc_field
            else err["msg"].removeprefix("Value error, ")
        )
        error = ConfigurationError(ENV_PREFIX + field.upper(), text)
        # pydantic's own error quotes the raw input (a check across settings: all of it), so
        # a password would show in the traceback.
        raise error from (None if field in SECRET_FIELDS or not loc_field else exc)


def settings_environ(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment that makes a child process build exactly ``settings``.

    ``base`` (default: this process's environment) is kept, minus its ``ENVIROSTREAM_*``.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(ENV_PREFIX)}
    for name, value in settings.model_dump().items():
        if isinstance(value, SecretStr):  # SecretUrl too: the child needs the real value
            env[ENV_PREFIX + name.upper()] = value.get_secret_value()
        elif value is not None:
            env[ENV_PREFIX + name.upper()] = str(value)
    return env


def settings_table() -> str:
    """The Markdown table of every setting (docs/configuration.md embeds it verbatim)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "unset" if field.default is None else f"`{field.default}`"
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"
