"""The one ClickHouse client factory: the embedded store or a real server, same client.

Every part of EnviroStream (sinks, ``envirostream query``, benchmarks, tests) gets its
clickhouse-connect client here, so pointing the whole pipeline at a ClickHouse server or
cluster is a change of ``ENVIROSTREAM_CLICKHOUSE_URL`` alone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver import Client
from clickhouse_connect.driver.exceptions import OperationalError

from core.errors import ServiceUnavailableError
from core.settings import Settings

__all__ = ["client_options", "get_client"]


def client_options(settings: Settings) -> dict[str, Any]:
    """clickhouse-connect connection arguments for ``settings.store_url``.

    ``user:password@`` in the URL become the credentials (percent-decoded); ``https`` turns
    TLS on. Sessions stay off: a session serialises its requests, and a client may be
    shared by the threads of a sink.
    """
    url = urlsplit(settings.store_url.get_secret_value())
    secure = url.scheme == "https"
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or (8443 if secure else 8123),
        "username": unquote(url.username) if url.username else "default",
        "password": unquote(url.password) if url.password else "",
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
