"""LLaVA-OneVision rows: ``{"id", "images": [path], "messages": [{"role", "content"}], "data_source"}``.

One image per row in the common case (``<image>`` in the first question); multi-turn rows give one
candidate per turn pair. Parse and rewrite are the shared ones (``common``); the fast path takes
rows with no media, one image or one video file.
"""

from __future__ import annotations

from .common import RowFormat, fast_image_or_video


class LlavaOV(RowFormat):
    """``llava_ov``: ``id``, ``data_source`` and ``images`` beside ``messages``."""

    name = "llava_ov"

    def detect(self, rec: dict, first: dict | None) -> bool:
        return "id" in rec and "data_source" in rec and "images" in rec

    def fast_media(self, rec: dict, ntok: int, nvid: int):
        return fast_image_or_video(rec, ntok, nvid)


FORMAT = LlavaOV()
