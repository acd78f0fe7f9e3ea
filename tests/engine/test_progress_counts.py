"""Progress bars count candidates: run_tasks with per-task weights, inner advances never overcount."""

from __future__ import annotations

from gdo.engine.local import run_tasks
from gdo.utils import progress as P


def _task(k):
    bar = P._ACTIVE[-1]
    before = bar.n
    P.advance(k - 1)  # an inner loop reports most of its work ...
    assert bar.n == before + k - 1
    return k


def test_weights_count_candidates_and_initial():
    seen = []
    for i, r in run_tasks(_task, [3, 4, 5], workers=1, progress=True, desc="t", weights=[3, 4, 5], initial=2):
        seen.append(P._ACTIVE[-1].n)  # ... and the task's end brings the count to the exact total
    assert seen == [2 + 3, 2 + 3 + 4, 2 + 3 + 4 + 5]
    assert P._ACTIVE == []


def test_advance_without_bar_is_a_no_op():
    P.advance(5)
    with P.candidate_bar("x", 10, enabled=False) as b:
        P.advance(3)
        b.reach(2)  # never backwards
        assert b.n == 3
        b.reach(10)
        assert b.n == 10
