"""The local operator's key of ``envirostream up``: the web view works out of the box.

``up`` on the embedded store keeps one ``operate`` key of the simulated tenant in
``<data dir>/operator.key`` (mode 0600) and prints the file's path, never the key: a key
is a secret and stays out of output and logs. The key is reused while it is valid (same
tenant, not revoked); otherwise a new one replaces it. Against a shared server or
cluster ``up`` makes no key: an administrator gives keys out with ``envirostream keys``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from api.keys import create_key, find_key
from core.settings import Settings

__all__ = ["KEY_NAME", "ensure_local_key", "local_key_path"]

KEY_NAME = "envirostream up: local operator"


def local_key_path(settings: Settings) -> Path:
    return settings.data_dir / "operator.key"


def ensure_local_key(client: Any, settings: Settings, tenant: str) -> Path:
    """The path of a file holding a valid ``operate`` key of ``tenant`` (created if needed)."""
    path = local_key_path(settings)
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        key = ""
    if key:
        record = find_key(client, key)
        if record is not None and not record.revoked and record.tenant_id == tenant:
            return path
    _record, key = create_key(client, tenant, "operate", KEY_NAME)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key + "\n")
    tmp.replace(path)
    return path
