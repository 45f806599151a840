"""``envirostream alerts``: alert ids are parsed strictly; usage errors name what is missing."""

from __future__ import annotations

import pytest

from core.errors import EnviroStreamError
from core.settings import load_settings
from envirostream.cli import main
from envirostream.feedback import parse_alert_id, send_feedback


@pytest.mark.parametrize(
    ("alert_id", "expected"),
    [
        ("default/bat-7/device@1700000000000", ("default", "bat-7")),
        ("utility-a/site/3/pump-1/device@5", ("utility-a", "site/3/pump-1")),
    ],
)
def test_alert_ids_name_tenant_and_device(alert_id: str, expected: tuple[str, str]) -> None:
    assert parse_alert_id(alert_id) == expected


@pytest.mark.parametrize(
    "bad", ["", "bat-7", "default/bat-7@17", "default/bat-7/device", "default//device@1", "a/b/c@x"]
)
def test_malformed_alert_ids_are_refused_with_the_expected_form(bad: str) -> None:
    with pytest.raises(EnviroStreamError, match="TENANT/DEVICE/GROUP@FIRST_SEEN_MS"):
        parse_alert_id(bad)


def test_unknown_action_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(EnviroStreamError, match="ack, false-positive"):
        send_feedback(load_settings({}), "default/d/device@1", "silence", check=False)


def test_feedback_without_an_alert_id_exits_1_naming_it(capsys: pytest.CaptureFixture) -> None:
    assert main(["alerts", "false-positive"]) == 1
    assert "needs an ALERT_ID" in capsys.readouterr().err
