"""``bench nab-cv``: a held-out file never helps choose its own configuration."""

from __future__ import annotations

from bench.nab_cv import Scored, choose, leave_one_out, pooled
from bench.nab_scoring import FileScore


def _scored(group: str, raw: float, *, short: bool = False) -> Scored:
    s = FileScore(
        raw=raw, null=-1.0, perfect=1.0, tp_windows=0, fn_windows=1, fp=0, scored_windows=1
    )
    return Scored(group, short, {"standard": s, "low_fp": s, "low_fn": s})


def test_the_held_out_file_is_scored_with_the_choice_of_the_others() -> None:
    # candidate 0 is good on a and b, candidate 1 on c; pooled over all, 1 is best
    results = [
        [_scored("a", 0.5), _scored("b", 0.5), _scored("c", -1.0)],
        [_scored("a", 0.0), _scored("b", 0.0), _scored("c", 1.0)],
    ]
    assert choose(results, {"a", "b", "c"}) == 1
    held, chosen = leave_one_out(results)
    # c held out: a and b choose candidate 0, under which c scores -1.0 (not its best 1.0)
    assert chosen == {"a": 1, "b": 1, "c": 0}
    assert [s.scores["standard"].raw for s in held] == [0.0, 0.0, -1.0]
    assert pooled(held) < pooled(results[1])


def test_a_group_brings_its_short_segments_along() -> None:
    results = [
        [_scored("a", 1.0), _scored("a", 1.0, short=True), _scored("b", -1.0)],
        [_scored("a", -1.0), _scored("a", -1.0, short=True), _scored("b", 1.0)],
    ]
    held, chosen = leave_one_out(results)
    # holding out a, b alone chooses candidate 1: a's file and its segment both score -1.0
    assert chosen["a"] == 1 and chosen["b"] == 0
    assert sorted(s.scores["standard"].raw for s in held if s.group == "a") == [-1.0, -1.0]
    assert pooled(held) < pooled(results[0])
