"""``envirostream keys create|list|revoke``: API keys of tenants (docs/api.md)."""

from __future__ import annotations

import argparse
from typing import Any

from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "keys", help="create, list or revoke API keys (per tenant, scoped)"
    )
    p.add_argument("action", choices=["create", "list", "revoke"])
    p.add_argument("key_id", nargs="?", help="revoke: the key's id (`keys list`)")
    p.add_argument("--tenant", default="default", help="create: the tenant the key sees")
    p.add_argument(
        "--scope",
        choices=["read", "operate", "admin"],
        default="read",
        help="create: read; operate (+ feedback); admin (+ asset registry)",
    )
    p.add_argument("--name", default="", help="create: who or what uses the key")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api.keys import create_key, list_keys, revoke_key
    from api.store import operator_client

    client = operator_client(settings)
    if args.action == "create":
        record, key = create_key(client, args.tenant, args.scope, args.name)
        print(f"created {record.key_id} (tenant {record.tenant_id}, scope {record.scope})")
        print("the key (shown only now; only its SHA-256 is stored):")
        print(key)
        return 0
    if args.action == "list":
        print(f"{'id':16} {'tenant':16} {'scope':8} {'created (UTC)':20} {'revoked':20} name")
        for r in list_keys(client):
            revoked = f"{r.revoked_at:%Y-%m-%d %H:%M:%S}" if r.revoked_at else "-"
            print(
                f"{r.key_id:16} {r.tenant_id:16} {r.scope:8} "
                f"{r.created_at:%Y-%m-%d %H:%M:%S}  {revoked:20} {r.name}"
            )
        return 0
    if not args.key_id:
        msg = "`envirostream keys revoke` needs a KEY_ID (`envirostream keys list`)"
        raise EnviroStreamError(msg)
    record = revoke_key(client, args.key_id)
    print(f"revoked {record.key_id} (tenant {record.tenant_id}, {record.name})")
    return 0
