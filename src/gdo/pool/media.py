"""Media: path resolution and confinement, video probing, GDO frame sampling, frame loading, cache.

Frame sampling follows GDO_METHOD.md section 2: a video of ``n`` frames is sampled to at most
``T`` frames with ``index_i = round(i*(n-1)/(T-1))``, ``i = 0..T-1`` (Python ``round``, half to
even); ``n <= T`` keeps every frame.

Videos are decoded with PyAV, once per call, keeping only the sampled frames. Frame lists (and
frame folders, expanded to their sorted image files) read only the sampled files.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

#: File extensions treated as video files (decoded with PyAV).
VIDEO_EXTS = frozenset(
    {".mp4", ".avi", ".webm", ".mkv", ".gif", ".mov", ".m4v", ".flv", ".wmv", ".mpg", ".mpeg",
     ".3gp", ".ts", ".ogv"}
)
#: File extensions treated as images (a frame of a frame list, or an image).
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


class MediaError(Exception):
    """A media file cannot be used. ``reason`` is a short reject code (see docs/DESIGN.md).

    Reasons raised here: ``missing_media``, ``unreadable_media``, ``corrupt_video``,
    ``media_outside_root``.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class VideoInfo:
    """Header facts of a video file. ``duration_s`` in seconds; ``fps`` frames per second."""

    native_frames: int
    fps: float | None
    duration_s: float | None
    width: int
    height: int


def ext_of(path: str) -> str:
    """Lower-case extension of ``path`` including the dot ('' when none)."""
    return os.path.splitext(path)[1].lower()


