"""The detection and alerting part of :class:`core.settings.Settings` (its fields, with their
defaults and meaning; ``Settings`` inherits them, the ``ENVIROSTREAM_`` prefix included)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings

__all__ = ["DetectionSettings"]


class DetectionSettings(BaseSettings):
    """``ENVIROSTREAM_DETECTOR_*``, ``ENVIROSTREAM_ALERT_*`` and the device-offline rule."""

    # --- detection and alerting -------------------------------------------------------
    detector_warmup: int = Field(
        default=300,
        ge=0,
        le=10_000_000,
        description="Readings a (device, capability) detector learns before it may flag "
        "an anomaly (no learned-model anomalies during warm-up); chosen by cross-validation "
        "(`envirostream bench nab-cv`, docs/detection.md).",
    )
    detector_threshold: float = Field(
        default=6.0, gt=0, description="|z| at or above which a reading is an anomaly."
    )
    detector_persistence: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Anomalous readings among a series' last 10 that raise an alert.",
    )
    detector_likelihood: Literal["off", "generic", "all"] = Field(
        default="generic",
        description="Which series the anomaly likelihood (-log10 tail probability of the "
        "detector's recent mean |z| under its learned distribution) may alert on: GENERIC "
        "ones (replayed data of unknown meaning), all learned series, or none.",
    )
    detector_likelihood_threshold: float = Field(
        default=4.0,
        gt=0,
        le=300,
        description="-log10 of the tail probability at which the anomaly likelihood alerts "
        "(4 = one in ten thousand).",
    )
    detector_joint: bool = Field(
        default=False,
        description="Judge a device's signals together at each instant (anomaly:joint, an "
        "online Hotelling T²): for machines logging all signals per row at a high rate (SKAB's "
        "1 Hz pump rig). Off by default: on the simulated fleet (1 reading/min) it raised "
        "108 false alerts per 100 healthy device-days.",
    )
    detector_joint_threshold: float = Field(
        default=1.0,
        gt=0,
        le=100,
        description="With ENVIROSTREAM_DETECTOR_JOINT: the normalised Hotelling T² (about "
        "N(0, 1) for a healthy instant) at which an instant counts as high; 5 high rows of 10 "
        "alert (1.0: chosen by leave-one-file-out on SKAB valve1).",
    )
    detector_window_model: Literal["mahalanobis", "hst"] = Field(
        default="mahalanobis",
        description="What scores a device's 5-minute window of signals together "
        "(anomaly:window): mahalanobis (EW covariance) or hst (River HalfSpaceTrees; the "
        "sibling-drift CUSUM keeps the Mahalanobis residuals); docs/detection.md compares them.",
    )
    predict_horizon_seconds: float = Field(
        default=21_600.0,
        gt=0,
        description="A safety limit predicted to be crossed within this raises PREDICTED_FAILURE.",
    )
    anomaly_sample_every: int = Field(
        default=0,
        ge=0,
        description="Also send every n-th normal score of a series to telemetry.anomalies; "
        "0 = anomalies only.",
    )
    alert_quiet_period_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Event time without a repeat after which an alert is RESOLVED.",
    )
    alert_quiet_intervals: int = Field(
        default=12,
        ge=0,
        le=10_000,
        description="An alert's quiet period is at least this many of its device's usual "
        "sampling intervals (an hourly series is not quiet after one hour); 0: the quiet "
        "period alone.",
    )
    alert_repeat_interval_seconds: float = Field(
        default=14_400.0,
        gt=0,
        description="Event time after which a still-firing alert is sent again.",
    )
    alert_reopen_seconds: float = Field(
        default=21_600.0,
        ge=0,
        description="A resolved alert that fires again within this much event time after it "
        "resolved reopens (same alert_id, next version) instead of opening a new alert; 0 = "
        "never reopen.",
    )
    device_offline_factor: float = Field(
        default=10.0,
        ge=0,
        le=1_000,
        description="A device that sends nothing for this many of its usual intervals (the "
        "running median of its event-time steps) and at least "
        "ENVIROSTREAM_DEVICE_OFFLINE_MIN_SECONDS of wall clock raises one DEVICE_OFFLINE alert, "
        "resolved when it returns; 0 = off.",
    )
    device_offline_min_seconds: float = Field(
        default=60.0,
        ge=0,
        description="The least wall-clock silence that raises DEVICE_OFFLINE, whatever the "
        "device's usual interval; 0 = no floor.",
    )
    device_state_ttl_hours: float = Field(
        default=168.0,
        gt=0,
        description="Event time after which the learned state and resolved alert of a device "
        "that stopped sending are dropped (memory and changelog stay bounded as devices come "
        "and go); a device that returns warms up again.",
    )
    detector_checkpoint_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How often the learned detector state of each changed device is written "
        "to the compacted {APP_ID}-detector-state-changelog topic, a paced share of the devices "
        "in every commit round (a restart loads it: no new warm-up; what was learned since the "
        "last checkpoint is learned again from the replay or lost).",
    )
