"""LLaMA-Factory export: sharegpt-style JSON plus a ``dataset_info.json`` that registers it.

Records are ``{"messages": [{"role", "content"}...], "images": [...], "videos": [...]}`` with
``<image>`` / ``<video>`` placeholders, the layout of LLaMA-Factory's own ``mllm_demo.json``.
A video file is one ``videos`` entry; a frame list is one ``videos`` entry that is the list of
frame paths (LLaMA-Factory treats a nested list of images as an already-sampled video). Frame-list
rows go to ``NAME_frames.llamafactory.json`` with their own dataset entry, so every file has one
column type. Use it with ``dataset_dir: OUT`` and ``dataset: gdo_NAME`` (and ``gdo_NAME_frames``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from gdo.export._common import candidate_rows, split_frames, write_json
from gdo.export.swift import swift_record


def dataset_info_entry(file_name: str) -> dict[str, Any]:
    """The ``dataset_info.json`` entry LLaMA-Factory needs for one exported file."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images", "videos": "videos"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }


def export_llamafactory(candidates: pa.Table, out_dir: str | Path, *, uids: Sequence[str] | None = None,
                        name: str = "subset", relative_paths: bool = False) -> list[Path]:
    """Write ``NAME.llamafactory.json`` (+ frames file) and merge entries into ``dataset_info.json``.

    Existing entries of ``out_dir/dataset_info.json`` with other names are kept.

    Returns:
        The files written, ``dataset_info.json`` last.

    Raises:
        ValueError: see :func:`gdo.export._common.candidate_rows`; a corrupt existing dataset_info.json.
    """
    out = Path(out_dir)
    rel = out.resolve() if relative_paths else None
    main, frames = split_frames(candidate_rows(candidates, uids))
    info_path = out / "dataset_info.json"
    info: dict[str, Any] = {}
    if info_path.exists():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{info_path}: not valid JSON ({e})") from e
    files = []
    for suffix, rows in (("", main), ("_frames", frames)):
        if suffix and not rows:
            continue
        fname = f"{name}{suffix}.llamafactory.json"
        write_json(out / fname, [swift_record(r, rel) for r in rows])
        info[f"gdo_{name}{suffix}"] = dataset_info_entry(fname)
        files.append(out / fname)
    write_json(info_path, dict(sorted(info.items())))
    files.append(info_path)
    return files
