"""Tenant names: the ``tenant_id`` of readings, aggregates, alerts and API keys.

A tenant name starts alert ids (``{tenant}/{device}/{group}@{ms}``), so it may not hold a
``/``; it is also a label value and a path-free identifier, so it is kept to letters,
digits, ``.``, ``_`` and ``-``.
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_TENANT", "check_tenant"]

DEFAULT_TENANT = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_tenant(name: str) -> str:
    """``name`` if it is a valid tenant name, else ValueError saying what is allowed.

    >>> check_tenant("utility-a")
    'utility-a'
    >>> check_tenant("a/b")
    Traceback (most recent call last):
    ...
    ValueError: tenant names are 1-64 letters, digits, '.', '_' or '-' (starting with a \
letter or digit), got 'a/b'
    """
    if not _NAME.match(name):
        msg = (
            "tenant names are 1-64 letters, digits, '.', '_' or '-' (starting with a letter "
            f"or digit), got {name!r}"
        )
        raise ValueError(msg)
    return name
