"""Alert deduplication and lifecycle: one incident, one alert.

Pure state machine, no Kafka and no clock (times are event-time epoch milliseconds). One
:class:`AlertState` per alert key ``tenant/device/rule``:

* an observation (the rule fires at ``ts``) opens an alert: FIRING, record sent;
* further observations are counted in ``duplicates`` and not re-sent, unless the severity
  escalates or ``repeat_interval_ms`` has passed since the last record was sent (an
  ACKNOWLEDGED alert is not repeated, only escalated, which makes it FIRING again);
* no observation for ``quiet_period_ms`` → RESOLVED (``tick_alert``);
* **reopen rule**: an observation at most ``reopen_window_ms`` after ``resolved_at`` reopens
  the same alert (same ``alert_id`` and ``first_seen``, FIRING again, ``resolved_at`` cleared,
  ``attributes["reopened"]`` counts the reopenings, next ``version``): one incident whose
  evidence paused (a slow fault between its precursor and its failure) stays one alert. A
  later observation opens a new alert (new ``alert_id``), and so does any observation after
  an operator marked the alert a false positive (the operator closed that incident);
* operator feedback: ``ack`` → ACKNOWLEDGED; ``false_positive`` → RESOLVED with
  ``attributes["feedback"] = "false_positive"``, and the caller raises the threshold of that
  device-capability with :func:`adapt_threshold`.

Every transition that must reach operators returns an ``Alert`` record (``schemas/Alert.avsc``)
whose ``version`` increments per ``alert_id`` (the ``alerts`` table keeps the highest).
Observations at or before ``last_seen`` are ignored, so replaying input after a restart from
the checkpointed state (``to_dict``/``from_dict``) neither double-counts nor re-sends.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

__all__ = [
    "AlertPolicy",
    "AlertState",
    "Observation",
    "adapt_threshold",
    "advance_alert",
    "alert_key",
    "apply_feedback",
    "resolve_alert",
    "rule_rank",
    "tick_alert",
]

Severity = Literal["INFO", "WARNING", "CRITICAL"]
State = Literal["FIRING", "RESOLVED", "ACKNOWLEDGED"]
_RANK = {"INFO": 0, "WARNING": 1, "CRITICAL": 2}


def rule_rank(rule: str) -> int:
    """How much a rule says about an incident, for escalation at equal severity.

    A learned-model anomaly (0) < a predicted failure (1) < a breached safety limit (2):
    an alert opened by an anomaly is re-sent when the same incident is predicted to fail or
    breaches a limit, even at the same severity.

    >>> rule_rank("anomaly:VIBRATION"), rule_rank("PREDICTED_FAILURE"), rule_rank("limit:X>1")
    (0, 1, 2)
    """
    if rule.startswith("limit:"):
        return 2
    if rule.startswith("PREDICTED_FAILURE"):
        return 1
    return 0


def alert_key(tenant_id: str, device_id: str, rule: str) -> str:
    """The deduplication key (and Kafka key of ``telemetry.alerts``).

    >>> alert_key("acme", "bat-7", "limit:CELL_TEMPERATURE>60")
    'acme/bat-7/limit:CELL_TEMPERATURE>60'
    """
    return f"{tenant_id}/{device_id}/{rule}"


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """How long a quiet alert waits before resolving, how often a firing one repeats, and
    how long after resolving a new observation reopens it (0: never)."""

    quiet_period_ms: int = 15 * 60_000
    repeat_interval_ms: int = 4 * 3_600_000
    reopen_window_ms: int = 0

    def __post_init__(self) -> None:
        for name in ("quiet_period_ms", "repeat_interval_ms"):
            value = getattr(self, name)
            if value <= 0:
                msg = f"AlertPolicy.{name} must be a positive number of ms, got {value!r}"
                raise ValueError(msg)
        if self.reopen_window_ms < 0:
            msg = (
                "AlertPolicy.reopen_window_ms must be 0 (never reopen) or a positive number "
                f"of ms, got {self.reopen_window_ms!r}"
            )
            raise ValueError(msg)


@dataclass(frozen=True, slots=True)
class Observation:
    """The rule fired for this key at event time ``ts_ms``.

    ``group``, when set, replaces ``rule`` in the alert key: every rule observed with the same
    group joins one alert (the detection stage groups all rules of a device: one incident, one
    alert). ``attributes`` are added to the alert when it opens or escalates.
    """

    tenant_id: str
    device_id: str
    rule: str
    severity: Severity
    ts_ms: int
    device_type: str = "UNKNOWN"
    capability: str = "UNKNOWN"
    summary: str = ""
    group: str = ""
    attributes: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, slots=True)
class AlertState:
    """The checkpointed state of one alert key (small, JSON-serialisable)."""

    alert_id: str
    alert_key: str
    tenant_id: str
    device_id: str
    device_type: str
    capability: str
    rule: str
    severity: Severity
    state: State
    first_seen: int
    last_seen: int
    last_sent: int
    resolved_at: int | None = None
    duplicates: int = 0
    summary: str = ""
    version: int = 1
    attributes: dict[str, str] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The ``Alert`` record of this state (``schemas/Alert.avsc`` field names)."""
        return {
            "alert_id": self.alert_id,
            "alert_key": self.alert_key,
            "tenant_id": self.tenant_id,
            "device_id": self.device_id,
            "device_type": self.device_type,
            "capability": self.capability,
            "rule": self.rule,
            "severity": self.severity,
            "state": self.state,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "resolved_at": self.resolved_at,
            "duplicates": self.duplicates,
            "summary": self.summary,
            "version": self.version,
            "attributes": dict(self.attributes),
        }

    def to_dict(self) -> dict[str, Any]:
        """Serialised form for a changelogged table."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertState:
        """Rebuild from :meth:`to_dict` output (e.g. after a restart)."""
        return cls(**{**data, "attributes": dict(data.get("attributes") or {})})


Step = tuple["AlertState", "dict[str, Any] | None"]


def _emit(current: AlertState, /, **changes: Any) -> tuple[AlertState, dict[str, Any]]:
    new = replace(current, version=current.version + 1, **changes)
    return new, new.to_record()


def _escalates(state: AlertState, obs: Observation) -> bool:
    return (_RANK[obs.severity], rule_rank(obs.rule)) > (
        _RANK[state.severity],
        rule_rank(state.rule),
    )


def advance_alert(state: AlertState | None, obs: Observation, policy: AlertPolicy) -> Step:
    """Apply one observation: ``(new_state, record_to_send_or_None)``.

    >>> p = AlertPolicy(quiet_period_ms=60_000, repeat_interval_ms=600_000)
    >>> o = Observation("t", "d", "r", "WARNING", 1_000)
    >>> s, rec = advance_alert(None, o, p)
    >>> rec["state"], rec["version"]
    ('FIRING', 1)
    >>> s, rec = advance_alert(s, replace(o, ts_ms=2_000), p)
    >>> rec is None, s.duplicates
    (True, 1)
    """
    # already applied (replay after restart) or out of order; at the same event time
    # another rule of the group may still escalate (a limit breached by the reading that
    # also scored as an anomaly)
    if state is not None and (
        obs.ts_ms < state.last_seen
        or (
            obs.ts_ms == state.last_seen
            and (state.state == "RESOLVED" or not _escalates(state, obs))
        )
    ):
        return state, None
    if state is not None and _reopens(state, obs, policy):
        rules = state.attributes.get("rules", state.rule).split(",")
        if obs.rule not in rules:
            rules.append(obs.rule)
        reopened = int(state.attributes.get("reopened", "0")) + 1
        escalated = _escalates(state, obs)
        return _emit(
            state,
            state="FIRING",
            resolved_at=None,
            last_seen=obs.ts_ms,
            last_sent=obs.ts_ms,
            duplicates=state.duplicates + 1,
            severity=obs.severity if escalated else state.severity,
            rule=obs.rule if escalated else state.rule,
            capability=obs.capability if escalated else state.capability,
            summary=obs.summary if escalated else state.summary,
            attributes={
                **state.attributes,
                **obs.attributes,
                "rules": ",".join(rules),
                "reopened": str(reopened),
            },
        )
    if state is None or state.state == "RESOLVED":
        key = alert_key(obs.tenant_id, obs.device_id, obs.group or obs.rule)
        new = AlertState(
            alert_id=f"{key}@{obs.ts_ms}",
            alert_key=key,
            tenant_id=obs.tenant_id,
            device_id=obs.device_id,
            device_type=obs.device_type,
            capability=obs.capability,
            rule=obs.rule,
            severity=obs.severity,
            state="FIRING",
            first_seen=obs.ts_ms,
            last_seen=obs.ts_ms,
            last_sent=obs.ts_ms,
            summary=obs.summary,
            attributes={**obs.attributes, "rules": obs.rule},
        )
        return new, new.to_record()
    escalated = _escalates(state, obs)
    seen = replace(state, last_seen=obs.ts_ms, duplicates=state.duplicates + 1)
    if escalated:
        rules = state.attributes.get("rules", state.rule).split(",")
        if obs.rule not in rules:
            rules.append(obs.rule)
        return _emit(
            seen,
            severity=obs.severity,
            rule=obs.rule,
            capability=obs.capability,
            state="FIRING",
            last_sent=obs.ts_ms,
            summary=obs.summary,
            attributes={**state.attributes, **obs.attributes, "rules": ",".join(rules)},
        )
    if state.state == "FIRING" and obs.ts_ms - state.last_sent >= policy.repeat_interval_ms:
        return _emit(seen, last_sent=obs.ts_ms)
    return seen, None


def _reopens(state: AlertState, obs: Observation, policy: AlertPolicy) -> bool:
    """Whether ``obs`` reopens the RESOLVED ``state`` (the reopen rule, module docstring)."""
    return (
        state.state == "RESOLVED"
        and policy.reopen_window_ms > 0
        and state.resolved_at is not None
        and obs.ts_ms - state.resolved_at <= policy.reopen_window_ms
        and state.attributes.get("feedback") != "false_positive"
    )


def tick_alert(state: AlertState, now_ms: int, policy: AlertPolicy) -> Step:
    """Resolve an alert quiet for ``quiet_period_ms`` (event time ``now_ms``, e.g. watermark)."""
    if state.state == "RESOLVED" or now_ms - state.last_seen < policy.quiet_period_ms:
        return state, None
    return _emit(state, state="RESOLVED", resolved_at=now_ms)


def resolve_alert(state: AlertState, at_ms: int) -> Step:
    """Resolve an alert whose condition ended at event time ``at_ms`` (a silent device that
    sent again), whatever its quiet period; a RESOLVED alert stays as it is.

    >>> p = AlertPolicy()
    >>> s, _ = advance_alert(None, Observation("t", "d", "DEVICE_OFFLINE", "WARNING", 1_000), p)
    >>> s, rec = resolve_alert(s, 61_000)
    >>> rec["state"], rec["resolved_at"], rec["version"]
    ('RESOLVED', 61000, 2)
    >>> resolve_alert(s, 99_000)[1] is None
    True
    """
    if state.state == "RESOLVED":
        return state, None
    return _emit(state, state="RESOLVED", resolved_at=at_ms)


def apply_feedback(state: AlertState, kind: Literal["ack", "false_positive"], now_ms: int) -> Step:
    """Operator feedback from ``telemetry.alerts.feedback`` for this alert."""
    if kind == "ack":
        if state.state != "FIRING":
            return state, None
        return _emit(state, state="ACKNOWLEDGED")
    if kind == "false_positive":
        if state.attributes.get("feedback") == "false_positive":
            return state, None
        attrs = {**state.attributes, "feedback": "false_positive"}
        resolved = state.resolved_at if state.state == "RESOLVED" else now_ms
        return _emit(state, state="RESOLVED", resolved_at=resolved, attributes=attrs)
    msg = f'feedback kind must be "ack" or "false_positive", got {kind!r}'
    raise ValueError(msg)


def adapt_threshold(
    threshold: float,
    score: float,
    *,
    margin: float = 0.1,
    step: float = 0.1,
    ceiling: float = math.inf,
) -> float:
    """The new threshold of a device-capability after a false positive scored ``score``.

    Raised above the false positive's score by ``margin`` (relative) and by at least ``step``
    (relative) over the current threshold, capped at ``ceiling``; never lowered.

    >>> adapt_threshold(6.0, 7.0)
    7.7
    >>> adapt_threshold(6.0, 5.0)
    6.6
    """
    if not math.isfinite(threshold) or threshold <= 0:
        msg = f"threshold must be a positive finite number, got {threshold!r}"
        raise ValueError(msg)
    if not math.isfinite(score):
        return threshold
    raised = max(threshold * (1.0 + step), score * (1.0 + margin))
    return round(max(threshold, min(raised, ceiling)), 12)
