"""LLaVA export: ``{"id", "image" | "video", "conversations": [{"from", "value"}]}`` JSON array.

The layout LLaVA / LLaVA-NeXT / LLaVA-OneVision training reads (``--data_path FILE``, with
``json.load``). ``id`` is the candidate uid. One image: ``"image": path`` and ``<image>\\n``
before the first question; several images: ``"image": [paths]`` and one ``<image>`` per image;
a video file: ``"video": path`` and ``<image>\\n`` (LLaVA-NeXT's video rows use the image token
for the video). LLaVA has no field for a video stored as frames, so a frame list is written as
the row's image list, ``"image": [frames]`` sampled to at most 32 frames with the method's index
rule (docs/METHOD.md section 2), with a single ``<image>`` token (LLaVA-NeXT / OneVision's
convention for a sampled video) and ``"video_id"`` naming the video. LLaVA's format has no
per-record system prompt: a pool row's system prompt is kept in a ``system`` field (LLaVA ignores
it; its conversation template supplies the system prompt). With ``context=True`` the earlier turns
of a multi-turn row precede the chosen turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from gdo.export._common import (IMAGE_TOKEN, candidate_rows, context_turns, media_path, sampled_frames,
                                system_prompts, write_json)


def llava_record(row: dict[str, Any], relative_to: Path | None = None, *, system: str | None = None,
                 context: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """One LLaVA record for one candidate row (see module docstring)."""
    kind, media = row["media_kind"], list(row["media"] or [])
    rec: dict[str, Any] = {"id": row["uid"]}
    if kind == "image":
        paths = [media_path(p, relative_to) for p in media]
        rec["image"] = paths[0] if len(paths) == 1 else paths
        prefix = (IMAGE_TOKEN + "\n") * len(paths)
    elif kind == "video":
        rec["video"] = media_path(media[0], relative_to)
        prefix = IMAGE_TOKEN + "\n"
    elif kind == "frames":
        rec["video_id"] = row["row_id"]
        rec["image"] = [media_path(p, relative_to) for p in sampled_frames(media)]
        prefix = IMAGE_TOKEN + "\n"
    else:
        prefix = ""
    conv = []
    for j, (q, a) in enumerate([*context, (row["question"], row["answer"])]):
        conv += [{"from": "human", "value": (prefix if j == 0 else "") + q}, {"from": "gpt", "value": a}]
    rec["conversations"] = conv
    if system:
        rec["system"] = system
    if row.get("data_source"):
        rec["data_source"] = row["data_source"]
    return rec


def export_llava(candidates: pa.Table, out_dir: str | Path, *, uids: Sequence[str] | None = None,
                 name: str = "subset", relative_paths: bool = False, context: bool = False) -> list[Path]:
    """Write ``out_dir/NAME.llava.json``; return ``[path]``.

    Raises:
        ValueError: see :func:`gdo.export._common.candidate_rows`; an unreadable pool file.
    """
    out = Path(out_dir)
    rel = out.resolve() if relative_paths else None
    rows = candidate_rows(candidates, uids)
    sys_of = system_prompts(rows)
    ctx = context_turns(candidates, rows) if context else {}
    path = out / f"{name}.llava.json"
    write_json(path, [llava_record(r, rel, system=sys_of.get(r["uid"]), context=ctx.get(r["uid"], ()))
                      for r in rows])
    return [path]
