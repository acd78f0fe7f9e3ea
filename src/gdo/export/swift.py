"""ms-swift export: ``NAME.swift.jsonl``, one ``{"messages", "images", "videos", "gdo_uid"}`` per line.

ms-swift's standard multimodal format (``swift sft --dataset FILE``): the first user message
carries one ``<image>`` token per image or one ``<video>`` token per video, and the paths are
listed in ``images`` / ``videos`` (always lists of strings, see :mod:`gdo.export._common`; a frame
list is one MP4 under ``OUT/videos/``). A system prompt of the pool row is the first message
(``role: system``). ``gdo_uid`` is dropped by ms-swift's preprocessing (not a standard key).
With ``context=True`` the earlier turns of a multi-turn row precede the chosen turn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa

from gdo.export._common import UID_FIELD, candidate_rows, context_turns, system_prompts, visual, write_jsonl


def chat_record(row: dict[str, Any], out_dir: Path, relative_to: Path | None = None, *,
                system: str | None = None, context: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """One ms-swift / LLaMA-Factory record (``messages``, ``images``, ``videos``, ``gdo_uid``).

    Args:
        row: a candidate row (:func:`gdo.export._common.candidate_rows`).
        out_dir: the export folder (frame-list MP4s go to ``out_dir/videos``).
        relative_to: write media paths relative to this folder (None: absolute).
        system: the row's system prompt, kept as the first message.
        context: earlier (question, answer) turns put before the chosen turn.
    """
    prefix, images, videos = visual(row, out_dir, relative_to)
    msgs: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    turns = [*context, (row["question"], row["answer"])]
    for j, (q, a) in enumerate(turns):
        msgs.append({"role": "user", "content": (prefix if j == 0 else "") + q})
        msgs.append({"role": "assistant", "content": a})
    return {"messages": msgs, "images": images, "videos": videos, UID_FIELD: row["uid"]}


def export_swift(candidates: pa.Table, out_dir: str | Path, *, uids: Sequence[str] | None = None,
                 name: str = "subset", relative_paths: bool = False, context: bool = False) -> list[Path]:
    """Write ``out_dir/NAME.swift.jsonl``; return ``[path]``.

    Args:
        candidates: CANDIDATE_SCHEMA table.
        out_dir: output folder (created).
        uids: candidates to export, in order; all when None.
        name: file stem.
        relative_paths: write media paths relative to ``out_dir`` instead of absolute.
        context: keep the earlier turns of multi-turn rows as context (``--export-context``).

    Raises:
        ValueError: see :func:`gdo.export._common.candidate_rows`; an unreadable frame or pool file.
    """
    out = Path(out_dir)
    rel = out.resolve() if relative_paths else None
    rows = candidate_rows(candidates, uids)
    sys_of = system_prompts(rows)
    ctx = context_turns(candidates, rows) if context else {}
    path = out / f"{name}.swift.jsonl"
    write_jsonl(path, [chat_record(r, out, rel, system=sys_of.get(r["uid"]), context=ctx.get(r["uid"], ()))
                       for r in rows])
    return [path]
