"""Start one stream worker process: checks, topics, sink, metrics, then the Faust loop."""

from __future__ import annotations

import logging

import faust
from confluent_kafka import KafkaException
from prometheus_client import CollectorRegistry, GCCollector, start_http_server

from core.errors import ConfigurationError, EnviroStreamError
from core.gc_tuning import tune_gc
from core.metrics import PipelineMetrics
from core.secrets import redact_url
from core.settings import Settings
from schemas import AvroCodec, SchemaRegistryClient
from sinks.alertmanager import AlertmanagerForwarder
from sinks.asset_sites import AssetSites
from sinks.ddl import TABLES
from sinks.registry import open_sink
from streams.agents import load_agents
from streams.app import create_app
from streams.consumer import INPUT_TOPICS
from streams.health import ConsumerLagProbe
from streams.outage import quiet_client_logs
from streams.validate import REASONS
from streams.worker import PipelineWorker
from topics import TopicAdmin, topic_specs
from topics.producer import RecordProducer, wait_for_broker

__all__ = ["run_worker", "serve_metrics"]

log = logging.getLogger(__name__)


def serve_metrics(
    port: int, registry: CollectorRegistry, setting: str, host: str = "127.0.0.1"
) -> None:
    """Serve /metrics on ``host:port`` (0 = off); a taken port stops the process at start.

    ``host`` is ``ENVIROSTREAM_METRICS_HOST``: loopback unless opened on purpose.
    """
    if port == 0:
        return
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ConfigurationError(
            setting,
            f"cannot serve /metrics on {host}:{port}: {exc.strerror}; choose a free port "
            "(or another ENVIROSTREAM_METRICS_HOST)",
        ) from exc


def _warn_partition_drift(admin: TopicAdmin, settings: Settings) -> None:
    """Log topics with another partition count than the settings (never changed here:
    docs/scaling.md); a failed look-up only costs the warning."""
    try:
        drifts = admin.drift(topic_specs(settings))
    except (KafkaException, EnviroStreamError) as exc:
        log.info("partition counts not checked: %s", exc)
        return
    for drift in drifts:
        if drift.setting == "partitions":
            log.warning("topic %s", drift)


def run_worker(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT. Everything that can be checked is checked before Faust starts."""
    agents = load_agents(settings.agent_modules)
    wait_for_broker(settings, timeout=60)
    admin = TopicAdmin(settings)
    admin.create_missing(topic_specs(settings))
    _warn_partition_drift(admin, settings)
    sink = open_sink(settings)
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry, tables=TABLES, dead_letter_reasons=REASONS)
    GCCollector(registry=registry)  # python_gc_*: collections and their yield by generation
    serve_metrics(
        settings.metrics_port, registry, "ENVIROSTREAM_METRICS_PORT", settings.metrics_host
    )
    codec = AvroCodec(registry=SchemaRegistryClient.from_settings(settings))
    # Outputs are retried for as long as the broker is away (no timeout: a record that
    # failed would stop the commits for good), and librdkafka's log goes through Python
    # logging, where repeated connection errors are rate-limited with aiokafka's.
    producer = RecordProducer(
        settings,
        extra={"message.timeout.ms": 0, "logger": logging.getLogger("envirostream.kafka")},
    )
    quiet_client_logs()
    # Device alerts go to Alertmanager whenever a URL is set (off when unset).
    # Their `site` label comes from the asset registry (`envirostream assets load`).
    sites = AssetSites.from_settings(settings)
    forwarder = (
        AlertmanagerForwarder(
            settings.alertmanager_url.get_secret_value(), metrics, sites=sites.site
        )
        if settings.alertmanager_url
        else None
    )
    if forwarder is not None and settings.alertmanager_url is not None:
        url = redact_url(settings.alertmanager_url.get_secret_value())
        log.info("forwarding device alerts to Alertmanager at %s", url)
    if agents:
        log.info("user agents from %s", ", ".join(settings.agent_modules))

    def build(app: faust.App) -> PipelineWorker:
        return PipelineWorker(
            settings,
            codec,
            sink,
            producer,
            metrics,
            lag_probe=ConsumerLagProbe(settings, settings.app_id, INPUT_TOPICS),
            forwarder=forwarder,
        )

    app = create_app(settings, build, agents)
    tune_gc(settings.gc_thresholds)  # what exists now lives as long as the process
    worker = faust.Worker(app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()
