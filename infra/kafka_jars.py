"""Apache Kafka's jars from Maven Central, fetched once into ``<cache_dir>/kafka-<version>``.

Maven resolves ``org.apache.kafka:kafka_2.13`` and a log4j2 binding (``infra/kafka/pom.xml``)
into ``libs/``; the marker ``fetched.json`` lists the jars of a complete fetch, so an
interrupted one is simply redone. Used by :mod:`infra.kafka` (``python -m infra.kafka fetch``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = ["MARKER", "POM", "KafkaSetupError", "ensure_kafka_jars", "kafka_home"]

POM = Path(__file__).resolve().parent / "kafka" / "pom.xml"
SCALA_BINARY = "2.13"
MARKER = "fetched.json"
_MVN_TIMEOUT = 900.0
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Maven colours its output even with -B


class KafkaSetupError(EnviroStreamError):
    """The local broker cannot be installed or prepared (Maven, Java, storage format)."""


def kafka_home(settings: Settings) -> Path:
    """``<cache_dir>/kafka-<version>``: the fetched jars (``libs/``) and the fetch marker."""
    return settings.cache_dir.resolve() / f"kafka-{settings.kafka_version}"


def _fetch_command(mvn: str, version: str, output_dir: Path) -> list[str]:
    return [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={output_dir}",
        f"-Dkafka.version={version}",
    ]


def _required_jars(version: str) -> tuple[str, ...]:
    return (f"kafka_{SCALA_BINARY}-{version}.jar", f"kafka-clients-{version}.jar")


def _fetched(home: Path, version: str) -> bool:
    """True when the marker of a complete fetch exists and every jar it lists is present."""
    try:
        listed = json.loads((home / MARKER).read_text())["jars"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    libs = home / "libs"
    return all(name in listed for name in _required_jars(version)) and all(
        (libs / name).is_file() for name in listed
    )


@contextlib.contextmanager
def _exclusive(lock_file: Path) -> Iterator[None]:
    """Serialise fetches of one cache folder across processes (tests, CLI, make)."""
    with open(lock_file, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_kafka_jars(settings: Settings) -> Path:
    """Fetch Kafka's jars with Maven once; return the ``libs`` folder (cached afterwards).

    The marker ``fetched.json`` is written only after Maven finished and the jars were moved
    into place, so an interrupted fetch is simply redone.
    """
    version = settings.kafka_version
    home = kafka_home(settings)
    if _fetched(home, version):
        return home / "libs"
    home.mkdir(parents=True, exist_ok=True)
    with _exclusive(home / ".fetch.lock"):
        if _fetched(home, version):  # another process fetched while we waited
            return home / "libs"
        mvn = shutil.which("mvn")
        partial = home / "libs.partial"
        command = _fetch_command(mvn or "mvn", version, partial)
        if mvn is None:
            msg = (
                f"Maven (mvn) not found: it fetches Apache Kafka {version} from Maven Central. "
                f"Install it (apt-get install maven), then run: {shlex.join(command)}"
            )
            raise KafkaSetupError(msg)
        shutil.rmtree(partial, ignore_errors=True)
        try:
            result = subprocess.run(
                command, capture_output=True, text=True, timeout=_MVN_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            msg = (
                f"Maven did not finish fetching Apache Kafka {version} within "
                f"{_MVN_TIMEOUT:.0f}s (is Maven Central reachable?); command: {shlex.join(command)}"
            )
            raise KafkaSetupError(msg) from exc
        if result.returncode != 0:
            output = _ANSI.sub("", result.stdout + result.stderr).strip().splitlines()
            tail = "\n".join(output[-15:])
            msg = (
                f"Maven failed (exit {result.returncode}) to fetch Apache Kafka {version} from "
                f"Maven Central (check ENVIROSTREAM_KAFKA_VERSION and network access); "
                f"command: {shlex.join(command)}\n{tail}"
            )
            raise KafkaSetupError(msg)
        jars = sorted(p.name for p in partial.glob("*.jar"))
        missing = [name for name in _required_jars(version) if name not in jars]
        if missing:
            msg = (
                f"Maven finished but {', '.join(missing)} is missing from {partial}; "
                f"command: {shlex.join(command)}"
            )
            raise KafkaSetupError(msg)
        libs = home / "libs"
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        (home / MARKER).write_text(json.dumps({"version": version, "jars": jars}, indent=1))
    return home / "libs"
