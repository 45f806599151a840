"""The one ClickHouse client factory: the embedded store or a real server, same client.

Every part of EnviroStream (sinks, ``envirostream query``, benchmarks, tests) gets its
clickhouse-connect client here, so pointing the whole pipeline at a ClickHouse server or
cluster is a change of ``ENVIROSTREAM_CLICKHOUSE_URL`` alone.
"""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver import Client
from clickhouse_connect.driver import options as _driver_options
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from core.errors import ConfigurationError, ServiceUnavailableError
from core.settings import Settings
from core.store_password import STORE_USER, read_store_password

__all__ = ["client_options", "get_client"]


def _no_dataframes() -> None:
    """Tell clickhouse-connect that no pandas DataFrame will come, unless pandas is loaded.

    Its every insert asks whether the data is a DataFrame, and the first asks by importing
    pandas (and pyarrow under it): 0.55 s of CPU and 63 MiB in a worker, in the middle of
    its stream. EnviroStream inserts lists and columns only and queries without frames, so
    a process that has not loaded pandas for its own use has no frame to hand over.
    """
    if "pandas" not in sys.modules and "pd" not in vars(_driver_options):
        _driver_options.pd = None
        _driver_options.pd_time_test = None


_no_dataframes()


def client_options(settings: Settings) -> dict[str, Any]:
    """clickhouse-connect connection arguments for ``settings.store_url``.

    ``user:password@`` in the URL become the credentials (percent-decoded); the embedded
    store's come from its password file (``ENVIROSTREAM_STORE_PASSWORD_FILE``); ``https``
    turns TLS on. Sessions stay off: a session serialises its requests, and a client may be
    shared by the threads of a sink.
    """
    url = urlsplit(settings.store_url.get_secret_value())
    secure = url.scheme == "https"
    password = unquote(url.password) if url.password else ""
    if settings.uses_local_store:
        password = read_store_password(settings.store_password_path) or ""
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or (8443 if secure else 8123),
        "username": unquote(url.username) if url.username else STORE_USER,
        "password": password,
        "secure": secure,
        "connect_timeout": 5,
        "send_receive_timeout": 300,
        "autogenerate_session_id": False,
    }


def get_client(settings: Settings, *, database: str | None = None, **kwargs: Any) -> Client:
    """A clickhouse-connect client on ``settings.store_url`` that uses ``database``.

    ``database`` defaults to ``settings.clickhouse_database``; it is created if missing.
    ``kwargs`` go to :func:`clickhouse_connect.get_client` and win over the defaults
    (for example ``compress="zstd"`` or ``session_id=...``).

    Raises :class:`ServiceUnavailableError` when nothing answers at the URL.
    """
    db = database or settings.clickhouse_database
    options = client_options(settings)
    options.update(kwargs)
    options.pop("database", None)
    if settings.uses_local_store:
        hint = (
            "start the embedded store with `envirostream infra up` "
            f"(it listens on ENVIROSTREAM_STORE_PORT={settings.store_port})"
        )
    else:
        hint = "check that the server runs and that ENVIROSTREAM_CLICKHOUSE_URL points at it"
    try:
        client = clickhouse_connect.get_client(**options)
    except OperationalError as exc:
        raise ServiceUnavailableError(
            service="ClickHouse", address=str(settings.store_url), hint=hint
        ) from exc
    except DatabaseError as exc:
        if "AUTHENTICATION_FAILED" not in str(exc):
            raise
        raise _refused(settings) from None  # the exception quotes the request's URL
    try:
        client.command(f"CREATE DATABASE IF NOT EXISTS `{db.replace('`', '``')}`")
    except OperationalError as exc:
        client.close()
        raise ServiceUnavailableError(
            service="ClickHouse", address=str(settings.store_url), hint=hint
        ) from exc
    except BaseException:
        client.close()
        raise
    client.database = db
    return client


def _refused(settings: Settings) -> ConfigurationError:
    """The error for a store that refused the credentials (naming where they come from)."""
    if settings.uses_local_store:
        where = (
            f"the password in {settings.store_password_path} is not the running store's "
            "(restart it with `envirostream infra down && envirostream infra up`)"
        )
        return ConfigurationError("ENVIROSTREAM_STORE_PASSWORD_FILE", where)
    where = f"the user/password of {settings.store_url} are refused by the server"
    return ConfigurationError("ENVIROSTREAM_CLICKHOUSE_URL", where)
