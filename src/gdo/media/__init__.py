"""Media at the ground floor (issue 11 item 5, issue 13): every stage imports media from here.

* :mod:`gdo.media.resolve` — references (``data:``, ``http(s)://``, ``file://``, backslashes),
  resolution and confinement to ``--media-root``.
* :mod:`gdo.media.probe` — what a file is: video timestamps, rotation, partial files, geometry;
  images fully decoded.
* :mod:`gdo.media.sample` — THE frame sampling rule (by index, by time for variable frame rate).
* :mod:`gdo.media.decode` — decode a video once (upright, sampled), images, frame lists.
* :mod:`gdo.media.cache` — THE frame cache, keyed by (kind, file, sampling).

This package imports nothing from other gdo stages.
"""

from .cache import FrameCache, frame_key
from .decode import DecodedVideo, decode_video, frame_list_paths, load_frames, read_image
from .errors import MediaError
from .probe import FLAGS, ImageInfo, VideoInfo, check_geometry, check_image, image_header, probe_image, probe_video
from .resolve import IMAGE_EXTS, VIDEO_EXTS, ext_of, list_frame_folder, normalise_ref, resolve_media
from .sample import is_vfr, sample_by_time, sample_indices

__all__ = [
    "FLAGS", "IMAGE_EXTS", "VIDEO_EXTS", "DecodedVideo", "FrameCache", "ImageInfo", "MediaError", "VideoInfo",
    "check_geometry", "check_image", "decode_video", "image_header", "ext_of", "frame_key", "frame_list_paths", "is_vfr",
    "list_frame_folder", "load_frames", "normalise_ref", "probe_image", "probe_video", "read_image",
    "resolve_media", "sample_by_time", "sample_indices",
]