def sample_indices(n: int, T: int = 32) -> list[int]:
    """GDO frame sampling (GDO_METHOD.md section 2).

    Args:
        n: number of frames of the video (>= 0).
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


# --------------------------------------------------------------------------- paths
def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolve_media(path_as_written: str, base_dir: str | os.PathLike, media_root: str | os.PathLike | None = None,
                  *, check_links: bool = True) -> Path:
    """Resolve a media path as written in a pool row.

    Relative paths resolve against ``media_root`` when given, else against ``base_dir`` (the pool
    file's folder). The result is lexically normalised (``os.path.normpath``), not made real.

    When ``media_root`` is given, the path is confined to it: a ``../`` escape, an absolute path
    outside it, or (``check_links=True``) a path whose real location (symlinks followed,
    ``os.path.realpath``) lies outside ``realpath(media_root)`` raises ``MediaError('media_outside_root')``.
    ``check_links=False`` does only the lexical checks and touches no file.

    Raises:
        MediaError: reason ``media_outside_root``; or ``wrong_type`` for an empty/non-string path.
    """
    if not isinstance(path_as_written, str) or not path_as_written:
        raise MediaError("wrong_type", f"media path must be a non-empty string, got {path_as_written!r}")
    base = os.fspath(media_root if media_root is not None else base_dir)
    p = os.path.normpath(os.path.join(os.path.abspath(base), path_as_written))
    if media_root is not None:
        root = os.path.normpath(os.path.abspath(os.fspath(media_root)))
        if not _is_within(p, root):
            raise MediaError("media_outside_root", f"{path_as_written!r} resolves to {p}, outside {root}")
        if check_links:
            real = os.path.realpath(p)
            real_root = os.path.realpath(root)
            if not _is_within(real, real_root):
                raise MediaError("media_outside_root",
                                 f"{path_as_written!r} links to {real}, outside {real_root}")
    return Path(p)


def list_frame_folder(folder: str | os.PathLike) -> list[str]:
    """Sorted image files (by name) of a frame folder, as absolute path strings.

    Raises:
        MediaError: ``missing_media`` if the folder does not exist or has no image file.
    """
    folder = os.fspath(folder)
    try:
        names = sorted(n for n in os.listdir(folder) if ext_of(n) in IMAGE_EXTS)
    except OSError as e:
        raise MediaError("missing_media", f"frame folder {folder}: {e.strerror or e}") from None
    if not names:
        raise MediaError("missing_media", f"frame folder {folder} has no image files")
    return [os.path.join(folder, n) for n in names]


# --------------------------------------------------------------------------- probing
def _open_container(path: str):
    import av

    if not os.path.exists(path):
        raise MediaError("missing_media", f"{path} does not exist")
    if os.path.getsize(path) == 0:
        raise MediaError("corrupt_video", f"{path} is empty (0 bytes)")
    try:
        container = av.open(path, mode="r")
    except Exception as e:  # av.error.* (InvalidDataError, ...), OSError
        raise MediaError("corrupt_video", f"{path}: cannot open ({type(e).__name__}: {e})") from None
    if not container.streams.video:
        container.close()
        raise MediaError("corrupt_video", f"{path}: no video stream")
    return container


def _count_packets(container, stream) -> int:
    n = 0
    for pkt in container.demux(stream):
        if pkt.size:
            n += 1
    return n


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video file's header with PyAV: frame count, fps, duration, size.

    When the header has no frame count, frames are counted by demuxing packets (no decoding); a
    video with no decodable packet is corrupt. A truncated file whose index (``moov``) is missing
    fails to open and is ``corrupt_video``.

    Raises:
        MediaError: ``missing_media`` (no file), ``corrupt_video`` (empty, unreadable, no video
        stream, no frames).
    """
    path = os.fspath(path)
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else None
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000.0
        n = int(stream.frames or 0)
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        if n <= 0:
            try:
                n = _count_packets(container, stream)
            except Exception as e:
                raise MediaError("corrupt_video", f"{path}: demux failed ({type(e).__name__}: {e})") from None
        if n <= 0:
            raise MediaError("corrupt_video", f"{path}: no video frames")
        if duration is None and fps:
            duration = n / fps
        return VideoInfo(native_frames=n, fps=fps, duration_s=duration, width=width, height=height)
    finally:
        container.close()


def check_image(path: str | os.PathLike) -> tuple[int, int]:
    """Check an image file exists and its header is readable (PIL, no full decode).

    Returns:
        (width, height) in pixels.

    Raises:
        MediaError: ``missing_media`` or ``unreadable_media``.
    """
    from PIL import Image

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError("missing_media", f"{path} does not exist")
    try:
        with Image.open(path) as im:
            return int(im.size[0]), int(im.size[1])
    except Exception as e:
        raise MediaError("unreadable_media", f"{path}: {type(e).__name__}: {e}") from None


# --------------------------------------------------------------------------- decoding
def decode_video(path: str | os.PathLike, indices: Sequence[int] | None = None, *, frames: int = 32,
                 threads: bool = True) -> np.ndarray:
    """Decode a video once with PyAV and keep only the frames at ``indices``.

    Args:
        path: video file.
        indices: 0-based frame indices to keep (any order, duplicates allowed). ``None``: the
            GDO sample of ``frames`` frames over the header's frame count (counted by demuxing
            when the header lacks it).
        frames: T for the default sampling.
        threads: let FFmpeg decode with threads (``thread_type='AUTO'``).

    Returns:
        uint8 array (len(indices), H, W, 3), RGB. If the stream ends before an index, that index
        gets the last decoded frame.

    Raises:
        MediaError: ``missing_media`` / ``corrupt_video`` (cannot open, or no frame decoded).
    """
    path = os.fspath(path)
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        if indices is None:
            n = int(stream.frames or 0)
            if n <= 0:  # header without a frame count: count packets (no decoding), then reopen
                container.close()
                n = probe_video(path).native_frames
                container = _open_container(path)
                stream = container.streams.video[0]
            indices = sample_indices(n, frames)
        indices = [int(i) for i in indices]
        if not indices:
            return np.zeros((0, 0, 0, 3), np.uint8)
        wanted = set(indices)
        last_needed = max(indices)
        got: dict[int, np.ndarray] = {}
        if threads:
            stream.thread_type = "AUTO"
        i = -1
        last_frame = None
        try:
            for frame in container.decode(stream):
                i += 1
                last_frame = frame
                if i in wanted:
                    got[i] = frame.to_ndarray(format="rgb24")
                if i >= last_needed:
                    break
        except Exception as e:
            if last_frame is None:
                raise MediaError("corrupt_video", f"{path}: decode failed ({type(e).__name__}: {e})") from None
        if last_frame is None:
            raise MediaError("corrupt_video", f"{path}: no frame decoded")
        fill = got[i] if i in got else last_frame.to_ndarray(format="rgb24")
        del last_frame
    finally:
        container.close()
    out = [got.get(j, fill) for j in indices]
    return _stack(out)


def _stack(frames: list[np.ndarray]) -> np.ndarray:
    shapes = {f.shape for f in frames}
    if len(shapes) == 1:
        return np.stack(frames)
    h, w = frames[0].shape[:2]
    import cv2

    return np.stack([f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
                     for f in frames])


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as uint8 RGB (H, W, 3) with OpenCV (PIL fallback, e.g. for GIF).

    Raises:
        MediaError: ``missing_media`` or ``unreadable_media``.
    """
    import cv2

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError("missing_media", f"{path} does not exist")
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is not None:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    try:
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:
        raise MediaError("unreadable_media", f"{path}: {type(e).__name__}: {e}") from None


class FrameCache:
    """Bounded LRU cache of decoded frame arrays, keyed by ``video_key``, limited by total bytes.

    Thread-safe. An array bigger than the limit is returned but not stored. Arrays are stored
    read-only (``flags.writeable = False``) so a caller cannot corrupt a shared entry.
    """

    def __init__(self, max_bytes: int = 1 << 30) -> None:
        self.max_bytes = int(max_bytes)
        self._d: OrderedDict[str, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        """Return the cached array for ``key`` (marking it recently used), or None."""
        with self._lock:
            arr = self._d.get(key)
            if arr is None:
                self.misses += 1
                return None
            self._d.move_to_end(key)
            self.hits += 1
            return arr

    def put(self, key: str, arr: np.ndarray) -> None:
        """Store ``arr`` under ``key``, evicting least recently used entries beyond ``max_bytes``."""
        if arr.nbytes > self.max_bytes:
            return
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


def load_frames(media_kind: str, media: Sequence[str], frames: int = 32, cache: FrameCache | None = None,
                key: str | None = None) -> np.ndarray:
    """Load the visual input of a candidate as RGB uint8 frames.

    Args:
        media_kind: ``video`` (``media`` = [video file]), ``frames`` (``media`` = the full frame
            list, or [frame folder]), ``image`` (``media`` = image files) or ``none``.
        media: resolved paths (the ``media`` column of candidates.parquet).
        frames: T, the GDO sample size for videos and frame lists (GDO_METHOD.md section 2).
        cache: optional FrameCache; with ``key`` (normally the candidate's ``video_key``) a video
            shared by many rows is decoded once.
        key: cache key; defaults to the first media path for videos/frames.

    Returns:
        uint8 array (t, H, W, 3), RGB. ``t`` = min(native, T) for videos/frame lists, the number of
        images for images (images of different sizes are resized with area interpolation to the
        first image's size), 0 for ``none`` (shape (0, 0, 0, 3)).

    Raises:
        MediaError: missing, unreadable or corrupt media. ValueError: unknown ``media_kind``.
    """
    if media_kind == "none" or not media:
        return np.zeros((0, 0, 0, 3), np.uint8)
    if media_kind not in ("video", "frames", "image"):
        raise ValueError(f"unknown media_kind {media_kind!r}")
    if cache is not None:
        key = key or f"{media_kind}:{frames}:{media[0]}:{len(media)}"
        hit = cache.get(key)
        if hit is not None:
            return hit
    if media_kind == "video":
        out = decode_video(media[0], frames=frames)
    elif media_kind == "frames":
        paths = list(media)
        if len(paths) == 1 and os.path.isdir(paths[0]):
            paths = list_frame_folder(paths[0])
        out = _stack([read_image(paths[i]) for i in sample_indices(len(paths), frames)])
    else:
        out = _stack([read_image(p) for p in media])
    if cache is not None:
        cache.put(key, out)
    return out
