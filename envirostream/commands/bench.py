"""``envirostream bench NAME``: run one benchmark; its last output line is JSON."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any, TypeVar

from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = ["BENCHMARKS", "add_parser", "require_extra", "run"]

T = TypeVar("T")

BENCHMARKS = (
    "throughput",
    "decode",
    "routing",
    "gateway",
    "simulator",
    "nab",
    "nab-cv",
    "detection",
    "chaos",
    "storage",
    "rollups",
    "scale",
    "soak",
    "series",
    "skab",
    "api",
)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser("bench", help="run a benchmark; last line is JSON")
    p.add_argument("name", choices=list(BENCHMARKS))
    p.add_argument(
        "--readings",
        type=int,
        default=None,
        help="throughput (200000) / scale (300000) / decode (200000) / api (10000000): readings",
    )
    p.add_argument(
        "--workers",
        default=None,
        help="scale: worker counts to run, comma-separated (default 1,2,4); soak: workers (1)",
    )
    p.add_argument("--requests", type=int, default=200, help="api: timed requests of each kind")
    p.add_argument(
        "--rounds", type=int, default=3, help="decode, routing: rounds (the best is kept)"
    )
    p.add_argument(
        "--devices",
        type=int,
        default=None,
        help="simulator (10000) / detection (120) / chaos (40) / storage (50) / soak (800) / "
        "series (2000) / rollups (800): fleet size",
    )
    p.add_argument(
        "--hours",
        type=float,
        default=None,
        help="detection: event hours (36; failures after 24) / storage: hours at 1 Hz (1)",
    )
    p.add_argument("--seed", type=int, default=7, help="detection, chaos, storage: fleet seed")
    p.add_argument(
        "--rollup-devices",
        type=int,
        default=50,
        help="storage: devices whose month of minute windows the rollup queries read",
    )
    p.add_argument(
        "--rollup-days", type=int, default=30, help="storage: days of minute windows (a month)"
    )
    p.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="chaos (10) / soak (3): wall minutes of the run; rollups (4): minutes of windows",
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
    p.add_argument(
        "--seconds",
        type=int,
        default=None,
        help="simulator (10) / series (30): event seconds; gateway (60): ticks",
    )
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
        help="nab, nab-cv, chaos: the NAB dataset "
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


def _given(value: T | None, default: T) -> T:
    """The option's value, or the benchmark's own default when it was not given.

    >>> _given(None, 3.0), _given(0, 3.0)
    (3.0, 0)
    """
    return default if value is None else value


def _worker_counts(text: str) -> tuple[int, ...]:
    """``--workers``: positive worker counts, comma-separated.

    >>> _worker_counts("1,2,4")
    (1, 2, 4)
    >>> _worker_counts("1,two")
    Traceback (most recent call last):
    ...
    core.errors.EnviroStreamError: --workers must be positive integers separated by commas \
(e.g. 1,2,4), got '1,two'
    """
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        msg = f"--workers must be positive integers separated by commas (e.g. 1,2,4), got {text!r}"
        raise EnviroStreamError(msg)
    return counts


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.name == "simulator":
        from bench.simulator import run_simulator_bench

        run_simulator_bench(
            settings, devices=args.devices or 10_000, seconds=_given(args.seconds, 10)
        )
    elif args.name == "detection":
        # The IsolationForest baseline it compares against comes from scikit-learn.
        require_extra("sklearn", "scikit-learn", "`envirostream bench detection`")
        from bench.detection import run_detection_bench

        run_detection_bench(
            settings,
            offline=args.offline,
            devices=args.devices or 120,
            hours=36.0 if args.hours is None else args.hours,
            seed=args.seed,
            window_model=args.window_model,
        )
    elif args.name == "chaos":
        from bench.chaos import run_chaos_bench

        run_chaos_bench(
            settings,
            minutes=_given(args.minutes, 10.0),
            devices=args.devices or 40,
            seed=args.seed,
            store_outage=args.store_outage,
            years=args.years,
            nab_dir=args.nab_dir,
        )
    elif args.name == "nab-cv":
        from bench.nab_cv import run_nab_cv_bench

        run_nab_cv_bench(settings, nab_dir=args.nab_dir)
    elif args.name == "storage":
        from bench.storage import run_storage_bench

        for option, value in (
            ("--devices", args.devices or 50),
            ("--hours", 1.0 if args.hours is None else args.hours),
            ("--rollup-devices", args.rollup_devices),
            ("--rollup-days", args.rollup_days),
        ):
            if value <= 0:
                msg = f"{option} must be positive, got {value}"
                raise EnviroStreamError(msg)
        run_storage_bench(
            settings,
            devices=args.devices or 50,
            hours=1.0 if args.hours is None else args.hours,
            seed=args.seed,
            rollup_devices=args.rollup_devices,
            rollup_days=args.rollup_days,
        )
    elif args.name == "decode":
        from bench.decode import run_decode_bench

        run_decode_bench(settings, readings=_given(args.readings, 200_000), rounds=args.rounds)
    elif args.name == "gateway":
        from bench.gateway import run_gateway_bench

        run_gateway_bench(
            settings, devices=_given(args.devices, 100), seconds=int(_given(args.seconds, 60))
        )
    elif args.name == "routing":
        from bench.routing import run_routing_bench

        run_routing_bench(rounds=args.rounds)
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
    elif args.name == "soak":
        from bench.soak import run_soak_bench

        counts = _worker_counts(args.workers or "1")
        if len(counts) != 1:
            msg = f"soak: --workers is one number of workers, got {args.workers!r}"
            raise EnviroStreamError(msg)
        run_soak_bench(
            settings,
            devices=_given(args.devices, 800),
            minutes=_given(args.minutes, 3.0),
            workers=counts[0],
        )
    elif args.name == "rollups":
        from bench.rollup_refresh import run_rollup_refresh_bench

        run_rollup_refresh_bench(
            settings, devices=_given(args.devices, 800), minutes=int(_given(args.minutes, 4))
        )
    elif args.name == "series":
        from bench.series import run_series_bench

        run_series_bench(
            settings, devices=_given(args.devices, 2000), ticks=_given(args.seconds, 30)
        )
    elif args.name == "api":
        from bench.api_latency import run_api_bench

        if args.requests <= 0 or _given(args.readings, 1) <= 0:
            msg = "api: --requests and --readings must be positive"
            raise EnviroStreamError(msg)
        run_api_bench(settings, readings=_given(args.readings, 10_000_000), requests=args.requests)
    elif args.name == "scale":
        from bench.scale import run_scale_bench

        run_scale_bench(
            settings,
            readings=_given(args.readings, 300_000),
            workers=_worker_counts(args.workers or "1,2,4"),
        )
    else:
        from bench.throughput import run_throughput_bench

        run_throughput_bench(settings, readings=_given(args.readings, 200_000))
    return 0
