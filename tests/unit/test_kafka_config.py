"""Pure parts of the local Kafka: server.properties, cluster ids, the fetch marker, prereqs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from core.settings import load_settings
from infra import kafka, kafka_jars
from infra.prereqs import check_prerequisites, parse_java_major


def _properties(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_server_properties_listeners_dirs_and_replication(tmp_path: Path) -> None:
    settings = load_settings(
        {},
        data_dir=tmp_path / "data",
        kafka_port=29101,
        kafka_controller_port=29102,
        topic_partitions=6,
    )
    props = _properties(kafka.render_server_properties(settings))

    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29102"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29101,CONTROLLER://127.0.0.1:29102"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29101"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["log.dirs"] == str((tmp_path / "data" / "kafka" / "logs").resolve())
    assert props["num.partitions"] == "6"
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "default.replication.factor",
    ):
        assert props[key] == "1", key
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["auto.create.topics.enable"] == "true"
    # The ports of another pipeline never leak in.
    assert "19092" not in kafka.render_server_properties(settings)


def test_relative_data_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({}, data_dir="rel")
    props = _properties(kafka.render_server_properties(settings))
    assert props["log.dirs"] == str(tmp_path.resolve() / "rel" / "kafka" / "logs")


def test_cluster_id_is_a_kafka_uuid() -> None:
    ids = {kafka._new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert len(cid) == 22 and not cid.startswith("-")
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_java_argv_uses_heap_classpath_and_log_config(tmp_path: Path) -> None:
    settings = load_settings({}, kafka_heap="300m")
    argv = kafka._java_argv(settings, tmp_path / "libs", "kafka.Kafka", "server.properties")
    assert "-Xmx300m" in argv
    assert argv[argv.index("-cp") + 1] == f"{tmp_path / 'libs'}/*"
    assert argv[-2:] == ["kafka.Kafka", "server.properties"]
    assert any(a.startswith("-Dlog4j2.configurationFile=") for a in argv)
    assert kafka.LOG4J_CONFIG.is_file() and kafka.POM.is_file()


def test_fetch_marker_requires_every_listed_jar(tmp_path: Path) -> None:
    home = tmp_path / "kafka-4.1.1"
    libs = home / "libs"
    libs.mkdir(parents=True)
    jars = ["kafka_2.13-4.1.1.jar", "kafka-clients-4.1.1.jar", "slf4j-api-1.7.36.jar"]
    for name in jars:
        (libs / name).write_bytes(b"")
    assert not kafka_jars._fetched(home, "4.1.1")  # no marker: an interrupted fetch
    (home / kafka.MARKER).write_text(json.dumps({"version": "4.1.1", "jars": jars}))
    assert kafka_jars._fetched(home, "4.1.1")
    (libs / "slf4j-api-1.7.36.jar").unlink()
    assert not kafka_jars._fetched(home, "4.1.1")


def test_missing_maven_names_maven_and_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kafka_jars.shutil, "which", lambda name: None)
    settings = load_settings({}, cache_dir=tmp_path)
    with pytest.raises(kafka.KafkaSetupError) as err:
        kafka.ensure_kafka_jars(settings)
    text = str(err.value)
    assert "Maven" in text and "apt-get install maven" in text
    assert "dependency:copy-dependencies" in text and str(kafka.POM) in text
    assert not (tmp_path / "kafka-4.1.1" / kafka.MARKER).exists()


def test_failing_maven_reports_exit_code_and_leaves_no_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "mvn"
    fake.write_text("#!/bin/sh\necho '[ERROR] Could not resolve dependencies'\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(kafka_jars.shutil, "which", lambda name: str(fake))
    settings = load_settings({}, cache_dir=tmp_path / "cache", kafka_version="9.9.9")
    with pytest.raises(kafka.KafkaSetupError, match=r"Maven failed \(exit 1\)") as err:
        kafka.ensure_kafka_jars(settings)
    assert "Could not resolve dependencies" in str(err.value)
    assert "-Dkafka.version=9.9.9" in str(err.value)
    assert not (tmp_path / "cache" / "kafka-9.9.9" / kafka.MARKER).exists()


def test_external_cluster_starts_nothing(tmp_path: Path) -> None:
    settings = load_settings({}, data_dir=tmp_path, kafka_bootstrap="kafka.example:9092")
    assert kafka.start_kafka(settings) is None
    assert kafka.stop_kafka(settings) is False
    assert not (tmp_path / "kafka").exists()


@pytest.mark.parametrize(
    ("output", "major"),
    [
        (
            'openjdk version "17.0.15" 2025-04-15\n'
            "OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)\n"
            "OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)\n",
            17,
        ),
        ('java version "1.8.0_392"\nJava(TM) SE Runtime Environment (build 1.8.0_392-b08)\n', 8),
        ('openjdk version "21" 2023-09-19\nOpenJDK Runtime Environment (build 21+35)\n', 21),
        ('openjdk version "11.0.2-ea" 2018-10-16\n', 11),
        ('Picked up JAVA_TOOL_OPTIONS: -Xss4m\nopenjdk version "23.0.1" 2024-10-15\n', 23),
        ("openjdk 21.0.2 2024-01-16\nOpenJDK Runtime Environment (build 21.0.2+13)\n", 21),
        ("bash: java: command not found\n", None),
        ("", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def _check(
    python: tuple[int, int, int],
    java: str | None,
    mvn: str | None,
    java_output: str = "",
    need_kafka: bool = True,
) -> list[str]:
    """check_prerequisites on a pretend machine."""
    paths = {"java": java, "mvn": mvn}
    return check_prerequisites(
        need_kafka,
        python_version=python,
        which=paths.get,
        java_version_output=lambda path: java_output,
    )


def test_prerequisites_all_present() -> None:
    java17 = 'openjdk version "17.0.15" 2025-04-15'
    assert _check((3, 11, 9), "/usr/bin/java", "/usr/bin/mvn", java17) == []


def test_prerequisites_accept_newer_python() -> None:
    java21 = 'openjdk version "21.0.2" 2024-01-16'
    for python in ((3, 12, 1), (3, 13, 0), (3, 14, 0)):
        assert _check(python, "/usr/bin/java", "/usr/bin/mvn", java21) == []


def test_prerequisites_old_java_wrong_python_no_maven() -> None:
    problems = _check((3, 10, 14), "/usr/bin/java", None, 'java version "1.8.0_392"')
    assert len(problems) == 3
    assert "Python 3.11 or newer required, found 3.10.14" in problems[0]
    assert "Java 17 or newer" in problems[1] and "1.8.0_392" in problems[1]
    assert "openjdk-17-jre-headless" in problems[1]
    assert "apt-get install maven" in problems[2]


def test_prerequisites_missing_java_message() -> None:
    assert _check((3, 11, 4), None, "/usr/bin/mvn") == [
        "Java 17 or newer not found: install OpenJDK 17 "
        "(apt-get install openjdk-17-jre-headless); the local Kafka broker runs on it"
    ]


def test_prerequisites_without_local_kafka_skip_java_and_maven() -> None:
    assert _check((3, 11, 0), None, None, need_kafka=False) == []
