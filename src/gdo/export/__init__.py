"""Trainer exports of a selected subset: ms-swift, LLaMA-Factory and LLaVA.

``export(candidates, out_dir, fmt, uids=..., name=...)`` writes ONE file per set with one
candidate per record (the chosen (question, answer) turn with its own visual input, the row's
system prompt, and with ``context=True`` its earlier turns), absolute media paths by default, the
uid in each record. Every record of a file has the same field types, so ms-swift and
LLaMA-Factory load the subset and the baseline with ``datasets`` and concatenate them; frame
lists are sampled to at most 32 frames (docs/METHOD.md section 2). See :mod:`gdo.export._common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import pyarrow as pa

from gdo.export.llamafactory import export_llamafactory
from gdo.export.llava import export_llava
from gdo.export.swift import export_swift

EXPORTERS: dict[str, Callable[..., list[Path]]] = {
    "swift": export_swift,
    "llamafactory": export_llamafactory,
    "llava": export_llava,
}


def export(candidates: pa.Table, out_dir: str | Path, fmt: str, *, uids: Sequence[str] | None = None,
           name: str = "subset", relative_paths: bool = False, context: bool = False) -> list[Path]:
    """Export ``uids`` of ``candidates`` to ``out_dir`` in trainer format ``fmt``.

    Args:
        candidates: CANDIDATE_SCHEMA table (candidates.parquet).
        out_dir: folder for the files (created).
        fmt: ``swift`` | ``llamafactory`` | ``llava``.
        uids: the candidates to write, in order (e.g. the subset); all when None.
        name: file stem (``subset``, ``baseline``).
        relative_paths: media paths relative to ``out_dir`` instead of absolute.
        context: keep the earlier turns of a multi-turn row before the chosen turn.

    Returns:
        The paths written.

    Raises:
        ValueError: unknown ``fmt``, missing columns, a uid not in ``candidates``, an unreadable
            frame or pool file (named).
    """
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {sorted(EXPORTERS)}")
    return EXPORTERS[fmt](candidates, out_dir, uids=uids, name=name, relative_paths=relative_paths,
                          context=context)


__all__ = ["EXPORTERS", "export", "export_swift", "export_llamafactory", "export_llava"]
