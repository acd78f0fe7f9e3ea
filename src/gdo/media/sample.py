"""THE frame sampling rule of gdo (GDO_METHOD.md section 2, issue 13 item 4).

* By index (frame lists, and videos whose frames are evenly spaced in time): a clip of ``n``
  frames is sampled to at most ``T`` frames with ``index_i = round(i*(n-1)/(T-1))``
  (Python ``round``, half to even); ``n <= T`` keeps every frame.
* By time (videos whose presentation timestamps are not evenly spaced, :func:`is_vfr`, i.e.
  variable frame rate, and GIFs with per-frame delays): ``T`` target times evenly spaced between the first and
  the last frame's timestamp; each takes the frame whose timestamp is nearest (the earlier on a
  tie). For an evenly spaced clip this is the index rule, which is then used exactly.

Every module that picks frames (media decoding, motion, the model, report thumbnails) calls
:func:`sample_indices` or :func:`sample_by_time`; there is no other rule.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def sample_indices(n: int, T: int = 32) -> list[int]:
    """GDO frame sampling by index (GDO_METHOD.md section 2).

    Args:
        n: number of frames (>= 0).
        T: frames wanted (>= 1).

    Returns:
        ``list(range(n))`` when ``n <= T``; else ``[round(i*(n-1)/(T-1)) for i in range(T)]``
        (Python round: half to even). For ``T == 1`` and ``n > 1``: ``[0]``.

    Raises:
        ValueError: if ``n < 0`` or ``T < 1``.
    """
    if n < 0 or T < 1:
        raise ValueError(f"sample_indices needs n >= 0 and T >= 1, got n={n}, T={T}")
    if n <= T:
        return list(range(n))
    if T == 1:
        return [0]
    return [round(i * (n - 1) / (T - 1)) for i in range(T)]


def is_vfr(times: Sequence[float]) -> bool:
    """True when frame timestamps (seconds, sorted) are so uneven that sampling by index would
    miss the uniform-time target by more than one frame: some frame's timestamp is farther than
    the median frame gap (+ 1 ms of timestamp rounding) from where an evenly spaced clip with the
    same first and last timestamps would put it. A single dropped frame is not enough; a GIF with
    one long delay, or a screen recording that pauses, is."""
    n = len(times)
    if n < 3:
        return False
    t = np.asarray(times, np.float64)
    med = float(np.median(np.diff(t)))
    lin = t[0] + np.arange(n) * (t[-1] - t[0]) / (n - 1)
    return bool(np.max(np.abs(t - lin)) > med + 1e-3)


def sample_by_time(times: Sequence[float], T: int = 32) -> list[int]:
    """Frame indices sampled uniformly in time (issue 13 item 4).

    Args:
        times: presentation timestamps of the frames in seconds, sorted (length n).
        T: frames wanted (>= 1).

    Returns:
        ``sample_indices(n, T)`` when the timestamps are evenly spaced (:func:`is_vfr` False) or
        ``n <= T``; else, for target times ``t_i = t_0 + i*(t_{n-1}-t_0)/(T-1)``, the index of the
        nearest timestamp (earlier on a tie). Indices are non-decreasing; a frame may be chosen
        twice when a long gap holds several targets (it exists, so it is never a stand-in).

    Raises:
        ValueError: if ``T < 1``.
    """
    n = len(times)
    if n <= T or not is_vfr(times):
        return sample_indices(n, T)
    t = np.asarray(times, np.float64)
    if T == 1:
        return [0]
    targets = t[0] + np.arange(T) * (t[-1] - t[0]) / (T - 1)
    right = np.clip(np.searchsorted(t, targets, side="left"), 1, n - 1)
    left = right - 1
    pick = np.where(targets - t[left] <= t[right] - targets, left, right)
    return [int(i) for i in pick]
