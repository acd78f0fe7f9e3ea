"""LLaVA (1.5 / NeXT) rows: ``{"id", "image": path | [paths] | "video": file,
"conversations": [{"from": "human" | "gpt", "value"}]}``.

``image`` as a plain string is ONE image (never its characters). Parse and rewrite are the shared
ones (``common``); the fast path takes rows with no media, one image or one video file.
"""

from __future__ import annotations

from .common import RowFormat, fast_image_or_video


class Llava(RowFormat):
    """``llava``: a ``conversations`` list whose messages use ``from``/``value``."""

    name = "llava"

    def detect(self, rec: dict, first: dict | None) -> bool:
        return isinstance(rec.get("conversations"), list) and first is not None and "from" in first

    def fast_media(self, rec: dict, ntok: int, nvid: int):
        return fast_image_or_video(rec, ntok, nvid)


FORMAT = Llava()
