"""LLaVA export: ``{"id", "image" | "video", "conversations": [{"from", "value"}]}`` JSON array.

The layout LLaVA / LLaVA-NeXT / LLaVA-OneVision training reads (``--data_path FILE``). One image:
``"image": path`` and ``<image>\\n`` before the question; several images: ``"image": [paths]``
and one ``<image>`` per image; a video file: ``"video": path`` and ``<image>\\n`` (LLaVA-NeXT's
video rows use the image token for the video). LLaVA has no field for a video stored as frames,
so a frame list is written as the row's image list, ``"image": [frames]``, with a single
``<image>`` token (LLaVA-NeXT / OneVision's convention for a sampled video) and ``"video_id"``
naming the video, so LLaVA-Video-style readers (gdo's included) read it back as one video.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from gdo.export._common import IMAGE_TOKEN, candidate_rows, media_path, write_json


def llava_record(row: dict[str, Any], relative_to: Path | None = None) -> dict[str, Any]:
    """One LLaVA record for one candidate row (see module docstring)."""
    kind, media = row["media_kind"], [media_path(p, relative_to) for p in (row["media"] or [])]
    rec: dict[str, Any] = {"id": row["uid"]}
    if kind == "image":
        rec["image"] = media[0] if len(media) == 1 else media
        prefix = (IMAGE_TOKEN + "\n") * len(media)
    elif kind == "video":
        rec["video"] = media[0]
        prefix = IMAGE_TOKEN + "\n"
    elif kind == "frames":
        rec["video_id"] = row["row_id"]
        rec["image"] = media
        prefix = IMAGE_TOKEN + "\n"
    else:
        prefix = ""
    rec["conversations"] = [
        {"from": "human", "value": prefix + row["question"]},
        {"from": "gpt", "value": row["answer"]},
    ]
    if row.get("data_source"):
        rec["data_source"] = row["data_source"]
    return rec


def export_llava(candidates: pa.Table, out_dir: str | Path, *, uids: Sequence[str] | None = None,
                 name: str = "subset", relative_paths: bool = False) -> list[Path]:
    """Write ``out_dir/NAME.llava.json``; return ``[path]``.

    Raises:
        ValueError: see :func:`gdo.export._common.candidate_rows`.
    """
    out = Path(out_dir)
    rel = out.resolve() if relative_paths else None
    path = out / f"{name}.llava.json"
    write_json(path, [llava_record(r, rel) for r in candidate_rows(candidates, uids)])
    return [path]
