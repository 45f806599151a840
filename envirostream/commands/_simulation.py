"""The simulated fleet's options, shared by ``envirostream up`` and ``envirostream simulate``,
and ``--tenant`` (also of ``replay`` and ``gateway mqtt``)."""

from __future__ import annotations

import argparse
import datetime as dt

from core.errors import EnviroStreamError
from core.tenants import DEFAULT_TENANT, check_tenant
from producers.models import KINDS
from producers.scenarios import SCENARIOS
from producers.simulator import SimulationConfig

__all__ = [
    "add_simulation_args",
    "add_tenant_arg",
    "parse_kinds",
    "parse_start",
    "simulation_config",
    "tenant_arg",
]


def parse_kinds(text: str) -> tuple[str, ...]:
    """``--kinds``: a comma list of device kinds.

    >>> parse_kinds("Grid, machine")
    ('grid', 'machine')
    """
    kinds = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        given = ", ".join(unknown) or "(none)"
        msg = f"unknown device kind(s) {given}; choose from {', '.join(KINDS)}"
        raise argparse.ArgumentTypeError(msg)
    return kinds


def parse_start(text: str) -> int:
    """``--start``: an ISO time (UTC unless it says otherwise) as epoch milliseconds.

    >>> parse_start("2026-01-01T00:00:00Z")
    1767225600000
    """
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        msg = f"expected an ISO time such as 2026-01-01T00:00:00Z, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def tenant_arg(text: str) -> str:
    """``--tenant``: a valid tenant name (argparse type).

    >>> tenant_arg("utility-a")
    'utility-a'
    """
    try:
        return check_tenant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_tenant_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--tenant",
        type=tenant_arg,
        default=DEFAULT_TENANT,
        help=f"tenant_id of {what} (default {DEFAULT_TENANT}; API keys see one tenant)",
    )


def add_simulation_args(p: argparse.ArgumentParser) -> None:
    """The fleet options: devices, kinds, rate, pace, event times, seed, failures, tenant."""
    p.add_argument("--devices", type=int, default=100, help="number of devices (default 100)")
    p.add_argument(
        "--kinds", type=parse_kinds, default=KINDS, help="comma list of " + ",".join(KINDS)
    )
    p.add_argument("--rate", type=float, default=1.0, help="readings per sensor per second")
    p.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="event seconds per wall second (1 = real time, 0 = as fast as possible)",
    )
    p.add_argument("--start", type=parse_start, default=None, help="first event time (ISO, UTC)")
    p.add_argument("--duration", type=float, default=None, help="event-time seconds to simulate")
    p.add_argument("--seed", type=int, default=0, help="same seed = same readings, byte for byte")
    p.add_argument(
        "--failure-rate",
        type=float,
        default=None,
        help="share of devices that fail (0-1; default 0, or 0.1 with --scenario)",
    )
    p.add_argument(
        "--scenario",
        default=None,
        help="only this failure scenario (see docs/scenarios.md): " + ", ".join(SCENARIOS),
    )
    p.add_argument(
        "--onset-delay",
        type=float,
        default=0.0,
        help="event seconds added to every failure onset (lets detectors warm up first)",
    )
    add_tenant_arg(p, "the simulated readings")


def simulation_config(args: argparse.Namespace) -> SimulationConfig:
    """The parsed fleet options as a :class:`SimulationConfig` (bad combinations refused)."""
    try:
        return SimulationConfig(
            devices=args.devices,
            kinds=tuple(args.kinds),
            rate_hz=args.rate,
            speedup=args.speedup,
            start_ms=args.start,
            duration_s=args.duration,
            seed=args.seed,
            failure_rate=args.failure_rate,
            scenario=args.scenario,
            onset_delay_s=args.onset_delay,
            tenant_id=args.tenant,
        )
    except ValueError as exc:
        raise EnviroStreamError(str(exc)) from exc
