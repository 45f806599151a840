"""Asset files: CSV and YAML parse to the same entries; bad entries are named."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from api.assets import load_assets, parse_assets
from core.errors import EnviroStreamError

CSV = """device_id,tenant_id,site,location,model,install_date,tags
pump-1,,North,hall 1,P-200,2024-03-01,pump;north
pump-2,other,South,,,,
"""
YAML = """
devices:
  - device_id: pump-1
    site: North
    location: hall 1
    model: P-200
    install_date: 2024-03-01
    tags: [pump, north]
  - {device_id: pump-2, tenant_id: other, site: South}
"""


def test_csv_and_yaml_give_the_same_entries() -> None:
    rows = parse_assets(CSV, "csv", "t1")
    assert parse_assets(YAML, "yaml", "t1") == rows
    (tenant, device, asset), (tenant2, _, asset2) = rows
    assert (tenant, device, tenant2) == ("t1", "pump-1", "other")
    assert asset.install_date == dt.date(2024, 3, 1) and asset.tags == ["pump", "north"]
    assert (asset2.site, asset2.model, asset2.install_date, asset2.tags) == ("South", "", None, [])


@pytest.mark.parametrize(
    ("text", "fmt", "message"),
    [
        ("site\nNorth\n", "csv", "device_id column"),
        ("device_id,site\n,North\n", "csv", "line 2: device_id is missing"),
        ("device_id,install_date\np,2024-13-01\n", "csv", "line 2: install_date"),
        ("device_id,colour\np,red\n", "csv", "unknown field(s) colour"),
        ("- device_id: p\n  tags: 3\n", "yaml", "entry 1: tags"),
        ("device_id: p\n", "yaml", "a list of mappings"),
        ("[unclosed\n", "yaml", "not valid YAML"),
    ],
)
def test_bad_entries_are_refused_naming_where(text: str, fmt: str, message: str) -> None:
    with pytest.raises(EnviroStreamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_assets(text, fmt, "t")


def test_the_format_comes_from_the_suffix(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(YAML)
    assert len(load_assets(tmp_path / "a.yml", "t")) == 2
    (tmp_path / "a.json").write_text("{}")
    with pytest.raises(EnviroStreamError, match=r"expected a \.csv, \.yaml or \.yml"):
        load_assets(tmp_path / "a.json", "t")
    with pytest.raises(EnviroStreamError, match="cannot read"):
        load_assets(tmp_path / "missing.csv", "t")
