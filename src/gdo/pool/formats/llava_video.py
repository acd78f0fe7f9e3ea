"""LLaVA-Video-178K rows: ``{"id", "video_id" | "video", "images": [frame paths] | "video": file,
"messages" | "conversations", "data_source"}``.

``images`` is ONE frame list (one video, usually 32-180 frames; ``video`` is then only an
identifier); a single ``<image>`` (or ``<video>``) token in the first question refers to it. The
fast path takes frame lists of two or more paths (first and last with an image extension) and
video files; parse and rewrite are the shared ones (``common``) with ``frame_list``.
"""

from __future__ import annotations

from .common import IMAGE_EXTS, RowFormat, fast_video_file, has_ext


class LlavaVideo(RowFormat):
    """``llava_video``: a ``video_id``, or ``video`` beside ``images``."""

    name = "llava_video"
    frame_list = True

    def detect(self, rec: dict, first: dict | None) -> bool:
        return "video_id" in rec or ("video" in rec and "images" in rec)

    def fast_media(self, rec: dict, ntok: int, nvid: int):
        images = rec.get("images")
        if images is None:
            images = rec.get("image")
        if images is None:
            videos = rec.get("videos")
            if videos is None:
                videos = rec.get("video")
            if videos is not None:
                return fast_video_file(videos)
        if images is None or images == []:
            return None if ntok else ("none", [])
        if type(images) is not list or len(images) < 2 or "" in images:
            return None  # (an empty path: the general path rejects it)
        if not has_ext(images[0], IMAGE_EXTS) or not has_ext(images[-1], IMAGE_EXTS):
            return None
        return "frames", images


FORMAT = LlavaVideo()
