"""Trainer exports of a selected subset: ms-swift, LLaMA-Factory and LLaVA.

``export(candidates, out_dir, fmt, uids=..., name=...)`` writes one candidate per record (the
chosen (question, answer) turn with its own visual input), absolute media paths by default.
Videos stay video entries; see each module for how a frame list is written.
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
           name: str = "subset", relative_paths: bool = False) -> list[Path]:
    """Export ``uids`` of ``candidates`` to ``out_dir`` in trainer format ``fmt``.

    Args:
        candidates: CANDIDATE_SCHEMA table (candidates.parquet).
        out_dir: folder for the files (created).
        fmt: ``swift`` | ``llamafactory`` | ``llava``.
        uids: the candidates to write, in order (e.g. the subset); all when None.
        name: file stem (``subset``, ``baseline``).
        relative_paths: media paths relative to ``out_dir`` instead of absolute.

    Returns:
        The paths written.

    Raises:
        ValueError: unknown ``fmt``, missing columns, or a uid not in ``candidates``.
    """
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {sorted(EXPORTERS)}")
    return EXPORTERS[fmt](candidates, out_dir, uids=uids, name=name, relative_paths=relative_paths)


__all__ = ["EXPORTERS", "export", "export_swift", "export_llamafactory", "export_llava"]
