"""``free_port`` never hands the same port out twice, even when the random draws repeat."""

from __future__ import annotations

import random

import pytest

from infra import processes


def test_equal_draws_give_distinct_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every draw is the same number: before, four settings ports could all be 25000.
    monkeypatch.setattr(random.SystemRandom, "randint", lambda _self, _a, _b: 25000)
    monkeypatch.setattr(processes, "_HANDED_OUT", set())
    ports = [processes.free_port() for _ in range(4)]
    assert len(set(ports)) == 4
    assert ports[0] == 25000
