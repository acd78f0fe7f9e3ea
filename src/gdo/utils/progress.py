"""Progress bars that count candidates (with rate and ETA), shared by every stage.

A stage opens one bar per step with :func:`candidate_bar` (total = candidates of the step) and
advances it as work finishes; code running inside that step (e.g. the model's batch loop) can call
:func:`advance` without knowing about the bar, and a caller that knows the exact count after a unit
of work calls :meth:`CandidateBar.reach` so inner advances never over- or under-count.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

_ACTIVE: list["CandidateBar"] = []


class CandidateBar:
    """A tqdm bar in candidates (``unit="cand"``); a no-op when disabled."""

    def __init__(self, desc: str, total: int | None, enabled: bool, initial: int = 0):
        self._bar = None
        self.n = initial
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="cand", initial=initial,
                             dynamic_ncols=True, smoothing=0.1)

    def advance(self, n: int) -> None:
        """Count ``n`` more candidates done."""
        if n <= 0:
            return
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def reach(self, done: int) -> None:
        """Set the count to ``done`` (exact, after a unit of work); never moves backwards."""
        if done > self.n:
            self.advance(done - self.n)

    def note(self, **fields) -> None:
        """Show ``fields`` after the count (e.g. files done, rows rejected)."""
        if self._bar is not None:
            self._bar.set_postfix(fields, refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextlib.contextmanager
def candidate_bar(desc: str, total: int | None, enabled: bool = True, initial: int = 0) -> Iterator[CandidateBar]:
    """Open a candidate-count bar and make it the target of :func:`advance` while the block runs.

    Args:
        desc: bar label (the stage: ``media``, ``text``, ``model``, ``export``...).
        total: candidates of the step (None: count and rate only, no ETA).
        enabled: False gives a silent bar (``--quiet`` / ``--no-progress``).
        initial: candidates already done (e.g. reused from finished shards).
    """
    bar = CandidateBar(desc, total, enabled, initial)
    _ACTIVE.append(bar)
    try:
        yield bar
    finally:
        _ACTIVE.remove(bar)
        bar.close()


def advance(n: int) -> None:
    """Advance the innermost open candidate bar of this process by ``n`` (no bar: nothing)."""
    if _ACTIVE:
        _ACTIVE[-1].advance(n)
