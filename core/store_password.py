"""The embedded store's password: one random secret per data dir, in a 0600 file.

``infra up`` (and the harness of benches and tests) calls :func:`ensure_store_password`
before starting the store, so a fresh machine is locked by default; the store reads the
file at start and every client built from the settings (``sinks.client``) reads it too.
The password never appears in argv, logs or status output: only the file's path does.

>>> import tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "store.password"
>>> first = ensure_store_password(path)
>>> oct(path.stat().st_mode & 0o777), len(first) >= 32, ensure_store_password(path) == first
('0o600', True, True)
>>> read_store_password(path) == first, read_store_password(path.with_name("none")) is None
(True, True)
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["STORE_USER", "ensure_store_password", "read_store_password"]

STORE_USER = "default"  # the one user of the embedded store, as in a fresh ClickHouse


def read_store_password(path: Path) -> str | None:
    """The password in ``path`` (first line, stripped); None when there is no such file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    password = text.splitlines()[0].strip() if text.strip() else ""
    return password or None


def ensure_store_password(path: Path) -> str:
    """The password in ``path``, generated (random, mode 0600) if the file does not exist.

    An existing file readable by others is tightened to 0600.
    """
    existing = read_store_password(path)
    if existing is not None:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(password + "\n")
    path.chmod(0o600)
    return password
