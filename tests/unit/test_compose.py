"""docker-compose.yml, infra/Dockerfile and the Prometheus/Alertmanager configs agree with the code.

No Docker needed: the files are parsed and checked against the settings, the CLI and the
repository's paths. Every check is a function returning readable problems, run on the real
repository and on a broken copy of it (so each check is shown able to fail).
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from core.errors import ConfigurationError
from core.secrets import SecretUrl
from core.settings import ENV_PREFIX, Settings, load_settings
from envirostream.cli import KNOWN_COMMANDS, build_parser

REPO = Path(__file__).resolve().parents[2]
COMPOSE = "docker-compose.yml"
PROMETHEUS_IN_CONTAINER = "/etc/prometheus/prometheus.yml"

# Which setting holds the /metrics port of each CLI subcommand run by a service.
METRICS_SETTING = {"worker": "metrics_port", "simulate": "simulator_metrics_port"}


# --- reading the files ----------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _services(root: Path) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _yaml(root / COMPOSE)["services"]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...]
        pairs = (item.split("=", 1) for item in env)
        return {key: value for key, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def _envirostream_env(service: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in _environment(service).items() if k.startswith(ENV_PREFIX)}


def _command(service: dict[str, Any]) -> list[str] | None:
    """The envirostream CLI arguments of a service running our image, else None."""
    if "build" not in service and not str(service.get("image", "")).startswith("envirostream"):
        return None
    command = service.get("command", [])
    args = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    return args[1:] if args[:1] == ["envirostream"] else args


def _bind_sources(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host path, container path) of every bind mount (short and long syntax)."""
    mounts = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                mounts.append((str(volume["source"]), str(volume["target"])))
            continue
        source, _, rest = str(volume).partition(":")
        if source.startswith((".", "/", "~")):
            mounts.append((source, rest.split(":")[0]))
    return mounts


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, args = full.partition(" ")
        instructions.append((word.upper(), args.strip()))
    return instructions


def _dockerfiles(root: Path) -> list[Path]:
    found = []
    for service in _services(root).values():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
        path = root / context / (dockerfile or "Dockerfile")
        if path not in found:
            found.append(path)
    return found


# --- the checks -----------------------------------------------------------------------------


def check_build_paths(root: Path) -> list[str]:
    problems = []
    for name, service in _services(root).items():
        build = service.get("build")
        if build is None:
            continue
        context = build if isinstance(build, str) else build.get("context", ".")
        if not (root / context).is_dir():
            problems.append(f"{name}: build context {context!r} is not a folder of the repo")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile")
        if not (root / context / (dockerfile or "Dockerfile")).is_file():
            problems.append(f"{name}: dockerfile {dockerfile!r} not found in {context!r}")
    return problems


def check_bind_mounts(root: Path) -> list[str]:
    problems = []
    for name, service in _services(root).items():
        for source, _ in _bind_sources(service):
            if not (root / source).exists():
                problems.append(f"{name}: bind-mounted host path {source!r} does not exist")
    return problems


def check_settings_env(root: Path) -> list[str]:
    """Every ENVIROSTREAM_* variable is a Settings field and the values validate together."""
    problems = []
    fields = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    for name, service in _services(root).items():
        env = _envirostream_env(service)
        unknown = sorted(set(env) - fields)
        problems += [f"{name}: {var} is not a setting (core.settings)" for var in unknown]
        try:
            load_settings(env)
        except ConfigurationError as exc:
            problems.append(f"{name}: invalid settings: {exc}")
    return problems


def check_partitions(root: Path) -> list[str]:
    """The broker's default partition count is the one the services create topics with."""
    services = _services(root)
    broker = _environment(services["kafka"]).get("KAFKA_NUM_PARTITIONS")
    problems = []
    for name, service in services.items():
        env = _envirostream_env(service)
        if not env:
            continue
        try:
            partitions = load_settings(env).topic_partitions
        except ConfigurationError:
            continue  # reported by check_settings_env
        if broker != str(partitions):
            problems.append(
                f"{name}: creates topics with {partitions} partitions (ENVIROSTREAM_TOPIC_"
                f"PARTITIONS) but the broker's KAFKA_NUM_PARTITIONS is {broker}"
            )
    return problems


