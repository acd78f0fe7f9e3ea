"""Probing: what a media file really is, without decoding a video (issue 13 items 1-5, 8).

A video probe opens the container with lenient metadata decoding (``metadata_errors="replace"``:
GBK or Latin-1 titles open, item 5), demuxes every packet of the first video stream (no decoding)
to get the presentation timestamps of the frames that are present, and decodes only the first
frame to read its rotation (the display matrix). From the timestamps come ``fps``
(``(n-1) / (t_last - t_0)``), ``duration_s`` (``t_last - t_0`` + the last frame's duration) and
the ``vfr`` flag (:func:`gdo.media.sample.is_vfr`). When the header promises more frames than are
present, or demuxing fails part-way, the file is decoded once to count the frames that really
decode: it is accepted with that count and the ``partial`` flag (no stand-in frames), or
rejected as ``corrupt_video`` when none decodes.

Geometry (item 3) is checked on the original, upright size before any resize: a long side over
200 times the short side is rejected (``aspect_ratio``, measured ratio in the detail; exactly 200
passes, the limit of the Qwen-VL-family processors); a side under 28 px is accepted and flagged
``upscaled`` (those processors upscale it to 28 px; gdo's own resizing never changes this
outcome because the check runs on the file's size).

Images are decoded fully (PIL, JPEG at reduced DCT scale, which still reads every byte), so a
truncated image is ``unreadable_media``; an animated GIF used as an image is its first frame,
flagged ``animated``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .errors import MediaError

#: Limits of the Qwen-VL-family image processors, checked on the original size.
MAX_ASPECT_RATIO = 200.0
MIN_SIDE = 28

#: Flags a media item may carry (candidate column ``media_flags``).
FLAGS = ("partial", "vfr", "rotated", "upscaled", "animated", "no_timestamps")


@dataclass(frozen=True)
class VideoInfo:
    """Facts of a video file.

    Attributes:
        native_frames: frames present (packets with data; after a partial check, frames that decode).
        fps: frames per second from timestamps (header average rate when fewer than 2 timestamps).
        duration_s: seconds from the first frame's timestamp to the end of the last frame.
        width, height: upright size in pixels (rotation applied).
        header_frames: frame count the header states (None when it states none).
        rotation: clockwise degrees (0, 90, 180, 270) applied to show the frames upright.
        times: presentation timestamps of the present frames, seconds from the first (None when
            the stream has none).
        flags: sorted subset of ``FLAGS``.
        note: human-readable detail of a flag (e.g. "decode failed at frame 24 of 60").
    """

    native_frames: int
    fps: float | None
    duration_s: float | None
    width: int
    height: int
    header_frames: int | None = None
    rotation: int = 0
    times: tuple[float, ...] | None = None
    flags: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ImageInfo:
    """Facts of an image file: upright ``width``/``height`` in pixels, ``flags`` (sorted)."""

    width: int
    height: int
    flags: tuple[str, ...] = field(default=())


def what_is(path: str) -> str:
    """A short description of a file's content from its first bytes (for reject details)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        return f"unreadable ({e.strerror or e})"
    if not head:
        return "0 bytes"
    sigs = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
            (b"BM", "a BMP image"), (b"\x1aE\xdf\xa3", "a Matroska/WebM header"), (b"%PDF", "a PDF document"))
    for sig, name in sigs:
        if head.startswith(sig):
            return name
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        return "an MP4/MOV file that does not open (truncated, or its index is missing)"
    if head[:4] == b"RIFF":
        return "a RIFF (AVI/WebP/WAV) file"
    try:
        txt = head.decode("utf-8")
        if all(c.isprintable() or c.isspace() for c in txt):
            return f"text ({txt[:24]!r}...)"
    except UnicodeDecodeError:
        pass
    return "unrecognised bytes"


def check_geometry(width: int, height: int, path: str) -> tuple[str, ...]:
    """Qwen-VL-family limits on the original upright size (module doc).

    Returns:
        ``("upscaled",)`` when a side is under ``MIN_SIDE`` px, else ``()``.

    Raises:
        MediaError: ``aspect_ratio`` when ``max/min > 200``; ``unreadable_media`` for a 0 size.
    """
    if width <= 0 or height <= 0:
        raise MediaError("unreadable_media", f"{path}: size {width}x{height}")
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        raise MediaError("aspect_ratio", f"{path}: aspect ratio {ratio:.1f} ({width}x{height}) exceeds "
                                         f"{MAX_ASPECT_RATIO:.0f}")
    return ("upscaled",) if min(width, height) < MIN_SIDE else ()


#: Whether FFmpeg may decode one video with several threads (``thread_type = "AUTO"``). True until
#: the profile's media stage runs: every media worker (the local engine's process pool, its single
#: in-process worker, Ray tasks and actors) turns it off in ``gdo.engine.local.init_worker``, since
#: the engine parallelises across videos, one core per worker (N workers use N cores, not N x
#: FFmpeg's thread count). Decoded pixels do not depend on it.
_THREADED = True


