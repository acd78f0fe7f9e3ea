"""ms-swift export: ``{"messages": [...], "images": [...], "videos": [...]}`` JSON lines.

ms-swift's standard multimodal format (``swift sft --dataset FILE``): the user message carries
one ``<image>`` token per image or one ``<video>`` token per video, and the paths are listed in
``images`` / ``videos``. A video file stays one ``videos`` entry. A frame list (a video stored as
frames) is written as one ``videos`` entry that is itself the list of frame paths, which ms-swift
hands to the model's video loader (the Qwen2/2.5/3-VL loader, ``qwen_vl_utils.fetch_video``,
accepts a list of frames). Those rows go to a separate file ``NAME.swift_frames.jsonl`` so that
each file has one column type (ms-swift reads JSON lines with ``datasets``, which needs that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from gdo.export._common import IMAGE_TOKEN, VIDEO_TOKEN, candidate_rows, media_path, split_frames, write_jsonl


def swift_record(row: dict[str, Any], relative_to: Path | None = None) -> dict[str, Any]:
    """One ms-swift record for one candidate row (see module docstring for the layout)."""
    kind, media = row["media_kind"], [media_path(p, relative_to) for p in (row["media"] or [])]
    images: list[Any] = []
    videos: list[Any] = []
    if kind == "image":
        prefix, images = IMAGE_TOKEN * len(media), media
    elif kind == "video":
        prefix, videos = VIDEO_TOKEN, media[:1]
    elif kind == "frames":
        prefix, videos = VIDEO_TOKEN, [media]
    else:
        prefix = ""
    return {
        "messages": [
            {"role": "user", "content": prefix + row["question"]},
            {"role": "assistant", "content": row["answer"]},
        ],
        "images": images,
        "videos": videos,
    }


def export_swift(candidates: pa.Table, out_dir: str | Path, *, uids: Sequence[str] | None = None,
                 name: str = "subset", relative_paths: bool = False) -> list[Path]:
    """Write ``out_dir/NAME.swift.jsonl`` (+ ``NAME.swift_frames.jsonl`` when frame lists exist).

    Args:
        candidates: CANDIDATE_SCHEMA table.
        out_dir: output folder (created).
        uids: candidates to export, in order; all when None.
        name: file stem.
        relative_paths: write media paths relative to ``out_dir`` instead of absolute.

    Returns:
        The files written (the main file always, even when empty).

    Raises:
        ValueError: see :func:`gdo.export._common.candidate_rows`.
    """
    out = Path(out_dir)
    rel = out.resolve() if relative_paths else None
    main, frames = split_frames(candidate_rows(candidates, uids))
    files = [out / f"{name}.swift.jsonl"]
    write_jsonl(files[0], (swift_record(r, rel) for r in main))
    if frames:
        files.append(out / f"{name}.swift_frames.jsonl")
        write_jsonl(files[1], (swift_record(r, rel) for r in frames))
    return files
