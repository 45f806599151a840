"""What a machine needs before EnviroStream runs: Python 3.11+, Java 17+ and Maven (for Kafka).

``python -m infra.prereqs`` prints each missing prerequisite with how to install it and
exits 1 if any is missing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence

__all__ = ["MIN_JAVA", "MIN_PYTHON", "check_prerequisites", "main", "parse_java_major"]

MIN_JAVA = 17
# Oldest supported; newer ones are accepted (docs/compatibility.md says what was checked).
MIN_PYTHON = (3, 11)

# `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15', 'java version
# "1.8.0_392"' (old scheme: the major is the second number) or 'openjdk version "21" ...';
# `java --version` prints 'openjdk 21.0.2 2024-01-16'.
_JAVA_VERSION = re.compile(r'(?:version\s+"|^(?:openjdk|java)\s+)(\d+)(?:\.(\d+))?', re.MULTILINE)


def parse_java_major(version_output: str) -> int | None:
    """The Java major version in ``java -version`` output (``1.8`` counts as 8), or None."""
    match = _JAVA_VERSION.search(version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def _java_version_output(java: str) -> str:
    try:
        result = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stderr + result.stdout  # the JVM prints its version on stderr


def check_prerequisites(
    need_kafka: bool = True,
    *,
    python_version: Sequence[int] | None = None,
    which: Callable[[str], str | None] = shutil.which,
    java_version_output: Callable[[str], str] = _java_version_output,
) -> list[str]:
    """Readable problems, one per missing prerequisite; empty when all is present.

    ``need_kafka`` asks for what the local broker needs (Java, Maven); leave it False when
    ``ENVIROSTREAM_KAFKA_BOOTSTRAP`` points at an existing cluster. The keyword arguments
    let tests stand in for the machine.
    """
    problems = []
    version = tuple(sys.version_info[:3] if python_version is None else python_version)
    if version[:2] < MIN_PYTHON:
        found = ".".join(str(part) for part in version)
        problems.append(
            f"Python 3.11 or newer required, found {found}: install Python 3.11 or newer "
            "(apt-get install python3.11 python3.11-venv) and recreate the virtualenv with it "
            "(make PYTHON=/path/to/python3.x)"
        )
    if not need_kafka:
        return problems
    java = which("java")
    if java is None:
        problems.append(
            f"Java {MIN_JAVA} or newer not found: install OpenJDK {MIN_JAVA} "
            "(apt-get install openjdk-17-jre-headless); the local Kafka broker runs on it"
        )
    else:
        output = java_version_output(java)
        major = parse_java_major(output)
        if major is None or major < MIN_JAVA:
            first = output.strip().splitlines()[0] if output.strip() else "no version output"
            problems.append(
                f"Java {MIN_JAVA} or newer needed by Kafka 4.x, found {first!r} at {java}: "
                "install OpenJDK 17 (apt-get install openjdk-17-jre-headless) and put it "
                "first on PATH or set JAVA_HOME"
            )
    if which("mvn") is None:
        problems.append(
            "Maven (mvn) not found: install Maven (apt-get install maven); it fetches "
            "Apache Kafka's jars from Maven Central on first start"
        )
    return problems


def main() -> int:
    problems = check_prerequisites()
    if problems:
        print("missing prerequisites:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"prerequisites present: Python {sys.version.split()[0]}, Java 17+, Maven")
    return 0


if __name__ == "__main__":
    sys.exit(main())
