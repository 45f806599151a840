"""The Faust app: runs the process (timers, signals) and wires the worker into it.

``create_app`` makes the app, starts the input loop (:mod:`streams.consumer`) as a task,
the housekeeping and health timers, and lets the modules of
``ENVIROSTREAM_WORKER_AGENTS`` add their own agents (:mod:`streams.agents`). Everything
the worker does is in :mod:`streams.worker` and the parts it wires.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import faust

from core.settings import Settings
from streams.agents import AgentRegistration
from streams.consumer import INPUT_TOPICS, consume
from streams.worker import SINK_FLUSH_CHECK_SECONDS, PipelineWorker
from topics.kafka_config import sasl_password, ssl_context

__all__ = ["INPUT_TOPICS", "PipelineWorker", "broker_credentials", "create_app"]


def broker_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's Kafka credentials from the transport-security settings (None: PLAINTEXT).

    Faust hands them to aiokafka as :func:`topics.kafka_config.aiokafka_kwargs` does for the
    worker's input consumer: same protocol, mechanism, user and TLS context.
    """
    protocol = settings.kafka_security_protocol
    context = ssl_context(settings)
    if protocol.startswith("SASL_"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=sasl_password(settings),
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism,
        )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return None


def create_app(
    settings: Settings,
    build_worker: Callable[[faust.App], PipelineWorker],
    agents: Sequence[AgentRegistration] = (),
) -> faust.App:
    """The Faust app; ``build_worker`` makes the worker once the app exists, ``agents``
    declare user agents on it."""
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        # Faust's own group (user agents, timers) is apart from the input consumer's
        # group, which is ``settings.app_id`` (see streams.consumer).
        f"{settings.app_id}-app",
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        datadir=str(settings.data_dir / "faust"),
        broker_credentials=broker_credentials(settings),
    )
    holder: dict[str, PipelineWorker] = {}

    def worker() -> PipelineWorker:
        if "w" not in holder:
            holder["w"] = build_worker(app)
        return holder["w"]

    @app.task
    async def input_loop() -> None:
        await consume(settings, worker, lambda: bool(app.should_stop))

    @app.timer(interval=0.5)
    async def housekeeping() -> None:
        await worker().tick()

    @app.timer(interval=SINK_FLUSH_CHECK_SECONDS)
    async def flush_due() -> None:
        await worker().flush_due()

    @app.timer(interval=settings.health_interval_seconds)
    async def sample_health() -> None:
        await worker().sample_health()

    for register in agents:
        register(app)
    return app
