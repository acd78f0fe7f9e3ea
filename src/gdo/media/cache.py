"""THE frame cache: decoded frame arrays keyed by (file, kind, sampling), bounded in bytes."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Hashable

import numpy as np


def frame_key(media_kind: str, media_key: str, sampling: Hashable) -> tuple:
    """The cache key of decoded frames: (media kind, file or video_key, sampling), e.g.
    ``("video", "/data/a.mp4", 32)``. One file may be cached under two kinds (a GIF used as an
    image and as a video) without the entries mixing."""
    return (media_kind, media_key, sampling)


class FrameCache:
    """Bounded LRU cache of decoded frame arrays, limited by total bytes (thread-safe).

    Keys are any hashable, normally :func:`frame_key`. An array bigger than the limit is not
    stored. With ``readonly=True`` (default) stored arrays are made read-only
    (``flags.writeable = False``) so a caller cannot corrupt a shared entry.
    """

    def __init__(self, max_bytes: int = 1 << 30, readonly: bool = True) -> None:
        self.max_bytes = int(max_bytes)
        self.readonly = readonly
        self._d: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> np.ndarray | None:
        """Return the cached array for ``key`` (marking it recently used), or None."""
        with self._lock:
            arr = self._d.get(key)
            if arr is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return arr

    def put(self, key: Hashable, arr: np.ndarray) -> None:
        """Store ``arr`` under ``key``, evicting least recently used entries beyond ``max_bytes``."""
        if arr.nbytes > self.max_bytes:
            return
        if self.readonly:
            arr.flags.writeable = False
        with self._lock:
            old = self._d.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._d[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes and self._d:
                _, ev = self._d.popitem(last=False)
                self._bytes -= ev.nbytes

    def __len__(self) -> int:
        return len(self._d)

    @property
    def nbytes(self) -> int:
        """Bytes currently held."""
        return self._bytes

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._d.clear()
            self._bytes = 0
