"""``envirostream topics create|describe``: create missing topics, report them and drift."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "topics", help="create missing topics or describe them"
    )
    p.add_argument("action", choices=["create", "describe"])
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from topics import TopicAdmin, topic_specs
    from topics.producer import wait_for_broker

    wait_for_broker(settings, timeout=30)
    admin = TopicAdmin(settings)
    specs = topic_specs(settings)
    if args.action == "create":
        created = admin.create_missing(specs)
        print("created: " + (", ".join(created) if created else "nothing (all exist)"))
    for state in admin.describe(specs):
        print(
            f"{state.name:28} "
            + (
                f"partitions={state.partitions} retention.ms={state.retention_ms} "
                f"cleanup.policy={state.cleanup_policy}"
                if state.exists
                else "MISSING"
            )
        )
    drift = admin.drift(specs)
    for d in drift:
        print(f"drift: {d}")
    return 1 if drift else 0
