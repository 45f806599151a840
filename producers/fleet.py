"""A seeded fleet: every device model advanced together with numpy, scenarios applied on top.

Devices are spread round-robin over the chosen kinds (device ``i`` is ``{prefix}-{i:05d}``).
Physics noise and scenario draws come from separate generators derived from the seed, so
which devices fail (``failure_rate``) never changes the readings of the healthy ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

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
    """The readings of one tick: ``rows`` index the fleet's :class:`StaticRows`."""

    ts_ms: int
    static: StaticRows
    rows: np.ndarray
    value_array: np.ndarray
    label_codes: np.ndarray  # per row
    _lists: dict[str, list] = field(default_factory=dict, repr=False)

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


class Fleet:
    """``devices`` devices over ``kinds``; deterministic for a seed, start and step."""

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
    ) -> None:
        if devices < 1:
            msg = f"devices must be >= 1, got {devices}"
            raise ValueError(msg)
        unknown = [k for k in kinds if k not in KIND_MODELS]
        if unknown or not kinds:
            msg = f"unknown device kind(s) {unknown or kinds!r}; choose from {sorted(KIND_MODELS)}"
            raise ValueError(msg)
        if scenario is not None and scenario not in SCENARIOS:
            msg = f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}"
            raise ValueError(msg)
        if not 0.0 <= failure_rate <= 1.0:
            msg = f"failure rate must be in [0, 1], got {failure_rate}"
            raise ValueError(msg)
        if not 0.0 <= onset_delay_s < float("inf"):
            msg = f"onset delay must be a finite number of seconds >= 0, got {onset_delay_s}"
            raise ValueError(msg)
        self.seed = seed
        self.step_s = step_s
        names = list(SCENARIOS)
        model_of: list[type[DeviceModel]] = []
        per_kind = dict.fromkeys(kinds, 0)
        self.device_ids: list[str] = []
        for i in range(devices):
            kind = kinds[i % len(kinds)]
            models = KIND_MODELS[kind]
            model = models[per_kind[kind] % len(models)]
            per_kind[kind] += 1
            model_of.append(model)
            self.device_ids.append(f"{model.prefix}-{i:05d}")
        # Which devices fail, how and when: drawn for every device, in order, from its own stream.
        srng = np.random.default_rng([seed, 1])
        draws = srng.random((devices, 3))
        chosen: list[tuple[str, float] | None] = []
        for i, model in enumerate(model_of):
            fits = [n for n in names if SCENARIOS[n].applies_to(model)]
            if scenario is not None:
                fits = [scenario] if scenario in fits else []
            if fits and draws[i, 0] < failure_rate:
                name = fits[int(draws[i, 1] * len(fits))]
                onset = onset_delay_s + SCENARIOS[name].onset_s * (0.5 + draws[i, 2])
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
                    afflicted.append(_Afflicted(SCENARIOS[name], np.array(local), onsets, base))
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
        for grp in self._groups:
            model = grp.model
            n_ch = len(model.channels)
            values = model.step(t_s, dt_s)
            code = np.zeros(model.n, dtype=np.int64)
            keep = np.ones(model.n, dtype=bool)
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
                code[aff.members] = aff.code_base + phase_of(progress)
                if kept is not None:
                    keep[aff.members] = kept
            row_ids = grp.row_offset + np.arange(model.n * n_ch)
            row_code = np.repeat(code, n_ch)
            flat = values.ravel()
            if not keep.all():
                mask = np.repeat(keep, n_ch)
                row_ids, row_code, flat = row_ids[mask], row_code[mask], flat[mask]
            rows.append(row_ids)
            vals.append(flat)
            codes.append(row_code)
        return FleetTick(
            ts_ms, self.static, np.concatenate(rows), np.concatenate(vals), np.concatenate(codes)
        )
