"""The one media error type (reject reasons listed in docs/DESIGN.md)."""

from __future__ import annotations


class MediaError(Exception):
    """A media file or reference cannot be used. ``reason`` is a short reject code.

    Reasons: ``missing_media``, ``unreadable_media`` (image that does not fully decode),
    ``corrupt_video`` (cannot open / no frame / decode failed), ``not_a_video`` (an image or text
    behind a video name), ``media_outside_root``, ``remote_media`` (http/https/ftp link),
    ``inline_media`` (``data:`` URI), ``windows_path`` (``C:\\...``), ``aspect_ratio`` (long side / short side > 200),
    ``wrong_type`` (empty or non-string path).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
