"""Decoding: videos once with PyAV (upright, sampled by time), images fully, frame lists by index.

A video is opened once to demux its packet timestamps (no decoding), the frames to keep are
chosen with THE sampling rule (:mod:`gdo.media.sample`), and the stream is decoded once, keeping
only those frames, each rotated upright by its display matrix. If decoding stops before the last
frame to keep (damaged payload, fewer decodable frames than packets), the clip is re-sampled over
the ``k`` frames that did decode and decoded again up to them (only damaged files pay this), and
the result carries the ``partial`` flag and ``decoded_frames = k``: no frame is ever a stand-in
for one that does not exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .cache import FrameCache, frame_key
from .errors import MediaError
from .probe import decode_threads, demux, frame_rotation, open_video
from .resolve import list_frame_folder
from .sample import sample_by_time, sample_indices


@dataclass
class DecodedVideo:
    """Frames of one video as decoded.

    Attributes:
        frames: uint8 (t, H, W, 3) RGB, upright.
        indices: frame index (presentation order) of each kept frame.
        times: timestamp in seconds (from the first frame) of each kept frame, or None.
        native_frames: frames present (demuxed packets with data).
        decoded_frames: frames that decoded (== native_frames unless ``partial``).
        rotation: clockwise degrees applied.
        flags: sorted flags (``partial``, ``vfr``, ``rotated``, ``no_timestamps``).
        note: detail of ``partial`` ("decode failed at frame k of n").
    """

    frames: np.ndarray
    indices: list[int]
    times: list[float] | None
    native_frames: int
    decoded_frames: int
    rotation: int
    flags: tuple[str, ...]
    note: str = ""


def _upright(arr: np.ndarray, rotation: int) -> np.ndarray:
    if rotation == 0:
        return arr
    return np.ascontiguousarray(np.rot90(arr, k=-(rotation // 90)))


def _demux_times(path: str) -> tuple[list[float] | None, int, int | None]:
    container, stream = open_video(path)
    try:
        header = int(stream.frames or 0) or None
        dm = demux(container, stream)
        tb = stream.time_base
    finally:
        container.close()
    if dm.no_pts or not dm.pts:
        return None, dm.n, header
    pts = sorted(dm.pts)
    return [float((p - pts[0]) * tb) for p in pts], dm.n, header


def _decode_keep(path: str, wanted: list[int], threads: bool) -> tuple[dict[int, np.ndarray], int, int, str]:
    """Decode up to max(wanted); returns (kept frames, frames decoded, rotation, error note)."""
    container, stream = open_video(path)
    got: dict[int, np.ndarray] = {}
    want = set(wanted)
    last = max(wanted)
    i = -1
    rot = 0
    err = ""
    try:
        if threads:
            stream.thread_type = "AUTO"
        try:
            for frame in container.decode(stream):
                i += 1
                if i == 0:
                    rot = frame_rotation(frame)
                if i in want:
                    got[i] = _upright(frame.to_ndarray(format="rgb24"), rot)
                if i >= last:
                    break
        except Exception as e:  # noqa: BLE001 - damaged payload: handled by the caller
            err = f"{type(e).__name__}"
    finally:
        container.close()
    return got, i + 1, rot, err


def decode_video(path: str | os.PathLike, frames: int = 32, keep: int | None = None, *,
                 indices: Sequence[int] | None = None, threads: bool | None = None) -> DecodedVideo:
    """Decode a video once, keeping the frames THE sampling rule picks (module doc).

    Args:
        path: video file.
        frames: T, frames sampled uniformly in time (GDO_METHOD.md section 2, issue 13 item 4).
        keep: when given, keep only ``sample_indices(len(sampled), keep)`` of the sampled frames
            (motion's 8-of-32 rule, GDO_METHOD.md 3.3).
        indices: decode exactly these frame indices (presentation order; any order, repeats
            allowed) instead of sampling; ``frames`` and ``keep`` are then ignored.
        threads: let FFmpeg decode with threads; None follows this process's policy
            (:func:`set_decode_threads`: on, except in engine workers).

    Returns:
        DecodedVideo (frames upright, RGB uint8).

    Raises:
        MediaError: ``missing_media``, ``corrupt_video`` (cannot open, no frame decodes:
        "decode failed at frame 0 of n"; an explicit index that does not exist or decode),
        ``not_a_video``.
    """
    path = os.fspath(path)
    threads = decode_threads() if threads is None else threads
    times, n, header = _demux_times(path)
    if n == 0:
        raise MediaError("corrupt_video", f"{path}: no video frames")

    def plan(m: int) -> list[int]:
        idx = sample_by_time(times[:m], frames) if times is not None else sample_indices(m, frames)
        if keep is not None:
            idx = [idx[j] for j in sample_indices(len(idx), keep)]
        return idx

    idx = plan(n if times is None else len(times)) if indices is None else [int(i) for i in indices]
    if not idx:
        raise ValueError("decode_video: no frame index to decode")
    got, decoded, rot, err = _decode_keep(path, idx, threads)
    if indices is not None and any(j not in got for j in idx):
        bad = sorted({j for j in idx if j not in got})
        raise MediaError("corrupt_video", f"{path}: frame(s) {bad[:4]} do not exist or do not decode "
                                          f"({decoded} of {max(n, header or 0)} decoded)")
    flags: set[str] = set()
    note = ""
    missing = [j for j in idx if j not in got]
    total = max(n, header or 0)
    if missing:
        k = decoded  # frames that decoded before the error / the end
        if k == 0:
            raise MediaError("corrupt_video", f"{path}: decode failed at frame 0 of {total}")
        note = f"decode failed at frame {k} of {total}" + (f" ({err})" if err else "")
        idx = plan(k)
        got, _, rot, _ = _decode_keep(path, idx, threads)
        flags.add("partial")
        missing = [j for j in idx if j not in got]
        if missing:  # cannot happen unless decoding is not repeatable
            raise MediaError("corrupt_video", f"{path}: {note}; frames {missing[:4]} did not decode twice")
        decoded = k
    else:
        decoded = max(decoded, n) if not err else decoded
    if header is not None and header > n and "partial" not in flags:  # a cut file: fewer frames than promised
        flags.add("partial")
        note = f"only {n} of {header} frames present"
    if rot:
        flags.add("rotated")
    if times is None:
        flags.add("no_timestamps")
    else:
        from .sample import is_vfr

        if is_vfr(times[:decoded]):
            flags.add("vfr")
    arr = _stack([got[j] for j in idx])
    return DecodedVideo(frames=arr, indices=list(idx), times=[times[j] for j in idx] if times is not None else None,
                        native_frames=n, decoded_frames=decoded, rotation=rot, flags=tuple(sorted(flags)), note=note)


def _stack(frames: list[np.ndarray]) -> np.ndarray:
    if not frames:
        return np.zeros((0, 0, 0, 3), np.uint8)
    shapes = {f.shape for f in frames}
    if len(shapes) == 1:
        return np.stack(frames)
    h, w = frames[0].shape[:2]
    import cv2

    return np.stack([f if f.shape[:2] == (h, w) else cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA)
                     for f in frames])


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read one image file as uint8 RGB (H, W, 3): OpenCV, PIL for what OpenCV cannot read (GIF:
    its first frame, palette and transparency converted to RGB).

    Raises:
        MediaError: ``missing_media`` or ``unreadable_media``.
    """
    import cv2

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError("missing_media", f"{path} does not exist")
    img = cv2.imread(path, cv2.IMREAD_COLOR) if not path.lower().endswith(".gif") else None
    if img is not None:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    try:
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001
        raise MediaError("unreadable_media", f"{path}: {type(e).__name__}: {e}") from None


def frame_list_paths(media: Sequence[str]) -> list[str]:
    """The frame files of a ``frames`` candidate: the list itself, or a folder's sorted images."""
    paths = list(media)
    if len(paths) == 1 and os.path.isdir(paths[0]):
        paths = list_frame_folder(paths[0])
    return paths


def load_frames(media_kind: str, media: Sequence[str], frames: int = 32, cache: FrameCache | None = None,
                key: str | None = None) -> np.ndarray:
    """Load the visual input of a candidate as RGB uint8 frames (THE sampling rule, upright).

    Args:
        media_kind: ``video`` (``media`` = [video file]), ``frames`` (``media`` = the full frame
            list, or [frame folder]), ``image`` (``media`` = image files) or ``none``.
        media: resolved paths (the ``media`` column of candidates.parquet).
        frames: T for videos and frame lists (GDO_METHOD.md section 2).
        cache: optional FrameCache, keyed by ``frame_key(media_kind, key or media[0], frames)``.
        key: media key (normally the candidate's ``video_key``); default: the joined paths.

    Returns:
        uint8 array (t, H, W, 3), RGB. ``t`` = frames sampled (videos, frame lists), the number
        of images (images of other sizes are resized with area interpolation to the first
        one's size), 0 for ``none`` (shape (0, 0, 0, 3)).

    Raises:
        MediaError: missing, unreadable or corrupt media. ValueError: unknown ``media_kind``.
    """
    if media_kind == "none" or not media:
        return np.zeros((0, 0, 0, 3), np.uint8)
    if media_kind not in ("video", "frames", "image"):
        raise ValueError(f"unknown media_kind {media_kind!r}")
    ck = None
    if cache is not None:
        ck = frame_key(media_kind, key or "\x1f".join(media), frames)
        hit = cache.get(ck)
        if hit is not None:
            return hit
    if media_kind == "video":
        out = decode_video(media[0], frames=frames).frames
    elif media_kind == "frames":
        paths = frame_list_paths(media)
        out = _stack([read_image(paths[i]) for i in sample_indices(len(paths), frames)])
    else:
        out = _stack([read_image(p) for p in media])
    if cache is not None:
        cache.put(ck, out)
    return out
