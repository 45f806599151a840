"""The asset registry: site, location, model, install date and tags of each device.

Loaded from a file (``envirostream assets load FILE``) or one device at a time through the
API (``PUT /api/v1/devices/{device_id}/asset``); stored in ``assets``, where a newer row of a
``(tenant_id, device_id)`` replaces the older one.

File formats (docs/api.md):

* CSV with a header: ``device_id`` (required), ``tenant_id`` (default: ``--tenant``),
  ``site``, ``location``, ``model``, ``install_date`` (YYYY-MM-DD), ``tags`` (separated by
  ``;``);
* YAML: a list of mappings with the same keys (``tags`` a list), or ``{"devices": [...]}``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from api.models import Asset
from core.errors import EnviroStreamError

__all__ = ["AssetRow", "load_assets", "parse_assets", "upsert_asset", "write_assets"]

AssetRow = tuple[str, str, Asset]  # (tenant_id, device_id, asset)
_COLUMNS = [
    "tenant_id", "device_id", "site", "location", "model", "install_date", "tags", "updated_at",
]  # fmt: skip
_KNOWN = {"tenant_id", "device_id", "site", "location", "model", "install_date", "tags"}


def _row(entry: dict[str, Any], where: str, tenant: str) -> AssetRow:
    unknown = set(entry) - _KNOWN
    if unknown:
        msg = f"{where}: unknown field(s) {', '.join(sorted(unknown))}; known: {sorted(_KNOWN)}"
        raise EnviroStreamError(msg)
    device = str(entry.get("device_id") or "").strip()
    if not device:
        msg = f"{where}: device_id is missing"
        raise EnviroStreamError(msg)
    fields = {k: v for k, v in entry.items() if k not in ("tenant_id", "device_id")}
    if isinstance(fields.get("tags"), str):
        fields["tags"] = [t.strip() for t in fields["tags"].split(";") if t.strip()]
    if fields.get("install_date") in ("", None):
        fields.pop("install_date", None)
    for key in ("site", "location", "model"):
        if fields.get(key) is None:
            fields.pop(key, None)
        else:
            fields[key] = str(fields[key])
    try:
        asset = Asset.model_validate(fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        msg = f"{where}: {field}: {err['msg']} (given: {err.get('input')!r})"
        raise EnviroStreamError(msg) from None
    return str(entry.get("tenant_id") or tenant), device, asset


def parse_assets(text: str, fmt: str, tenant: str) -> list[AssetRow]:
    """The entries of an asset file's ``text`` (``fmt``: ``csv`` or ``yaml``).

    >>> rows = parse_assets("device_id,site,tags\\nbat-1,North,a;b\\n", "csv", "t1")
    >>> rows[0][:2], rows[0][2].site, rows[0][2].tags
    (('t1', 'bat-1'), 'North', ['a', 'b'])
    """
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None or "device_id" not in reader.fieldnames:
            msg = "the CSV needs a header line with at least a device_id column"
            raise EnviroStreamError(msg)
        return [_row(dict(e), f"line {i + 2}", tenant) for i, e in enumerate(reader)]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"not valid YAML: {exc}"
        raise EnviroStreamError(msg) from None
    if isinstance(data, dict) and "devices" in data:
        data = data["devices"]
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        msg = "the YAML must be a list of mappings (or {devices: [...]}), one per device"
        raise EnviroStreamError(msg)
    return [_row(e, f"entry {i + 1}", tenant) for i, e in enumerate(data)]


def load_assets(path: Path, tenant: str) -> list[AssetRow]:
    """Read and parse an asset file; the format comes from its suffix."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".yaml", ".yml"):
        msg = f"{path}: expected a .csv, .yaml or .yml file"
        raise EnviroStreamError(msg)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror}"
        raise EnviroStreamError(msg) from None
    return parse_assets(text, "csv" if suffix == ".csv" else "yaml", tenant)


def write_assets(client: Any, rows: list[AssetRow], now: dt.datetime) -> int:
    """Store ``rows`` (each replaces the device's earlier entry); returns how many."""
    data = [[t, d, a.site, a.location, a.model, a.install_date, a.tags, now] for t, d, a in rows]
    if data:
        client.insert("assets", data, column_names=_COLUMNS)
    return len(data)


def upsert_asset(client: Any, tenant: str, device: str, asset: Asset, now: dt.datetime) -> None:
    write_assets(client, [(tenant, device, asset)], now)
