"""Device models, one per file; ``KIND_MODELS`` maps a ``--kinds`` name to its models.

``KINDS`` is the one list of device kinds (``--kinds``, the fleet, the benchmarks):

>>> KINDS
('grid', 'battery', 'vehicle', 'machine')
"""

from producers.models.base import Channel, DeviceModel
from producers.models.battery import BatteryPack
from producers.models.grid import EdgeHub, GridGuardian
from producers.models.machine import PumpMotor
from producers.models.vehicle import Vehicle

__all__ = [
    "KINDS",
    "KIND_MODELS",
    "BatteryPack",
    "Channel",
    "DeviceModel",
    "EdgeHub",
    "GridGuardian",
    "PumpMotor",
    "Vehicle",
]

# Within a kind, device i of the kind gets models[i % len(models)]; the grid has one
# Edge Hub per seven Grid Guardians.
KIND_MODELS: dict[str, tuple[type[DeviceModel], ...]] = {
    "grid": (GridGuardian,) * 7 + (EdgeHub,),
    "battery": (BatteryPack,),
    "vehicle": (Vehicle,),
    "machine": (PumpMotor,),
}

KINDS: tuple[str, ...] = tuple(KIND_MODELS)
