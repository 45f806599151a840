"""Create missing topics and report drift, never destroying data.

Drift (fewer/more partitions than specified, another retention) is reported, not "fixed":
growing partitions changes key placement and shrinking is impossible, so an operator
decides. ``create_missing`` only ever creates topics that do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from core.errors import EnviroStreamError, ServiceUnavailableError
from topics.definitions import TopicSpec
from topics.kafka_config import KafkaTarget, kafka_address, librdkafka_config

__all__ = ["TopicAdmin", "TopicDrift", "TopicState"]


@dataclass(frozen=True)
class TopicState:
    """What the broker says about one topic."""

    name: str
    exists: bool
    partitions: int = 0
    retention_ms: int | None = None
    cleanup_policy: str | None = None


@dataclass(frozen=True)
class TopicDrift:
    """One difference between the specification and the broker."""

    topic: str
    setting: str
    expected: str
    actual: str

    def __str__(self) -> str:
        """The difference, and for too few partitions why they are not added here.

        >>> print(TopicDrift("telemetry.readings", "partitions", "12", "4"))
        telemetry.readings: partitions is 4, expected 12 (not grown automatically: more \
partitions move existing devices to other partitions, breaking per-device order and state \
ownership; at most 4 workers share the load; see docs/scaling.md)
        >>> print(TopicDrift("telemetry.dlq", "partitions", "1", "3"))
        telemetry.dlq: partitions is 3, expected 1
        """
        text = f"{self.topic}: {self.setting} is {self.actual}, expected {self.expected}"
        if self.setting == "partitions" and int(self.actual) < int(self.expected):
            text += (
                " (not grown automatically: more partitions move existing devices to other "
                "partitions, breaking per-device order and state ownership; at most "
                f"{self.actual} workers share the load; see docs/scaling.md)"
            )
        return text


class TopicAdmin:
    """Topic administration against one cluster."""

    def __init__(self, kafka: KafkaTarget, timeout: float = 15.0) -> None:
        self.bootstrap = kafka_address(kafka)
        self.timeout = timeout
        self._admin = AdminClient({**librdkafka_config(kafka), "socket.timeout.ms": 10000})

    def _existing(self) -> dict[str, int]:
        try:
            meta = self._admin.list_topics(timeout=self.timeout)
        except KafkaException as exc:
            raise ServiceUnavailableError(
                service="Kafka",
                address=self.bootstrap,
                hint="start it with `envirostream infra up`",
            ) from exc
        return {name: len(t.partitions) for name, t in meta.topics.items()}

    def describe(self, specs: list[TopicSpec]) -> list[TopicState]:
        existing = self._existing()
        present = [s for s in specs if s.name in existing]
        configs: dict[str, dict[str, str]] = {}
        if present:
            resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in present]
            for resource, future in self._admin.describe_configs(resources).items():
                entries = future.result(timeout=self.timeout)
                configs[resource.name] = {k: str(v.value) for k, v in entries.items()}
        states = []
        for spec in specs:
            if spec.name not in existing:
                states.append(TopicState(spec.name, exists=False))
                continue
            conf = configs.get(spec.name, {})
            retention = conf.get("retention.ms")
            states.append(
                TopicState(
                    spec.name,
                    exists=True,
                    partitions=existing[spec.name],
                    retention_ms=int(retention) if retention not in (None, "None") else None,
                    cleanup_policy=conf.get("cleanup.policy"),
                )
            )
        return states

    def drift(self, specs: list[TopicSpec]) -> list[TopicDrift]:
        """Differences between the specs and existing topics (missing topics included)."""
        found: list[TopicDrift] = []
        by_name = {s.name: s for s in specs}
        for state in self.describe(specs):
            spec = by_name[state.name]
            if not state.exists:
                found.append(TopicDrift(spec.name, "exists", "yes", "no"))
                continue
            if state.partitions != spec.partitions:
                found.append(
                    TopicDrift(spec.name, "partitions", str(spec.partitions), str(state.partitions))
                )
            if spec.retention_ms is not None and state.retention_ms != spec.retention_ms:
                found.append(
                    TopicDrift(
                        spec.name, "retention.ms", str(spec.retention_ms), str(state.retention_ms)
                    )
                )
            policy = spec.config.get("cleanup.policy")
            if policy is not None and state.cleanup_policy != policy:
                found.append(
                    TopicDrift(spec.name, "cleanup.policy", policy, str(state.cleanup_policy))
                )
        return found

    def create_missing(self, specs: list[TopicSpec]) -> list[str]:
        """Create the topics that do not exist; return their names. Existing ones are kept."""
        existing = self._existing()
        missing = [s for s in specs if s.name not in existing]
        if not missing:
            return []
        new = [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=s.replication,
                config=dict(s.config),
            )
            for s in missing
        ]
        created = []
        for name, future in self._admin.create_topics(new, operation_timeout=self.timeout).items():
            try:
                future.result(timeout=self.timeout)
                created.append(name)
            except KafkaException as exc:
                # Another worker may have created it a moment ago: that is fine.
                if "TOPIC_ALREADY_EXISTS" in str(exc):
                    continue
                msg = f"could not create topic {name!r} on {self.bootstrap}: {exc}"
                raise EnviroStreamError(msg) from exc
        return created
