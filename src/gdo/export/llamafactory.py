"""LLaMA-Factory export: ``NAME.llamafactory.json`` plus its entry ``gdo_NAME`` in ``dataset_info.json``.

Records are the ms-swift records (:func:`gdo.export.swift.chat_record`): ``{"messages": [{"role",
"content"}...], "images": [...], "videos": [...], "gdo_uid"}`` with ``<image>`` / ``<video>``
placeholders, the layout of LLaMA-Factory's own ``mllm_demo.json``; a frame list is one MP4 path
(see :mod:`gdo.export._common`), so every record has the same field types and ``gdo_subset`` and
``gdo_baseline`` load and concatenate. LLaMA-Factory's sharegpt converter reads the columns
named in the entry and drops the others (``gdo_uid``). Use ``dataset_dir: OUT`` and
``dataset: gdo_subset``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from gdo.export._common import candidate_rows, context_turns, system_prompts, write_json
from gdo.export.swift import chat_record


def dataset_info_entry(file_name: str) -> dict[str, Any]:
    """The ``dataset_info.json`` entry LLaMA-Factory needs for one exported file."""
    return {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images", "videos": "videos"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"},
    }


def export_llamafactory(candidates: pa.Table, out_dir: str | Path, *, uids: Sequence[str] | None = None,
                        name: str = "subset", relative_paths: bool = False, context: bool = False) -> list[Path]:
    """Write ``NAME.llamafactory.json`` and merge its entry into ``dataset_info.json``.

    Existing entries of ``out_dir/dataset_info.json`` with other names are kept.

    Returns:
        The files written, ``dataset_info.json`` last.

    Raises:
        ValueError: see :func:`gdo.export._common.candidate_rows`; a corrupt existing dataset_info.json.
    """
    out = Path(out_dir)
    rel = out.resolve() if relative_paths else None
    rows = candidate_rows(candidates, uids)
    info_path = out / "dataset_info.json"
    info: dict[str, Any] = {}
    if info_path.exists():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{info_path}: not valid JSON ({e})") from e
    sys_of = system_prompts(rows)
    ctx = context_turns(candidates, rows) if context else {}
    fname = f"{name}.llamafactory.json"
    write_json(out / fname, [chat_record(r, out, rel, system=sys_of.get(r["uid"]), context=ctx.get(r["uid"], ()))
                             for r in rows])
    info[f"gdo_{name}"] = dataset_info_entry(fname)
    write_json(info_path, dict(sorted(info.items())))
    return [out / fname, info_path]
