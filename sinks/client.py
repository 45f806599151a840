"""The one ClickHouse client factory: the embedded store or a real server, same client."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.exceptions import OperationalError

from envirostream.errors import ServiceUnavailableError
from envirostream.settings import Settings

__all__ = ["get_client"]


def get_client(settings: Settings, *, database: str | None = None, **kwargs: Any) -> Any:
    """A clickhouse-connect client on ``settings.store_url``, using (and creating) the database."""
    url = urlsplit(settings.store_url)
    db = database or settings.clickhouse_database
    secure = url.scheme == "https"
    options: dict[str, Any] = {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or (8443 if secure else 8123),
        "username": unquote(url.username) if url.username else "default",
        "password": unquote(url.password) if url.password else "",
        "secure": secure,
        "connect_timeout": 5,
        "send_receive_timeout": 300,
        "autogenerate_session_id": False,
    }
    options.update(kwargs)
    hint = (
        "start it with `envirostream infra up`"
        if settings.uses_local_store
        else "check ENVIROSTREAM_CLICKHOUSE_URL"
    )
    try:
        bootstrap = clickhouse_connect.get_client(**options)
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{db}`")
        bootstrap.close()
        return clickhouse_connect.get_client(database=db, **options)
    except OperationalError as exc:
        raise ServiceUnavailableError(
            service="ClickHouse", address=settings.store_url.split("@")[-1], hint=hint
        ) from exc
