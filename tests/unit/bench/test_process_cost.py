"""``bench.process_cost``: the worker's processing in process, with detection and without."""

from __future__ import annotations

from bench.process_cost import process_cost
from core.settings import load_settings


def test_detection_costs_on_top_of_the_rest_of_the_processing() -> None:
    cost = process_cost(load_settings({}), readings=6_000, rounds=1)
    assert set(cost) == {"with_detection_us", "without_detection_us", "detection_us"}
    assert cost["with_detection_us"] > cost["without_detection_us"] > 0
    difference = cost["with_detection_us"] - cost["without_detection_us"]
    assert abs(cost["detection_us"] - difference) <= 0.011  # each figure rounded to 0.01
