"""``envirostream bench NAME``: run one benchmark; its last output line is JSON."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any

from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = ["BENCHMARKS", "add_parser", "require_extra", "run"]

BENCHMARKS = ("throughput", "simulator", "nab", "detection", "chaos", "skab")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser("bench", help="run a benchmark; last line is JSON")
    p.add_argument("name", choices=list(BENCHMARKS))
    p.add_argument("--readings", type=int, default=200_000, help="throughput: readings")
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        help="simulator (10000) / detection (120) / chaos (40): fleet size",
    )
    p.add_argument(
        "--hours", type=float, default=36.0, help="detection: event hours (failures after 24)"
    )
    p.add_argument("--seed", type=int, default=7, help="detection, chaos: fleet seed")
    p.add_argument(
        "--minutes", type=float, default=10.0, help="chaos: wall minutes of the faulty run"
    )
    p.add_argument(
        "--store-outage",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="chaos: stop the store for 6 s per --minutes mid-run (default on)",
    )
    p.add_argument(
        "--years", type=int, default=30, help="chaos: span of the monthly series replayed mid-run"
    )
    p.add_argument("--seconds", type=int, default=10, help="simulator: event seconds")
    p.add_argument(
        "--window-model",
        choices=["mahalanobis", "hst"],
        default=None,
        help="detection: the device window model (default: ENVIROSTREAM_DETECTOR_WINDOW_MODEL)",
    )
    p.add_argument(
        "--offline",
        action="store_true",
        help="nab, detection, skab: feed the detection stage in-process instead of running the "
        "readings through the pipeline (private Kafka, worker, ClickHouse store)",
    )
    p.add_argument(
        "--nab-dir",
        default=None,
        help="nab, chaos: the NAB dataset "
        "(default: ENVIROSTREAM_NAB_DIR, else ../shared/datasets/nab)",
    )
    p.add_argument(
        "--skab-dir",
        default=None,
        help="skab: the SKAB dataset "
        "(default: ENVIROSTREAM_SKAB_DIR, else ../shared/datasets/skab)",
    )
    p.add_argument(
        "--skab-protocol",
        choices=["history", "fresh", "free-history"],
        default="history",
        help="skab: one machine replaying valve1 in time order (history), a fresh device per "
        "file, or anomaly-free.csv first, then the history",
    )
    p.add_argument(
        "--lofo",
        action="store_true",
        help="skab: run the joint-state parameter grid offline; report in-sample and "
        "leave-one-file-out figures",
    )
    return p


def require_extra(module: str, package: str, what: str) -> None:
    """Raise a clear :class:`EnviroStreamError` when ``module`` (of the bench extra) is missing.

    >>> require_extra("json", "json", "bench x")
    >>> require_extra("no_such_module_here", "scikit-learn", "`envirostream bench detection`")
    Traceback (most recent call last):
    ...
    core.errors.EnviroStreamError: `envirostream bench detection` needs scikit-learn, which is \
not installed; install the bench extra: pip install -e '.[bench]'
    """
    if importlib.util.find_spec(module) is None:
        msg = (
            f"{what} needs {package}, which is not installed; "
            "install the bench extra: pip install -e '.[bench]'"
        )
        raise EnviroStreamError(msg)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.name == "simulator":
        from bench.simulator import run_simulator_bench

        run_simulator_bench(settings, devices=args.devices or 10_000, seconds=args.seconds)
    elif args.name == "detection":
        # The IsolationForest baseline it compares against comes from scikit-learn.
        require_extra("sklearn", "scikit-learn", "`envirostream bench detection`")
        from bench.detection import run_detection_bench

        run_detection_bench(
            settings,
            offline=args.offline,
            devices=args.devices or 120,
            hours=args.hours,
            seed=args.seed,
            window_model=args.window_model,
        )
    elif args.name == "chaos":
        from bench.chaos import run_chaos_bench

        run_chaos_bench(
            settings,
            minutes=args.minutes,
            devices=args.devices or 40,
            seed=args.seed,
            store_outage=args.store_outage,
            years=args.years,
            nab_dir=args.nab_dir,
        )
    elif args.name == "skab":
        from bench.skab import run_skab_bench

        run_skab_bench(
            settings,
            offline=args.offline,
            skab_dir=args.skab_dir,
            protocol=args.skab_protocol,
            lofo=args.lofo,
        )
    elif args.name == "nab":
        from bench.nab import run_nab_bench

        run_nab_bench(settings, offline=args.offline, nab_dir=args.nab_dir)
    else:
        from bench.throughput import run_throughput_bench

        run_throughput_bench(settings, readings=args.readings)
    return 0
