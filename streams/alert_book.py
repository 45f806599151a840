"""The alert glue of the detection stage: one deduplicated alert per device.

:class:`AlertBook` folds the findings of every signal into the alert of their device (key
``{tenant}/{device}/device``): the alert opens with the first observation and is re-sent when
a more serious rule joins or the severity rises (``streams.alerts.advance_alert``). A quiet
alert resolves once its partition's detection watermark is the quiet period past its
``last_seen``, with ``resolved_at = last_seen + quiet period``: the same record whatever
the batch boundaries. A silent device's ``DEVICE_OFFLINE`` is its own alert (key
``{tenant}/{device}/offline``): it does not resolve by quiet period but when the device
sends a reading newer than its last one (:meth:`AlertBook.back_online`). Pure: the stage
passes the watermark and the output to append to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from streams.alerts import (
    AlertPolicy,
    AlertState,
    Observation,
    advance_alert,
    alert_key,
    apply_feedback,
    resolve_alert,
    tick_alert,
)
from streams.signals.offline import OFFLINE_GROUP, OFFLINE_RULE

if TYPE_CHECKING:
    from streams.detection_output import DetectionOutput
    from streams.signals.base import AlertCandidate, DeviceKey

__all__ = ["DEVICE_GROUP", "AlertBook"]

DEVICE_GROUP = "device"
"""The alert group of every rule of a device: one incident, one alert."""


class AlertBook:
    """The alerts of the devices one worker holds, keyed by alert key."""

    def __init__(
        self,
        policy: AlertPolicy,
        interval_of: Callable[[DeviceKey], float | None] | None = None,
        quiet_intervals: int = 0,
    ) -> None:
        self.policy = policy
        self.interval_of = interval_of  # a device's usual sampling interval (ms), if known
        self.quiet_intervals = quiet_intervals
        self.alerts: dict[str, AlertState] = {}
        self.open_alerts: dict[str, DeviceKey] = {}  # alert keys not RESOLVED
        self.offline: dict[DeviceKey, str] = {}  # devices with an open DEVICE_OFFLINE alert

    def observe(
        self,
        out: DetectionOutput,
        device: DeviceKey,
        device_type: str,
        found: AlertCandidate,
        watermark: int | None,
    ) -> None:
        """Fold one finding of ``device`` into its alert (records appended to ``out``).

        ``watermark``: the device's partition's, to resolve a quiet alert before a new
        observation reopens it."""
        attributes = found.attributes
        obs = Observation(
            tenant_id=device[0],
            device_id=device[1],
            rule=found.rule,
            severity=found.severity,
            ts_ms=found.ts,
            device_type=device_type,
            capability=found.capability,
            summary=found.summary,
            group=DEVICE_GROUP,
            attributes=attributes or {},
        )
        key = alert_key(device[0], device[1], DEVICE_GROUP)
        state = self.alerts.get(key)
        if state is not None and watermark is not None:
            state = self.resolve_quiet(out, key, state, watermark)
        dups = state.duplicates if state is not None else 0
        new, record = advance_alert(state, obs, self.policy)
        if attributes and record is None and new.state != "RESOLVED":
            merged = {**new.attributes}
            for k, v in attributes.items():
                if k.startswith("score:") and float(merged.get(k, "0")) >= float(v):
                    continue
                merged[k] = v
            if merged != new.attributes:
                new = AlertState(**{**new.to_dict(), "attributes": merged})
        self.alerts[key] = new
        if new.state != "RESOLVED":
            self.open_alerts[key] = device
        if record is not None:
            out.alerts.append(record)
        elif new.duplicates > dups:
            out.suppressed[new.severity.lower()] += 1

    def offline_alert(
        self, out: DetectionOutput, device: DeviceKey, device_type: str, found: AlertCandidate
    ) -> None:
        """A silent device (``DEVICE_OFFLINE``): its offline alert opens, once per silence
        (``found.ts`` is its last reading's event time, so a repeat is ignored)."""
        key = alert_key(device[0], device[1], OFFLINE_GROUP)
        obs = Observation(
            device[0],
            device[1],
            found.rule,
            found.severity,
            found.ts,
            device_type,
            found.capability,
            found.summary,
            OFFLINE_GROUP,
            found.attributes or {},
        )
        new, record = advance_alert(self.alerts.get(key), obs, self.policy)
        self.alerts[key] = new
        if new.state != "RESOLVED":
            self.open_alerts[key] = device
            self.offline[device] = key
        if record is not None:
            out.alerts.append(record)

    def back_online(self, out: DetectionOutput, device: DeviceKey, ts: int) -> None:
        """``device``, which has an open offline alert, sent a reading at event time ``ts``:
        the alert resolves at ``ts`` unless the reading is not newer than the silence began
        (a replay after a restart)."""
        key = self.offline[device]
        state = self.alerts.get(key)
        if state is not None and ts <= state.first_seen and state.state != "RESOLVED":
            return
        del self.offline[device]
        self.open_alerts.pop(key, None)
        if state is None:
            return
        new, record = resolve_alert(state, ts)
        self.alerts[key] = new
        if record is not None:
            out.alerts.append(record)

    def resolve_quiet(
        self, out: DetectionOutput, key: str, state: AlertState, watermark: int
    ) -> AlertState:
        """Resolve alert ``key`` if it has been quiet up to ``watermark``; its new state."""
        if state.state == "RESOLVED" or state.rule == OFFLINE_RULE:
            return state  # an offline alert resolves when its device returns
        policy = self.quiet_policy((state.tenant_id, state.device_id))
        # resolved_at = last_seen + quiet period: independent of when the tick runs
        now = min(watermark, state.last_seen + policy.quiet_period_ms)
        new, record = tick_alert(state, now, policy)
        if record is not None:
            self.alerts[key] = new
            self.open_alerts.pop(key, None)
            out.alerts.append(record)
        return new

    def quiet_policy(self, device: DeviceKey) -> AlertPolicy:
        """The policy of ``device``'s alerts: the quiet period is at least
        ``quiet_intervals`` of the device's usual sampling intervals (an hourly series is not
        "quiet" after one missing hour of anomalies, a 1 Hz one is after a few seconds)."""
        if not self.quiet_intervals or self.interval_of is None:
            return self.policy
        interval = self.interval_of(device)
        if interval is None:
            return self.policy
        quiet = round(self.quiet_intervals * interval)
        if quiet <= self.policy.quiet_period_ms:
            return self.policy
        return replace(self.policy, quiet_period_ms=quiet)

    def find(self, alert_id: str) -> AlertState | None:
        """The alert ``alert_id`` if it is held here (and still that alert of its key)."""
        state = self.alerts.get(alert_id.rsplit("@", 1)[0])
        if state is None or state.alert_id != alert_id:
            return None
        return state

    def device_of(self, alert_id: str) -> DeviceKey | None:
        """The device of the alert ``alert_id``, if it is held here."""
        state = self.find(alert_id)
        return None if state is None else (state.tenant_id, state.device_id)

    def feedback(self, out: DetectionOutput, state: AlertState, kind: str, now_ms: int) -> bool:
        """Apply ``ack``/``false_positive`` to the held alert ``state``; whether it changed
        the alert (its record is then appended to ``out``)."""
        key = state.alert_key
        new, record = apply_feedback(state, cast(Any, kind), now_ms)
        self.alerts[key] = new
        if new.state == "RESOLVED":
            self.open_alerts.pop(key, None)
        if record is None:
            return False
        out.alerts.append(record)
        return True

    def restore(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Load the latest ``Alert`` record per key for keys not held in memory."""
        n = 0
        for rec in records:
            key = str(rec["alert_key"])
            if key in self.alerts:
                continue
            state = AlertState(
                alert_id=rec["alert_id"],
                alert_key=key,
                tenant_id=rec["tenant_id"],
                device_id=rec["device_id"],
                device_type=rec["device_type"],
                capability=rec["capability"],
                rule=rec["rule"],
                severity=rec["severity"],
                state=rec["state"],
                first_seen=rec["first_seen"],
                last_seen=rec["last_seen"],
                last_sent=rec["last_seen"],
                resolved_at=rec.get("resolved_at"),
                duplicates=rec.get("duplicates", 0),
                summary=rec.get("summary", ""),
                version=rec.get("version", 1),
                attributes=dict(rec.get("attributes") or {}),
            )
            self.alerts[key] = state
            if state.state != "RESOLVED":
                self.open_alerts[key] = (state.tenant_id, state.device_id)
                if state.rule == OFFLINE_RULE:
                    self.offline[(state.tenant_id, state.device_id)] = key
            n += 1
        return n

    def drop_device(self, device: DeviceKey) -> None:
        """Forget the (resolved) alerts of an expired device."""
        self.alerts.pop(alert_key(device[0], device[1], DEVICE_GROUP), None)
        self.alerts.pop(alert_key(device[0], device[1], OFFLINE_GROUP), None)

    def keep_devices(self, kept: set[DeviceKey]) -> None:
        """Drop the alerts of every device not in ``kept`` (partitions given away)."""
        self.alerts = {k: v for k, v in self.alerts.items() if (v.tenant_id, v.device_id) in kept}
        self.open_alerts = {k: v for k, v in self.open_alerts.items() if v in kept}
        self.offline = {d: k for d, k in self.offline.items() if d in kept}
