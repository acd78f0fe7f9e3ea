"""Row formats (one module each) and pool containers.

Each format module holds a :class:`~gdo.pool.formats.common.RowFormat` (``FORMAT``) with
``detect``, ``parse`` (row -> turn pairs + media references), ``fast`` (the ingest fast path for
the common shapes; equal to ``parse`` where it answers) and ``rewrite`` (chosen turns -> row in the
pool's own format). What the formats share (roles, media tokens, the row model) is in ``common``;
container reading (JSONL, JSON, Parquet, HF folders) in ``containers``.

- ``llava_ov``: ``{"id", "images": [path], "messages": [{"role", "content"}], "data_source"}``
- ``llava_video``: ``{"id", "video_id" | "video", "images": [frame paths] | video file,
  "messages" | "conversations", "data_source"}`` (``images`` is one frame list = one video)
- ``llava``: ``{"conversations": [{"from": "human"|"gpt", "value"}], "image" | "video"}``
- ``sharegpt``: ShareGPT / ms-swift / LLaMA-Factory ``{"messages", "images", "videos"}`` with
  ``<image>``/``<video>`` tokens
- ``openai_content``: LLaMA-Factory / OpenAI content lists ``{"type": "text"|"image_url"|..., ...}``

A file's format is detected from its first records (``detect_row_format``; ``--format`` forces
one); each row is then read by :func:`for_row`, which also recognises a LLaVA-Video row (frame
list) inside a file of another format.
"""

from __future__ import annotations

from typing import Any

from . import llava, llava_ov, llava_video, openai_content, sharegpt
from .common import RowFormat
from .containers import (BLANK_TRAILING, MAX_LINE_BYTES, FormatError, Record, detect_container, iter_json_array,  # noqa: F401
                         iter_jsonl, iter_table_records, jsonl_ranges, sample_records)

#: Format name -> its RowFormat.
REGISTRY: dict[str, RowFormat] = {m.FORMAT.name: m.FORMAT for m in
                                  (llava_ov, llava_video, llava, sharegpt, openai_content)}
FORMATS = tuple(REGISTRY)
#: Detection order: the first format whose ``detect`` accepts a record wins (sharegpt accepts all).
DETECT_ORDER = tuple(REGISTRY[n] for n in ("openai_content", "llava_video", "llava", "llava_ov", "sharegpt"))
_LLAVA_VIDEO = REGISTRY["llava_video"]


def get_format(name: str) -> RowFormat:
    """The RowFormat called ``name``. Raises ValueError naming the known formats."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; choose one of {', '.join(FORMATS)}") from None


def _conversation(rec: dict) -> list | None:
    msgs = rec.get("messages")
    conv = rec.get("conversations")
    return msgs if isinstance(msgs, list) else conv if isinstance(conv, list) else None


def detect_row_format(records: list[Any]) -> str | None:
    """Guess the row format from sample records (first decisive record wins); None if no record fits."""
    for rec in records:
        if not isinstance(rec, dict):
            continue
        conv = _conversation(rec)
        if conv is None:
            continue
        first = next((m for m in conv if isinstance(m, dict)), None)
        for f in DETECT_ORDER:
            if f.detect(rec, first):
                return f.name
    return None


def for_row(rec: Any, fmt: RowFormat) -> RowFormat:
    """The format that reads one record of a file of format ``fmt``: ``fmt`` itself, or
    ``llava_video`` for a LLaVA-Video row (``video_id``, or ``video`` beside ``images``: its
    ``images`` is one frame list) in a file of another format, e.g. a LLaVA file (issue 13)."""
    if not fmt.frame_list and type(rec) is dict and ("video_id" in rec or ("video" in rec and "images" in rec)):
        return _LLAVA_VIDEO
    return fmt
