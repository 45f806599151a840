"""The detection stage of the readings path: rules, learned models, predictions, one alert.

This module is the stage's front door: it re-exports the names the worker and the benches
use. The code lives in :mod:`streams.detection_stage` (the stage), :mod:`streams.alert_book`
(one alert per device), :mod:`streams.signals` (one module per signal, registered in
``streams.signals.SIGNALS``; see docs/extending.md to add one) and
:mod:`streams.signals.config` (the knobs, built from settings in one place).

Pure (no Kafka, no clock): :class:`DetectionStage` is fed every reading the readings
processor accepted, in partition-offset order, and collects what must be produced:

* ``AnomalyScore`` records (``telemetry.anomalies``): every score with ``is_anomaly`` set,
  plus, when ``score_sample_every`` > 0, every n-th score of a series (bounded volume);
* ``Alert`` records (``telemetry.alerts``): state changes of the deduplicated alerts.

Signals, per series (one sensor of a device, ``sensor_id``) unless said otherwise:

* **safety limits** (``streams.signals.limits``, rules in ``streams.detect.rules``): a
  breach is observed at once, no learning;
* **learned anomalies**: the seasonal z-score + Page-Hinkley detector
  (``streams.detect.univariate``) scores every reading; ``persistence`` anomalous readings
  among the last ``persistence_window`` make an ``anomaly:{CAPABILITY}`` observation (one
  noisy reading never pages anyone);
* **predicted failure**: a series with a safety limit feeds its bucket means (``trend_bucket``
  of event time) to a Theil-Sen time-to-limit estimate (``streams.detect.predictive``); a
  crossing predicted inside ``horizon`` on ``trend_confirm`` buckets in a row is a
  ``PREDICTED_FAILURE`` observation carrying the estimated time to failure;
* **drift towards a limit** (``streams.signals.profile_drift``): a limited series' bucket
  means departing from its daily profile towards the limit, summed in a CUSUM
  (``profile_drift_*``), make a ``drift:{CAPABILITY}`` observation hours before a slow fault
  reaches the limit;
* **sensor health**: a normally varying series repeating one value ``stuck_after`` times
  (``sensor:stuck:{CAPABILITY}``), and, per device, missing ticks (gaps in ``sequence``)
  over ``gap_share`` of the recent ones (``device:gaps``; a restarted counter or a replay
  is no gap);
* **silent devices** (``streams.signals.offline``): no reading for ``offline_factor`` times
  the device's usual interval (and ``offline_min_ms``) of the wall clock the worker gives
  :meth:`DetectionStage.silence` → ``DEVICE_OFFLINE``, its own alert, resolved on return.

All observations of one device share one alert key ``{tenant}/{device}/device``: one incident,
one alert. The alert opens with the first observation and is re-sent when a more serious
rule joins (anomaly < predicted failure < safety limit) or the severity rises; its
``attributes["rules"]`` lists the rules seen. A resolved alert observed again within the
policy's reopen window reopens (same ``alert_id``, next version: ``streams.alerts``).

Time is event time. Each input partition has a *detection watermark*: the largest event
time seen on it. An alert is resolved once its partition's watermark is ``quiet_period``
past its ``last_seen``, with ``resolved_at = last_seen + quiet_period`` (the same record
whatever the batch boundaries, so a replay produces it identically). When a partition has
no input, the worker lets its watermark run on with the wall clock (:meth:`idle`), so the
alerts of devices that fell silent still resolve.

Restart safety: :meth:`DetectionStage.restore` loads the latest ``Alert`` record per key (read
back from ``telemetry.alerts``); observations at or before an alert's ``last_seen`` are
ignored by ``advance_alert``, so replayed readings neither re-send nor double-count. The
per-device model state is checkpointed with :meth:`checkpoint` and reloaded with
:meth:`load_checkpoint` (a compacted changelog topic in the worker); readings at or before a
series' last learned event time are not learned twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from streams.alert_book import DEVICE_GROUP
from streams.detection_stage import CHECKPOINT_VERSION, DetectionOutput, DetectionStage
from streams.signals.base import DeviceState, SeriesState
from streams.signals.config import (
    DETECTION_SETTINGS,
    LIKELIHOOD_SCOPES,
    WINDOW_MODELS,
    DetectionConfig,
    alert_policy_from_settings,
    detection_config_from_settings,
)
from streams.signals.limits import limit_rule
from streams.signals.window import WindowModel, new_window_model

if TYPE_CHECKING:
    from typing import Any

    from core.settings import Settings

__all__ = [
    "CHECKPOINT_VERSION",
    "DETECTION_SETTINGS",
    "DEVICE_GROUP",
    "LIKELIHOOD_SCOPES",
    "WINDOW_MODELS",
    "DetectionConfig",
    "DetectionOutput",
    "DetectionStage",
    "DeviceState",
    "SeriesState",
    "WindowModel",
    "detection_config_from_settings",
    "detection_stage_from_settings",
    "limit_rule",
    "new_window_model",
]


def detection_stage_from_settings(settings: Settings, **overrides: Any) -> DetectionStage:
    """The detection stage the worker runs, configured from ``settings``.

    One place for this construction: the worker (``streams.app``) and the benchmarks that
    feed readings to the stage directly (``bench detection``, ``bench nab --offline``) use
    it; ``overrides`` set :class:`DetectionConfig` fields explicitly on top of the settings.
    """
    return DetectionStage(
        detection_config_from_settings(settings, **overrides),
        policy=alert_policy_from_settings(settings),
    )
