"""Private pipelines (benches) delete their temp data dir after a clean run, keep it after a
failed one (its logs), and never delete a data dir they did not make."""

from __future__ import annotations

from pathlib import Path

import pytest

import infra.harness as harness
from core.settings import Settings, load_settings
from infra.harness import discard_private, private_services, private_settings


@pytest.fixture
def no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka and the store are not what is tested here: starting and stopping do nothing."""
    monkeypatch.setattr(harness, "start_services", lambda settings, store=True: None)
    monkeypatch.setattr(harness, "stop_services", lambda settings: None)


def _private() -> Settings:
    settings = private_settings(load_settings({}), "es-test-private-")
    (settings.data_dir / "logs").mkdir()
    (settings.data_dir / "logs" / "worker.log").write_text("a line\n")
    return settings


def test_a_clean_run_leaves_no_data_dir(no_services: None) -> None:
    settings = _private()
    with private_services(settings):
        assert settings.data_dir.is_dir()
    assert not settings.data_dir.exists()


def test_a_failed_run_keeps_its_logs_and_says_where(
    no_services: None, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = _private()
    with pytest.raises(RuntimeError), private_services(settings):
        raise RuntimeError("the bench failed")
    assert (settings.data_dir / "logs" / "worker.log").read_text() == "a line\n"
    assert f"kept {settings.data_dir} for its logs" in capsys.readouterr().err
    assert discard_private(settings)
    assert not settings.data_dir.exists()


def test_a_data_dir_not_made_by_private_settings_is_never_deleted(
    no_services: None, tmp_path: Path
) -> None:
    mine = tmp_path / "pipeline"
    (mine / "kafka").mkdir(parents=True)
    settings = load_settings({}, data_dir=mine)
    assert not discard_private(settings)
    with private_services(settings):
        pass
    assert (mine / "kafka").is_dir()
