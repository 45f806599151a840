"""Invalid API settings stop the process at start, naming the variable."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from core.settings import load_settings
from envirostream.cli import main


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENVIROSTREAM_API_PORT", "70000"),
        ("ENVIROSTREAM_API_RATE_PER_SECOND", "0"),
        ("ENVIROSTREAM_API_RATE_BURST", "0"),
        ("ENVIROSTREAM_API_KEY_CACHE_SECONDS", "-1"),
        ("ENVIROSTREAM_API_HOST", ""),
    ],
)
def test_invalid_api_settings_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({variable: value})
    assert caught.value.setting == variable


def test_envirostream_api_exits_2_on_an_invalid_port(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ENVIROSTREAM_API_PORT", "http")
    assert main(["api"]) == 2
    assert "ENVIROSTREAM_API_PORT" in capsys.readouterr().err


def test_defaults_serve_on_loopback() -> None:
    settings = load_settings({})
    assert (settings.api_host, settings.api_port) == ("127.0.0.1", 8470)