def set_decode_threads(enabled: bool) -> None:
    """Allow (True) or forbid (False) multi-threaded FFmpeg decoding of one video in this process."""
    global _THREADED
    _THREADED = bool(enabled)


def decode_threads() -> bool:
    """This process's decode-thread policy (see :func:`set_decode_threads`)."""
    return _THREADED


def open_video(path: str):
    """Open a video container with PyAV, metadata decoded leniently.

    Returns:
        ``(container, stream)``: the first video stream (``thread_type`` not set).

    Raises:
        MediaError: ``missing_media``, ``corrupt_video`` (0 bytes, cannot open, no video stream,
        with what the file is), ``not_a_video`` (an image behind a video name).
    """
    import av

    if not os.path.isfile(path):
        raise MediaError("missing_media", f"{path} does not exist")
    if os.path.getsize(path) == 0:
        raise MediaError("corrupt_video", f"{path} is empty (0 bytes)")
    try:
        container = av.open(path, mode="r", metadata_errors="replace")
    except Exception as e:  # av.error.* (InvalidDataError, ...), OSError
        raise MediaError("corrupt_video", f"{path}: cannot open, found {what_is(path)} "
                                          f"({type(e).__name__})") from None
    fmt = container.format.name or ""
    if fmt.endswith("_pipe") or fmt in ("image2", "image2pipe"):
        container.close()
        raise MediaError("not_a_video", f"{path}: found {what_is(path)} (container {fmt!r}), not a video")
    if not container.streams.video:
        container.close()
        raise MediaError("corrupt_video", f"{path}: no video stream (found {what_is(path)})")
    return container, container.streams.video[0]


def frame_rotation(frame) -> int:
    """Clockwise degrees (0, 90, 180, 270) that show a decoded PyAV frame upright (its display
    matrix; PyAV reports counter-clockwise degrees)."""
    r = getattr(frame, "rotation", 0) or 0
    return int(round(-float(r))) % 360


@dataclass
class Demuxed:
    """What one demux pass (no decoding) of a video stream found.

    ``pts``: presentation timestamps (stream time base) of the packets with data, unsorted;
    ``n``: those packets; ``no_pts``: some packet had no timestamp; ``last_dur``: (pts, duration)
    of the last packet with a duration; ``rotation``: of the first frame (only when asked);
    ``error``: exception name when demuxing stopped part-way ('' otherwise).
    """

    pts: list[int]
    n: int = 0
    no_pts: bool = False
    last_dur: tuple[int, int] | None = None
    rotation: int | None = None
    error: str = ""


def demux(container, stream, first_rotation: bool = False) -> Demuxed:
    """One pass over the packets of ``stream`` (discarded packets, those before an edit list's
    start, are skipped). With ``first_rotation``, the first packets are decoded until one frame
    comes out, to read its display rotation."""
    d = Demuxed(pts=[])
    try:
        for pkt in container.demux(stream):
            if not pkt.size or pkt.is_discard:
                continue
            d.n += 1
            if pkt.pts is None:
                d.no_pts = True
            else:
                d.pts.append(int(pkt.pts))
                if pkt.duration:
                    d.last_dur = (int(pkt.pts), int(pkt.duration))
            if first_rotation and d.rotation is None:
                try:
                    for fr in pkt.decode():
                        d.rotation = frame_rotation(fr)
                        break
                except Exception:  # noqa: BLE001 - the first frame is decoded again by the caller
                    d.rotation = None
    except Exception as e:  # noqa: BLE001 - demux stopped part-way (cut file): what is there counts
        d.error = type(e).__name__
    return d


