"""An offset commit the broker does not answer gives up in time (the worker reports the
outage and commits later) instead of waiting for the broker with the worker's lock held."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError
from faust.types import TP

from streams.commits import CommitUnavailableError
from streams.consumer import bounded_commit


class Consumer:
    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.committed: list[dict[Any, int]] = []

    async def commit(self, offsets: dict[Any, int]) -> None:
        if self.behaviour == "hang":  # aiokafka retrying until a coordinator answers
            await asyncio.sleep(3600)
        if self.behaviour == "refuse":
            raise KafkaConnectionError("broker away")
        self.committed.append(offsets)


def test_a_commit_the_broker_does_not_answer_gives_up_after_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(CommitUnavailableError, match=r"not answered within 0\.2 s"):
        asyncio.run(bounded_commit(Consumer("hang"), {TP("t", 0): 5}, 0.2))
    assert time.monotonic() - started < 5


def test_a_refused_commit_is_unavailable_and_an_answered_one_goes_through() -> None:
    with pytest.raises(CommitUnavailableError, match="broker away"):
        asyncio.run(bounded_commit(Consumer("refuse"), {TP("t", 0): 5}, 1.0))
    ok = Consumer("answer")
    asyncio.run(bounded_commit(ok, {TP("t", 0): 5, TP("t", 3): 9}, 1.0))
    assert ok.committed == [{TopicPartition("t", 0): 5, TopicPartition("t", 3): 9}]
