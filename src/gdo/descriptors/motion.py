"""AMM (average motion magnitude) and frame diversity (GDO_METHOD.md section 3.3).

Frame choice (the "8-of-32 rule"):

1. A video (file or frame list) with ``n`` native frames is sampled to at most ``T`` (default 32)
   frames with ``index_i = round(i*(n-1)/(T-1))`` (Python ``round``: half to even; ``n <= T``
   keeps every frame), GDO_METHOD.md section 2.
2. From those ``m = min(n, T)`` sampled frames, 8 are taken with the same rule applied to the
   sampled list: ``j_i = round(i*(m-1)/7)``, i = 0..7 (all of them when ``m <= 8``).

Each chosen frame is decoded as RGB, converted with ``cv2.COLOR_RGB2GRAY``, resized to 224x224
with ``cv2.INTER_AREA`` (uint8). For every consecutive pair, dense Farneback flow
``cv2.calcOpticalFlowFarneback(prev, next, None, 0.5, 2, 15, 2, 5, 1.1, 0)``;
AMM = mean over pairs of the mean per-pixel flow magnitude (pixels at 224x224);
frame diversity = mean over pairs of ``mean(|g_t - g_{t-1}|)/255`` with the difference taken in
float (not wrapped uint8). Fewer than two frames (images, one-frame videos) give 0 for both.

This reading reproduces the independently computed reference values: the 20 frames of sam2's
``bedroom`` give AMM 5.417 and the 10 frames of mmaction2's ``tests/data/imgs`` give 0.358.

Every video is decoded once: :func:`load_motion_frames` keeps only the frames it needs while
streaming through the file.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: Farneback parameters of GDO_METHOD.md 3.3: pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags.
FARNEBACK_PARAMS = (0.5, 2, 15, 2, 5, 1.1, 0)
MOTION_SIZE = 224
MOTION_FRAMES = 8


def uniform_indices(n: int, t: int) -> list[int]:
    """Indices of ``t`` frames sampled uniformly from ``n`` (GDO_METHOD.md section 2).

    ``round(i*(n-1)/(t-1))`` for i in 0..t-1 with Python's round (half to even);
    ``list(range(n))`` when ``n <= t``.

    Raises:
        ValueError: if ``n < 0`` or ``t < 1``.
    """
    from gdo.media import sample_indices

    return sample_indices(n, t)


def motion_indices(n: int, frames: int = 32, keep: int = MOTION_FRAMES) -> list[int]:
    """Native frame indices used for motion: ``keep`` of the at most ``frames`` sampled (the 8-of-32 rule)."""
    sampled = uniform_indices(n, frames)
    return [sampled[j] for j in uniform_indices(len(sampled), keep)]


def to_gray224(frame_rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) (or gray (H, W)) -> gray uint8 (224, 224), ``INTER_AREA``."""
    import cv2

    if frame_rgb.ndim == 3:
        g = cv2.cvtColor(np.ascontiguousarray(frame_rgb), cv2.COLOR_RGB2GRAY)
    else:
        g = frame_rgb
    return cv2.resize(g, (MOTION_SIZE, MOTION_SIZE), interpolation=cv2.INTER_AREA)


def motion_from_gray(grays: Sequence[np.ndarray]) -> tuple[float, float]:
    """AMM and frame diversity of consecutive gray frames (GDO_METHOD.md 3.3).

    Args:
        grays: sequence of uint8 (224, 224) gray frames (already chosen and resized).

    Returns:
        (amm in pixels, frame diversity in [0, 1]); (0.0, 0.0) for fewer than two frames.
    """
    import cv2

    if len(grays) < 2:
        return 0.0, 0.0
    mags = []
    divs = []
    for prev, nxt in zip(grays[:-1], grays[1:]):
        flow = cv2.calcOpticalFlowFarneback(prev, nxt, None, *FARNEBACK_PARAMS)
        mag = np.sqrt(flow[..., 0].astype(np.float64) ** 2 + flow[..., 1].astype(np.float64) ** 2)
        mags.append(float(mag.mean()))
        divs.append(float(np.abs(nxt.astype(np.float64) - prev.astype(np.float64)).mean() / 255.0))
    return float(np.mean(mags)), float(np.mean(divs))


def amm_and_diversity(frames_rgb: Sequence[np.ndarray]) -> tuple[float, float]:
    """AMM and frame diversity of already chosen RGB frames (each (H, W, 3) uint8), in order."""
    return motion_from_gray([to_gray224(f) for f in frames_rgb])


# ----------------------------------------------------------------------------- decoding


def load_motion_media(media_kind: str, media: Sequence[str], frames: int = 32,
                      keep: int = MOTION_FRAMES) -> tuple[list[np.ndarray], int, dict]:
    """The RGB frames motion uses for one media item (the 8-of-32 rule), decoded once, with what
    decoding found.

    Videos go through :func:`gdo.media.decode_video` (one demux for timestamps, one decode pass
    keeping only the chosen frames, upright; sampled uniformly in time, which is the index rule
    for constant-frame-rate clips). Frame lists use the index rule.

    Args:
        media_kind: "video" (``media`` = [file]), "frames" (full frame list or [frame folder])
            or "image".
        media: resolved paths.
        frames: T, the number of frames a video is sampled to first.
        keep: frames kept for motion (8).

    Returns:
        (list of RGB uint8 (H, W, 3) arrays in temporal order -- images: every image --,
        native frame count: video frames present, frame-list length, or number of images,
        facts: ``{"decoded_frames": int | None, "flags": tuple[str, ...], "note": str}``;
        a damaged video gives ``partial`` with the real decoded count).

    Raises:
        gdo.media.MediaError: missing, unreadable or corrupt media (message names the file).
    """
    from gdo import media as gm

    if media_kind == "video":
        if not media:
            raise gm.MediaError("missing_media", "video candidate without a media path")
        dv = gm.decode_video(media[0], frames=frames, keep=keep)
        facts = {"decoded_frames": dv.decoded_frames, "flags": dv.flags, "note": dv.note}
        return [dv.frames[i] for i in range(dv.frames.shape[0])], int(dv.native_frames), facts
    if media_kind == "frames":
        paths = gm.frame_list_paths(media)
        fr = [gm.read_image(paths[i]) for i in motion_indices(len(paths), frames, keep)]
        return fr, len(paths), {"decoded_frames": None, "flags": (), "note": ""}
    if media_kind == "image":
        return [gm.read_image(p) for p in media], len(media), {"decoded_frames": None, "flags": (), "note": ""}
    return [], 0, {"decoded_frames": None, "flags": (), "note": ""}


def load_motion_frames(media_kind: str, media: Sequence[str], frames: int = 32,
                       keep: int = MOTION_FRAMES) -> tuple[list[np.ndarray], int]:
    """``load_motion_media`` without the decoding facts: (frames, native frame count).

    Raises:
        gdo.media.MediaError: missing, unreadable or corrupt media.
    """
    fr, native, _ = load_motion_media(media_kind, media, frames, keep)
    return fr, native