def count_decodable(path: str) -> tuple[int, str]:
    """Decode every frame once; returns (frames decoded before the first error or the end, note).

    Raises:
        MediaError: as :func:`open_video`.
    """
    container, stream = open_video(path)
    n = 0
    note = ""
    try:
        if _THREADED:
            stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            n += 1
    except Exception as e:  # noqa: BLE001 - a damaged payload: count what decoded
        note = f"{type(e).__name__}"
    finally:
        container.close()
    return n, note


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Probe a video (module doc): demux timestamps, first-frame rotation, geometry, flags.

    Raises:
        MediaError: ``missing_media``, ``corrupt_video`` (0 bytes, cannot open, no frame),
        ``not_a_video``, ``aspect_ratio``.
    """
    path = os.fspath(path)
    container, stream = open_video(path)
    try:
        header = int(stream.frames or 0) or None
        tb = stream.time_base
        dm = demux(container, stream, first_rotation=True)
        pts, no_pts, last_dur, rotation, demux_err = dm.pts, dm.no_pts, dm.last_dur, dm.rotation, dm.error
        n_pk = dm.n
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        avg = float(stream.average_rate) if stream.average_rate else None
    finally:
        container.close()
    if n_pk == 0:
        raise MediaError("corrupt_video", f"{path}: no video frames (found {what_is(path)})")
    flags: set[str] = set()
    note = ""
    times = None
    if pts and not no_pts:
        order = sorted(pts)
        t0 = order[0]
        times = [float((p - t0) * tb) for p in order]
        end = None
        if last_dur is not None and last_dur[0] == order[-1]:
            end = float((last_dur[0] + last_dur[1] - t0) * tb)
    else:
        flags.add("no_timestamps")
    native = n_pk
    if demux_err or (header is not None and header > n_pk):
        k, why = count_decodable(path)
        if k == 0:
            raise MediaError("corrupt_video", f"{path}: decode failed at frame 0 of {header or n_pk}")
        native = min(k, n_pk) if times is not None else k
        if times is not None:
            times = times[:native]
            end = None
        flags.add("partial")
        note = f"decode failed at frame {native} of {header or n_pk}" + (f" ({why or demux_err})" if why or demux_err
                                                                            else "")
    if rotation is None:  # the first packets gave no frame while demuxing (decoder delay): decode one
        c2, s2 = open_video(path)
        try:
            for fr in c2.decode(s2):
                rotation = frame_rotation(fr)
                break
        except Exception:  # noqa: BLE001
            pass
        finally:
            c2.close()
        rotation = rotation or 0
    if rotation % 180 == 90:
        width, height = height, width
    if rotation:
        flags.add("rotated")
    if times is not None and len(times) >= 2 and times[-1] > 0:
        fps = round((len(times) - 1) / times[-1], 6)
        dur = end if end is not None else times[-1] + 1.0 / fps
        from .sample import is_vfr

        if is_vfr(times):
            flags.add("vfr")
    else:
        fps = avg
        dur = end if times is not None and end is not None else (native / fps if fps else None)
    flags.update(check_geometry(width, height, path))
    return VideoInfo(native_frames=native, fps=fps, duration_s=dur, width=width, height=height,
                     header_frames=header, rotation=rotation, times=tuple(times) if times is not None else None,
                     flags=tuple(sorted(flags)), note=note)


def probe_image(path: str | os.PathLike) -> ImageInfo:
    """Decode an image fully (PIL; JPEG at 1/8 DCT scale, which still reads every byte) and check
    its geometry.

    Raises:
        MediaError: ``missing_media``, ``unreadable_media`` (truncated, not an image: the detail
        says what the file is), ``aspect_ratio``.
    """
    from PIL import Image

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError("missing_media", f"{path} does not exist")
    try:
        with Image.open(path) as im:
            w, h = int(im.size[0]), int(im.size[1])
            animated = bool(getattr(im, "is_animated", False))
            if im.format == "JPEG":
                im.draft("RGB", (max(1, w // 8), max(1, h // 8)))
            im.load()
    except Exception as e:  # noqa: BLE001 - PIL raises OSError, SyntaxError, ValueError...
        raise MediaError("unreadable_media", f"{path}: cannot decode fully, found {what_is(path)} "
                                             f"({type(e).__name__}: {e})") from None
    flags = set(check_geometry(w, h, path))
    if animated:
        flags.add("animated")
    return ImageInfo(w, h, tuple(sorted(flags)))


def image_header(path: str | os.PathLike) -> ImageInfo:
    """Size and geometry flags of an image from its header only (PIL, no decoding): for the
    frames of a frame list, which profile decodes.

    Raises:
        MediaError: ``missing_media``, ``unreadable_media`` (no readable header), ``aspect_ratio``.
    """
    from PIL import Image

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MediaError("missing_media", f"{path} does not exist")
    try:
        with Image.open(path) as im:
            w, h = int(im.size[0]), int(im.size[1])
    except Exception as e:  # noqa: BLE001
        raise MediaError("unreadable_media", f"{path}: found {what_is(path)} ({type(e).__name__}: {e})") from None
    return ImageInfo(w, h, check_geometry(w, h, path))


def check_image(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of a fully decodable image (see :func:`probe_image`).

    Raises:
        MediaError: as :func:`probe_image`.
    """
    info = probe_image(path)
    return info.width, info.height


def merge_flags(*per_candidate: list) -> list[str | None]:
    """Union of flag lists per candidate: each argument is a list (one entry per candidate) of
    flag lists, comma-separated strings or None. Returns comma-joined sorted flags, or None."""
    out: list[str | None] = []
    for vals in zip(*per_candidate):
        s: set[str] = set()
        for v in vals:
            if v:
                s.update(v.split(",") if isinstance(v, str) else v)
        out.append(",".join(sorted(s)) or None)
    return out
