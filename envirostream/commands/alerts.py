"""``envirostream alerts list|ack|false-positive``: list alerts, give operator feedback."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "alerts", help="list alerts; acknowledge one or mark a false positive"
    )
    p.add_argument("action", choices=["list", "ack", "false-positive"])
    p.add_argument("alert_id", nargs="?", help="ack/false-positive: the alert's alert_id")
    p.add_argument("--state", default=None, help="list: only alerts in this state")
    p.add_argument("--limit", type=int, default=50, help="list: newest N alerts")
    p.add_argument("--operator", default=None, help="who gives the feedback (default $USER)")
    p.add_argument("--comment", default="", help="free text kept with the feedback")
    p.add_argument(
        "--no-check",
        action="store_true",
        help="send the feedback without checking that the alert is in the alerts table",
    )
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from envirostream.feedback import list_alerts, send_feedback

    if args.action == "list":
        sys.stdout.write(list_alerts(settings, state=args.state, limit=args.limit))
        return 0
    if not args.alert_id:
        msg = f"`envirostream alerts {args.action}` needs an ALERT_ID (`envirostream alerts list`)"
        raise EnviroStreamError(msg)
    print(
        send_feedback(
            settings,
            args.alert_id,
            args.action,
            operator=args.operator,
            comment=args.comment,
            check=not args.no_check,
        )
    )
    return 0
