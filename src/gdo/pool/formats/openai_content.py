"""OpenAI / LLaMA-Factory v1 content lists: messages whose ``content`` is a list of parts
``{"type": "text" | "image" | "image_url" | "input_image" | "video" | "video_url" | "input_video", ...}``.

Media parts are media in place (a part's own turn refers to it); rewrite keeps the parts form and,
when a kept turn relied on media shown in a dropped turn, puts that part first in the kept user
message. A row may mix string and list contents. No fast path: every row takes ``parse``.
"""

from __future__ import annotations

from .common import RowFormat


class OpenAIContent(RowFormat):
    """``openai_content``: the first message's ``content`` is a list."""

    name = "openai_content"

    def detect(self, rec: dict, first: dict | None) -> bool:
        return first is not None and isinstance(first.get("content"), list)

    def fast(self, rec: dict):
        return None


FORMAT = OpenAIContent()
