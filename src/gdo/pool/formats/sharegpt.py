"""ShareGPT / ms-swift / LLaMA-Factory rows: ``{"messages" | "conversations", "images", "videos"}``
with ``<image>``/``<video>`` tokens in the user turns (positional when in several turns).

The fallback format: a record with a conversation that no other format claims. Parse and rewrite are
the shared ones (``common``); the fast path takes rows with no media, one image or one video file.
"""

from __future__ import annotations

from .common import RowFormat, fast_image_or_video


class ShareGPT(RowFormat):
    """``sharegpt``: any record with a ``messages``/``conversations`` list."""

    name = "sharegpt"

    def detect(self, rec: dict, first: dict | None) -> bool:
        return True

    def fast_media(self, rec: dict, ntok: int, nvid: int):
        return fast_image_or_video(rec, ntok, nvid)


FORMAT = ShareGPT()