def check_commands(root: Path) -> list[str]:
    problems = []
    parser = build_parser()
    for name, service in _services(root).items():
        args = _command(service)
        if args is None:
            continue
        if not args:
            problems.append(f"{name}: runs the envirostream image without a subcommand")
            continue
        if args[0] not in KNOWN_COMMANDS:
            problems.append(f"{name}: unknown subcommand {args[0]!r} (known: {KNOWN_COMMANDS})")
            continue
        try:
            parser.parse_args(args)
        except SystemExit:
            problems.append(f"{name}: the CLI rejects `envirostream {shlex.join(args)}`")
    return problems


def _scrape_targets(prometheus: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(job, host, port) of every static or DNS-discovered scrape target."""
    targets = []
    for job in prometheus.get("scrape_configs", []):
        for static in job.get("static_configs", []):
            for target in static.get("targets", []):
                host, _, port = str(target).rpartition(":")
                targets.append((job["job_name"], host, int(port)))
        for dns in job.get("dns_sd_configs", []):
            targets += [(job["job_name"], host, int(dns["port"])) for host in dns["names"]]
    return targets


def _prometheus_config(root: Path) -> tuple[dict[str, Any], Path]:
    for service in _services(root).values():
        for source, target in _bind_sources(service):
            if target == PROMETHEUS_IN_CONTAINER:
                path = root / source
                config: dict[str, Any] = _yaml(path)
                return config, path
    msg = f"no service bind-mounts a Prometheus config at {PROMETHEUS_IN_CONTAINER}"
    raise AssertionError(msg)


def check_scrape_ports(root: Path) -> list[str]:
    """Prometheus scrapes each metrics-serving service on the port it is configured with."""
    problems = []
    services = _services(root)
    prometheus, _ = _prometheus_config(root)
    targets = _scrape_targets(prometheus)
    scraped = {(host, port) for _, host, port in targets}
    for job, host, port in targets:
        if host not in services and host != "localhost":
            problems.append(f"scrape job {job}: {host}:{port} is not a compose service")
    for name, service in services.items():
        args = _command(service)
        if not args or args[0] not in METRICS_SETTING:
            continue
        field = METRICS_SETTING[args[0]]
        port = getattr(load_settings(_envirostream_env(service)), field)
        if port == 0:
            continue  # metrics turned off
        if (name, port) not in scraped:
            ports = sorted(p for h, p in scraped if h == name) or "nothing"
            problems.append(
                f"{name} serves /metrics on {port} ({ENV_PREFIX}{field.upper()}) "
                f"but Prometheus scrapes {ports} there"
            )
    return problems


def check_service_addresses(root: Path) -> list[str]:
    """Kafka, ClickHouse and Alertmanager addresses in the settings point at compose services."""
    problems = []
    services = _services(root)
    for name, service in services.items():
        env = _envirostream_env(service)
        settings = load_settings(env)
        addresses: list[tuple[str, str]] = []
        if settings.kafka_bootstrap:
            addresses += [("KAFKA_BOOTSTRAP", a) for a in settings.kafka_bootstrap.split(",")]
        for field in ("clickhouse_url", "alertmanager_url", "schema_registry_url"):
            value = getattr(settings, field)
            url = value.get_secret_value() if isinstance(value, SecretUrl) else value
            if url:
                addresses.append((field.upper(), url.split("://", 1)[1].split("@")[-1]))
        for var, address in addresses:
            host = address.split("/")[0].rpartition(":")[0]
            if host not in services:
                problems.append(f"{name}: {ENV_PREFIX}{var} points at {host!r}, no such service")
        if settings.kafka_bootstrap and "kafka" in services:
            advertised = _environment(services["kafka"]).get("KAFKA_ADVERTISED_LISTENERS", "")
            listeners = {item.split("://")[-1] for item in advertised.split(",")}
            for address in settings.kafka_bootstrap.split(","):
                if address not in listeners:
                    problems.append(
                        f"{name}: bootstrap {address} is not among Kafka's advertised "
                        f"listeners {sorted(listeners)}"
                    )
    return problems


_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_SECRET_REF = re.compile(r"^\$\{[A-Z_][A-Z0-9_]*:\?[^}]+\}$")
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|(^|_)KEY$")


def check_published_ports(root: Path) -> list[str]:
    """Every published port is bound to loopback on the host, never to all interfaces."""
    problems = []
    for name, service in _services(root).items():
        for entry in service.get("ports", []):
            host_ip = entry.get("host_ip") if isinstance(entry, dict) else None
            if not isinstance(entry, dict):
                parts = str(entry).rsplit(":", 2)
                host_ip = parts[0] if len(parts) == 3 else None
            if host_ip not in _LOOPBACK:
                problems.append(f"{name}: port {entry!r} is published on all interfaces")
    return problems


def _url_password(value: str) -> str | None:
    _scheme, sep, rest = value.partition("://")
    userinfo, at, _ = rest.split("/", 1)[0].rpartition("@") if sep else ("", "", "")
    return userinfo.partition(":")[2] if at and ":" in userinfo else None


def check_no_hardcoded_secrets(root: Path) -> list[str]:
    """Passwords come from the (uncommitted) env file: ``${VAR:?...}``, never a literal."""
    problems = []
    for name, service in _services(root).items():
        for var, value in _environment(service).items():
            secret = value if _SECRET_NAME.search(var) else _url_password(value)
            if secret is not None and not _SECRET_REF.match(secret):
                problems.append(f"{name}: {var} holds a literal secret, use ${{VAR:?...}}")
    for source in (root / "infra" / "grafana" / "provisioning").rglob("*.yml"):
        for datasource in (_yaml(source) or {}).get("datasources", []):
            for key, value in (datasource.get("secureJsonData") or {}).items():
                if not str(value).startswith("$"):
                    problems.append(f"{source.name}: {key} of {datasource['name']} is a literal")
    return problems


def check_metrics_hosts(root: Path) -> list[str]:
    """Services Prometheus scrapes over the compose network serve /metrics beyond loopback."""
    problems = []
    for name, service in _services(root).items():
        args = _command(service)
        if args and args[0] in METRICS_SETTING:
            host = load_settings(_envirostream_env(service)).metrics_host
            if host in _LOOPBACK:
                problems.append(
                    f"{name}: /metrics listens on {host} ({ENV_PREFIX}METRICS_HOST): "
                    "Prometheus in another container cannot scrape it"
                )
    return problems


def _ignored(path: str, patterns: list[str]) -> bool:
    parts = PurePosixPath(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        for prefix in prefixes:
            if fnmatch.fnmatch(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(PurePosixPath(prefix).name, bare)
            ):
                return True
    return False


def check_dockerfile(root: Path) -> list[str]:
    """COPY sources exist and survive .dockerignore; non-root; envirostream entry point."""
    problems = []
    ignore_file = root / ".dockerignore"
    patterns = [
        line.strip()
        for line in (ignore_file.read_text().splitlines() if ignore_file.is_file() else [])
        if line.strip() and not line.startswith("#")
    ]
    fields = {ENV_PREFIX + field.upper() for field in Settings.model_fields}
    for dockerfile in _dockerfiles(root):
        where = dockerfile.relative_to(root)
        instructions = _dockerfile_instructions(dockerfile)
        words = [word for word, _ in instructions]
        if not any(args.startswith("python:3.11") for w, args in instructions if w == "FROM"):
            problems.append(f"{where}: not based on python:3.11")
        for word, args in instructions:
            if word in ("COPY", "ADD"):
                tokens = [t for t in shlex.split(args) if not t.startswith("--")]
                for source in tokens[:-1]:
                    if not (root / source).exists():
                        problems.append(f"{where}: COPY source {source!r} does not exist")
                    elif _ignored(source, patterns):
                        problems.append(f"{where}: COPY source {source!r} is in .dockerignore")
            if word == "ENV":
                for pair in shlex.split(args):
                    key = pair.split("=", 1)[0]
                    if key.startswith(ENV_PREFIX) and key not in fields:
                        problems.append(f"{where}: ENV {key} is not a setting")
        users = [args for word, args in instructions if word == "USER"]
        if not users or users[-1] in ("root", "0"):
            problems.append(f"{where}: runs as root (add a USER)")
        entrypoints = [args for word, args in instructions if word == "ENTRYPOINT"]
        if not entrypoints or entrypoints[-1] != '["envirostream"]':
            problems.append(f'{where}: ENTRYPOINT must be ["envirostream"], got {entrypoints}')
        if "RUN" not in words or not any(
            "pip install ." in args for w, args in instructions if w == "RUN"
        ):
            problems.append(f"{where}: does not `pip install .` the project")
    return problems


def check_prometheus_rules(root: Path) -> list[str]:
    """The rule_files globs resolve, through the bind mounts, to rule groups only."""
    problems = []
    prometheus, config_path = _prometheus_config(root)
    mounts = [m for s in _services(root).values() for m in _bind_sources(s)]
    for pattern in prometheus.get("rule_files", []):
        folder, glob = pattern.rsplit("/", 1)
        hosts = [source for source, target in mounts if target.rstrip("/") == folder]
        if not hosts:
            problems.append(f"rule_files {pattern!r}: no bind mount provides {folder}")
            continue
        for host in hosts:
            for rule_file in sorted((root / host).glob(glob)):
                if rule_file.resolve() == config_path.resolve():
                    problems.append(f"rule_files {pattern!r} matches prometheus.yml itself")
                    continue
                content = _yaml(rule_file)
                if not isinstance(content, dict) or "groups" not in content:
                    problems.append(f"rule_files {pattern!r}: {rule_file.name} has no groups")
    for alerting in prometheus.get("alerting", {}).get("alertmanagers", []):
        for static in alerting.get("static_configs", []):
            for target in static.get("targets", []):
                if target.rpartition(":")[0] not in _services(root):
                    problems.append(f"alertmanager target {target} is not a compose service")
    return problems


def _routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    return [route] + [r for child in route.get("routes", []) for r in _routes(child)]


def check_alertmanager(root: Path) -> list[str]:
    problems = []
    for service in _services(root).values():
        for source, target in _bind_sources(service):
            if not target.endswith("alertmanager.yml"):
                continue
            config = _yaml(root / source)
            receivers = {r["name"] for r in config.get("receivers", [])}
            for route in _routes(config["route"]):
                if "receiver" in route and route["receiver"] not in receivers:
                    problems.append(f"alertmanager route uses unknown {route['receiver']!r}")
            if not any(r.get("webhook_configs") for r in config.get("receivers", [])):
                problems.append("alertmanager.yml has no webhook receiver")
    return problems


CHECKS: list[Callable[[Path], list[str]]] = [
    check_build_paths,
    check_bind_mounts,
    check_settings_env,
    check_partitions,
    check_commands,
    check_scrape_ports,
    check_service_addresses,
    check_published_ports,
    check_no_hardcoded_secrets,
    check_metrics_hosts,
    check_dockerfile,
    check_prometheus_rules,
    check_alertmanager,
]


# --- the repository passes every check -------------------------------------------------------


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_repository(check: Callable[[Path], list[str]]) -> None:
    assert check(REPO) == []


def test_expected_services_and_images() -> None:
    services = _services(REPO)
    expected = {"kafka", "clickhouse", "prometheus", "alertmanager", "grafana", "worker"}
    assert expected | {"simulator"} <= set(services)
    assert services["kafka"]["image"] == "apache/kafka:4.1.1"
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server")
    assert _command(services["worker"]) == ["worker"]
    assert (_command(services["simulator"]) or [])[:1] == ["simulate"]
    for name in ("worker", "simulator"):
        conditions = services[name]["depends_on"]
        assert conditions["kafka"]["condition"] == "service_healthy"
        assert "healthcheck" in services[name]


# --- and each check can fail -----------------------------------------------------------------


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """A copy of what the checks read, to be broken by each test."""
    for name in (COMPOSE, ".dockerignore", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("core", "envirostream", "schemas", "topics", "producers", "streams", "sinks"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=ignore)
    for folder in ("infra", "bench"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=ignore)
    assert all(check(tmp_path) == [] for check in CHECKS)
    return tmp_path


def _edit(root: Path, relative: str, old: str, new: str) -> None:
    path = root / relative
    text = path.read_text()
    assert old in text, f"{old!r} not in {relative}"
    path.write_text(text.replace(old, new, 1))


def test_fails_on_missing_dockerfile(broken: Path) -> None:
    _edit(broken, COMPOSE, "dockerfile: infra/Dockerfile", "dockerfile: infra/Dockerfile.gone")
    assert any("Dockerfile.gone" in p for p in check_build_paths(broken))


def test_fails_on_missing_bind_mount(broken: Path) -> None:
    (broken / "infra" / "alertmanager" / "alertmanager.yml").unlink()
    assert any("alertmanager.yml" in p for p in check_bind_mounts(broken))


def test_fails_on_unknown_setting(broken: Path) -> None:
    _edit(broken, COMPOSE, "ENVIROSTREAM_LOG_LEVEL: INFO", "ENVIROSTREAM_LOG_LEVL: INFO")
    assert any("ENVIROSTREAM_LOG_LEVL is not a setting" in p for p in check_settings_env(broken))


def test_fails_on_invalid_setting_value(broken: Path) -> None:
    _edit(broken, COMPOSE, 'ENVIROSTREAM_METRICS_PORT: "9464"', 'ENVIROSTREAM_METRICS_PORT: "x"')
    problems = check_settings_env(broken)
    assert any("ENVIROSTREAM_METRICS_PORT" in p and "invalid" in p for p in problems)


def test_fails_on_broker_partitions_unlike_the_topics(broken: Path) -> None:
    _edit(broken, COMPOSE, "KAFKA_NUM_PARTITIONS: 12", "KAFKA_NUM_PARTITIONS: 4")
    problems = check_partitions(broken)
    assert any("12 partitions" in p and "KAFKA_NUM_PARTITIONS is 4" in p for p in problems)


def test_fails_on_unknown_subcommand(broken: Path) -> None:
    _edit(broken, COMPOSE, 'command: ["worker"]', 'command: ["wroker"]')
    assert any("unknown subcommand 'wroker'" in p for p in check_commands(broken))


def test_fails_on_arguments_the_cli_rejects(broken: Path) -> None:
    _edit(broken, COMPOSE, '"--devices", "1000"', '"--device-count", "1000"')
    assert any("CLI rejects" in p for p in check_commands(broken))


def test_fails_on_scrape_port_mismatch(broken: Path) -> None:
    _edit(broken, COMPOSE, 'ENVIROSTREAM_METRICS_PORT: "9464"', 'ENVIROSTREAM_METRICS_PORT: "9470"')
    assert any("worker serves /metrics on 9470" in p for p in check_scrape_ports(broken))
    _edit(broken, "infra/prometheus/prometheus.yml", "port: 9466", "port: 9467")
    assert any("simulator serves /metrics on 9466" in p for p in check_scrape_ports(broken))


def test_fails_on_address_of_no_service(broken: Path) -> None:
    _edit(
        broken,
        COMPOSE,
        "ENVIROSTREAM_ALERTMANAGER_URL: http://alertmanager:9093",
        "ENVIROSTREAM_ALERTMANAGER_URL: http://alertmgr:9093",
    )
    assert any("'alertmgr', no such service" in p for p in check_service_addresses(broken))
    _edit(
        broken,
        COMPOSE,
        "ENVIROSTREAM_KAFKA_BOOTSTRAP: kafka:9092",
        "ENVIROSTREAM_KAFKA_BOOTSTRAP: kafka:9094",
    )
    assert any("not among Kafka's advertised" in p for p in check_service_addresses(broken))


def test_fails_on_missing_copy_source(broken: Path) -> None:
    shutil.rmtree(broken / "bench")
    assert any("COPY source 'bench'" in p for p in check_dockerfile(broken))


def test_fails_on_dockerignored_copy_source(broken: Path) -> None:
    with open(broken / ".dockerignore", "a") as fh:
        fh.write("README.md\n")
    assert any("'README.md' is in .dockerignore" in p for p in check_dockerfile(broken))


def test_fails_on_root_user_and_other_entrypoint(broken: Path) -> None:
    _edit(broken, "infra/Dockerfile", "USER envirostream", "USER root")
    _edit(broken, "infra/Dockerfile", 'ENTRYPOINT ["envirostream"]', 'ENTRYPOINT ["python"]')
    problems = check_dockerfile(broken)
    assert any("runs as root" in p for p in problems)
    assert any("ENTRYPOINT" in p for p in problems)


def test_fails_when_rule_glob_would_read_prometheus_yml(broken: Path) -> None:
    _edit(broken, COMPOSE, "./infra/prometheus/rules:/etc", "./infra/prometheus:/etc")
    assert any("matches prometheus.yml itself" in p for p in check_prometheus_rules(broken))


def test_fails_on_rule_file_without_groups(broken: Path) -> None:
    (broken / "infra" / "prometheus" / "rules" / "bad.yml").write_text("rules: []\n")
    assert any("bad.yml has no groups" in p for p in check_prometheus_rules(broken))


def test_fails_on_unknown_alertmanager_receiver(broken: Path) -> None:
    _edit(
        broken, "infra/alertmanager/alertmanager.yml", "receiver: oncall-webhook", "receiver: pager"
    )
    assert any("unknown 'pager'" in p for p in check_alertmanager(broken))


def test_fails_on_kafka_published_on_all_interfaces(broken: Path) -> None:
    _edit(broken, COMPOSE, '"127.0.0.1:29092:29092"', '"29092:29092"')
    assert any("kafka: port '29092:29092'" in p for p in check_published_ports(broken))
    _edit(broken, COMPOSE, '"29092:29092"', '"0.0.0.0:29092:29092"')
    assert check_published_ports(broken) != []


def test_fails_on_a_hardcoded_clickhouse_password(broken: Path) -> None:
    ref = "${CLICKHOUSE_PASSWORD:?set CLICKHOUSE_PASSWORD in .env}"
    _edit(broken, COMPOSE, f"CLICKHOUSE_PASSWORD: {ref}", "CLICKHOUSE_PASSWORD: envirostream")
    assert any("clickhouse: CLICKHOUSE_PASSWORD" in p for p in check_no_hardcoded_secrets(broken))


def test_fails_on_a_password_in_the_clickhouse_url(broken: Path) -> None:
    ref = "${CLICKHOUSE_PASSWORD:?set CLICKHOUSE_PASSWORD in .env}"
    _edit(broken, COMPOSE, f"envirostream:{ref}@clickhouse", "envirostream:pw@clickhouse")
    problems = check_no_hardcoded_secrets(broken)
    assert any("ENVIROSTREAM_CLICKHOUSE_URL holds a literal secret" in p for p in problems)


def test_fails_on_a_literal_grafana_datasource_password(broken: Path) -> None:
    datasource = "infra/grafana/provisioning/datasources/envirostream.yml"
    _edit(broken, datasource, "password: $CLICKHOUSE_PASSWORD", "password: envirostream")
    assert any("password of ClickHouse" in p for p in check_no_hardcoded_secrets(broken))


def test_fails_on_metrics_on_loopback_inside_a_container(broken: Path) -> None:
    host = "ENVIROSTREAM_METRICS_HOST"
    _edit(broken, COMPOSE, f"{host}: 0.0.0.0", f"{host}: 127.0.0.1")
    problems = check_metrics_hosts(broken)
    assert any("worker: /metrics listens on 127.0.0.1" in p for p in problems)
