"""A seeded fleet: every device model advanced together with numpy, scenarios applied on top.

Devices are spread round-robin over the chosen kinds (device ``i`` is ``{prefix}-{i:05d}``).
Physics noise and scenario draws come from separate generators derived from the seed, so
which devices fail (``failure_rate``) never changes the readings of the healthy ones.
A tick carries per-row event times only when a clock or delivery fault makes them differ.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from producers.backlog import Backlog, HeldRows
from producers.models import KIND_MODELS, KINDS, DeviceModel
from producers.scenarios import PHASES, SCENARIOS, Scenario, phase_of

__all__ = ["KINDS", "MODELS", "Fleet", "FleetTick", "StaticRows"]

MODELS = KIND_MODELS  # the kinds accepted by ``Fleet`` (kept for callers of the first fleet)


@dataclass(frozen=True)
class StaticRows:
    """What never changes between ticks, one entry per (device, sensor) row of the fleet."""

    device_ids: list[str]
    device_types: list[str]
    capabilities: list[str]
    units: list[str]
    sensors: list[str]
    device_index: np.ndarray  # row -> index into Fleet.device_ids
    labels: list[dict[str, str] | None]  # label code -> label


@dataclass
class FleetTick:
    """The readings of one tick: ``rows`` index the fleet's :class:`StaticRows`.

    ``row_ts_ms`` (per row event time) is None when every row is stamped ``ts_ms``;
    ``late_ticks`` (per row, how many ticks ago the reading was taken: held back by its
    gateway) is None when every reading is from this tick.
    """

    ts_ms: int
    static: StaticRows
    rows: np.ndarray
    value_array: np.ndarray
    label_codes: np.ndarray  # per row
    row_ts_ms: np.ndarray | None = None
    late_ticks: np.ndarray | None = None
    _lists: dict[str, list] = field(default_factory=dict, repr=False)

    @property
    def timestamps(self) -> list[int]:
        """Event time (ms) of each row."""
        if self.row_ts_ms is None:
            return [self.ts_ms] * len(self.rows)
        return list(self.row_ts_ms.tolist())

    def sequences(self, seq: int) -> list[int]:
        """Sequence number of each row, when this tick is sent as ``seq`` (one per tick)."""
        if self.late_ticks is None:
            return [seq] * len(self.rows)
        return list((seq - self.late_ticks).tolist())

    def _pick(self, name: str) -> list:
        if name not in self._lists:
            src = getattr(self.static, name)
            self._lists[name] = [src[i] for i in self.rows.tolist()]
        return self._lists[name]

    @property
    def device_ids(self) -> list[str]:
        return self._pick("device_ids")

    @property
    def device_types(self) -> list[str]:
        return self._pick("device_types")

    @property
    def capabilities(self) -> list[str]:
        return self._pick("capabilities")

    @property
    def units(self) -> list[str]:
        return self._pick("units")

    @property
    def sensors(self) -> list[str]:
        return self._pick("sensors")

    @property
    def values(self) -> list[float]:
        return list(self.value_array.tolist())

    @property
    def labels(self) -> list[dict[str, str] | None]:
        return [self.static.labels[c] for c in self.label_codes.tolist()]


@dataclass
class _Afflicted:
    scenario: Scenario
    members: np.ndarray  # indices within the group
    onset_s: np.ndarray  # after the first tick, per member
    code_base: int
    state: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class _Group:
    model: DeviceModel
    fleet_index: np.ndarray  # group member -> fleet device index
    row_offset: int
    afflicted: list[_Afflicted]
    backlog: Backlog | None = None  # readings held back by a delivery fault


class Fleet:
    """``devices`` devices over ``kinds``; deterministic for a seed, start and step.

    ``scenarios`` is the table failures are drawn from (default :data:`SCENARIOS`); pass a
    changed copy to configure one, e.g. a longer gateway outage. ``id_prefix`` goes before
    every device id (a tenant's fleet: device ids are unique across tenants).
    """

    def __init__(
        self,
        devices: int,
        kinds: Sequence[str],
        seed: int = 0,
        *,
        failure_rate: float = 0.0,
        scenario: str | None = None,
        step_s: float = 1.0,
        onset_delay_s: float = 0.0,
        scenarios: Mapping[str, Scenario] = SCENARIOS,
        id_prefix: str = "",
    ) -> None:
        if devices < 1:
            msg = f"devices must be >= 1, got {devices}"
            raise ValueError(msg)
        unknown = [k for k in kinds if k not in KIND_MODELS]
        if unknown or not kinds:
            msg = f"unknown device kind(s) {unknown or kinds!r}; choose from {sorted(KIND_MODELS)}"
            raise ValueError(msg)
        if scenario is not None and scenario not in scenarios:
            msg = f"unknown scenario {scenario!r}; choose from {', '.join(scenarios)}"
            raise ValueError(msg)
        if not 0.0 <= failure_rate <= 1.0:
            msg = f"failure rate must be in [0, 1], got {failure_rate}"
            raise ValueError(msg)
        if not 0.0 <= onset_delay_s < float("inf"):
            msg = f"onset delay must be a finite number of seconds >= 0, got {onset_delay_s}"
            raise ValueError(msg)
        self.seed = seed
        self.step_s = step_s
        names = list(scenarios)
        model_of: list[type[DeviceModel]] = []
        per_kind = dict.fromkeys(kinds, 0)
        self.device_ids: list[str] = []
        for i in range(devices):
            kind = kinds[i % len(kinds)]
            models = KIND_MODELS[kind]
            model = models[per_kind[kind] % len(models)]
            per_kind[kind] += 1
            model_of.append(model)
            self.device_ids.append(f"{id_prefix}{model.prefix}-{i:05d}")
        # Which devices fail, how and when: drawn for every device, in order, from its own stream.
        srng = np.random.default_rng([seed, 1])
        draws = srng.random((devices, 3))
        chosen: list[tuple[str, float] | None] = []
        for i, model in enumerate(model_of):
            fits = [n for n in names if scenarios[n].applies_to(model)]
            if scenario is not None:
                fits = [scenario] if scenario in fits else []
            else:
                fits = [n for n in fits if scenarios[n].in_random_mix]
            if fits and draws[i, 0] < failure_rate:
                name = fits[int(draws[i, 1] * len(fits))]
                onset = onset_delay_s + scenarios[name].onset_s * (0.5 + draws[i, 2])
                chosen.append((name, onset))
            else:
                chosen.append(None)
        self.assignments = {self.device_ids[i]: c[0] for i, c in enumerate(chosen) if c}
        labels: list[dict[str, str] | None] = [None]
        for name in names:
            labels += [{"scenario": name, "phase": p} for p in PHASES]
        # Groups: one per model class, in order of first appearance.
        order = list(dict.fromkeys(model_of))
        static: dict[str, list] = {
            k: [] for k in ("device_ids", "device_types", "capabilities", "units", "sensors")
        }
        dev_index: list[np.ndarray] = []
        self._groups: list[_Group] = []
        row = 0
        for g, model_cls in enumerate(order):
            members = np.array([i for i, m in enumerate(model_of) if m is model_cls])
            inst = model_cls(len(members), np.random.default_rng([seed, 0, g]))
            afflicted = []
            for name in names:
                local = [j for j, i in enumerate(members) if chosen[i] and chosen[i][0] == name]
                if local:
                    onsets = np.array([chosen[members[j]][1] for j in local])
                    base = 1 + names.index(name) * len(PHASES)
                    afflicted.append(_Afflicted(scenarios[name], np.array(local), onsets, base))
            self._groups.append(_Group(inst, members, row, afflicted))
            n_ch = len(model_cls.channels)
            for i in members.tolist():
                dev = self.device_ids[i]
                for ch in model_cls.channels:
                    static["device_ids"].append(dev)
                    static["device_types"].append(model_cls.device_type)
                    static["capabilities"].append(ch.capability)
                    static["units"].append(ch.unit)
                    static["sensors"].append(f"{dev}/{ch.sensor}")
            dev_index.append(np.repeat(members, n_ch))
            row += len(members) * n_ch
        self.static = StaticRows(**static, device_index=np.concatenate(dev_index), labels=labels)
        self._scen_rng = np.random.default_rng([seed, 2])
        self._t0_s: float | None = None
        self._last_s: float | None = None
        self._ticks = 0  # ticks produced so far: how late a held-back reading is

    def model_of(self, device_id: str) -> type[DeviceModel]:
        """The device model class of ``device_id``."""
        i = self.device_ids.index(device_id)
        for grp in self._groups:
            if i in grp.fleet_index:
                return type(grp.model)
        msg = f"unknown device {device_id!r}"
        raise KeyError(msg)

    def channels_of(self, device_id: str) -> list[str]:
        """The distinct capabilities a device reports (windows are per device and capability)."""
        if device_id not in self.device_ids:
            msg = f"unknown device {device_id!r}"
            raise KeyError(msg)
        caps = [
            c
            for d, c in zip(self.static.device_ids, self.static.capabilities, strict=True)
            if d == device_id
        ]
        return list(dict.fromkeys(caps))

    @property
    def readings_per_tick(self) -> int:
        return len(self.static.device_ids)

    def tick(self, ts_ms: int) -> FleetTick:
        """Advance every device to event time ``ts_ms`` and return the readings."""
        t_s = ts_ms / 1000.0
        if self._t0_s is None:
            self._t0_s = t_s
        dt_s = (
            t_s - self._last_s if self._last_s is not None and t_s > self._last_s else self.step_s
        )
        self._last_s = t_s
        rows: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        codes: list[np.ndarray] = []
        stamps: list[np.ndarray | None] = []  # per part: row event times (None: ts_ms)
        lates: list[np.ndarray | None] = []  # per part: ticks held back (None: 0)
        for grp in self._groups:
            model = grp.model
            n_ch = len(model.channels)
            values = model.step(t_s, dt_s)
            code = np.zeros(model.n, dtype=np.int64)
            keep = np.ones(model.n, dtype=bool)
            shift: np.ndarray | None = None
            withheld: np.ndarray | None = None
            for aff in grp.afflicted:
                sc = aff.scenario
                since = t_s - self._t0_s - aff.onset_s
                if sc.precursor_s > 0:
                    progress = since / sc.precursor_s
                else:
                    progress = np.where(since < 0, -1.0, 1.0)
                sub = values[aff.members]
                kept = sc.apply(type(model), sub, progress, dt_s, self._scen_rng, aff.state)
                values[aff.members] = sub
                phase = phase_of(progress)
                if sc.duration_s is not None:  # the incident ends: NORMAL again after it
                    phase = np.where(since >= sc.precursor_s + sc.duration_s, 0, phase)
                code[aff.members] = aff.code_base + phase
                if kept is not None:
                    keep[aff.members] = kept
                delivery = sc.deliver(since, self._scen_rng, aff.state)
                if delivery is not None and delivery.shift_ms is not None:
                    shift = np.zeros(model.n, dtype=np.int64) if shift is None else shift
                    shift[aff.members] = delivery.shift_ms
                if delivery is not None and delivery.withheld is not None:
                    withheld = np.zeros(model.n, dtype=bool) if withheld is None else withheld
                    withheld[aff.members] = delivery.withheld
            row_ids = grp.row_offset + np.arange(model.n * n_ch)
            row_code = np.repeat(code, n_ch)
            flat = values.ravel()
            row_ts = None if shift is None or not shift.any() else ts_ms + np.repeat(shift, n_ch)
            if withheld is not None or grp.backlog is not None:
                held = keep & withheld if withheld is not None else np.zeros(model.n, dtype=bool)
                released = self._hold_back(grp, held, row_ids, row_ts, row_code, flat, ts_ms)
                if released is not None:  # delivered late, together, before this tick's rows
                    rows.append(released.rows)
                    vals.append(released.values)
                    codes.append(released.label_codes)
                    stamps.append(released.ts_ms)
                    lates.append(self._ticks - released.ticks)
                keep = keep & ~held
            if not keep.all():
                mask = np.repeat(keep, n_ch)
                row_ids, row_code, flat = row_ids[mask], row_code[mask], flat[mask]
                row_ts = None if row_ts is None else row_ts[mask]
            rows.append(row_ids)
            vals.append(flat)
            codes.append(row_code)
            stamps.append(row_ts)
            lates.append(None)
        self._ticks += 1
        tick = FleetTick(
            ts_ms, self.static, np.concatenate(rows), np.concatenate(vals), np.concatenate(codes)
        )
        if any(s is not None for s in stamps):
            tick.row_ts_ms = np.concatenate(
                [
                    np.full(len(r), ts_ms, dtype=np.int64) if s is None else s
                    for r, s in zip(rows, stamps, strict=True)
                ]
            )
        if any(lt is not None for lt in lates):
            tick.late_ticks = np.concatenate(
                [
                    np.zeros(len(r), dtype=np.int64) if lt is None else lt
                    for r, lt in zip(rows, lates, strict=True)
                ]
            )
        return tick

    def _hold_back(
        self,
        grp: _Group,
        held: np.ndarray,
        row_ids: np.ndarray,
        row_ts: np.ndarray | None,
        row_code: np.ndarray,
        flat: np.ndarray,
        ts_ms: int,
    ) -> HeldRows | None:
        """Buffer the rows of ``held`` devices; release the buffers of devices no longer held."""
        n_ch = len(grp.model.channels)
        if grp.backlog is None:
            grp.backlog = Backlog(grp.row_offset, n_ch, grp.model.n)
        released = grp.backlog.release(~held)
        if held.any():
            mask = np.repeat(held, n_ch)
            stamp = (
                np.full(int(mask.sum()), ts_ms, dtype=np.int64) if row_ts is None else row_ts[mask]
            )
            grp.backlog.hold(row_ids[mask], stamp, flat[mask], row_code[mask], self._ticks)
        return released
