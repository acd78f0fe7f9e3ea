"""Parquet shard store: atomic shards, completion markers, keyed by stage + config hash.

Layout: ``ROOT/<stage>/<config hash>/`` holds ``config.json`` (the config that was hashed) and,
per shard, ``<name>.parquet`` plus the completion marker ``<name>.done.json``
(``{"name", "rows", "bytes", "blake2b"}``); a shard that failed every attempt has
``<name>.failed.json`` (``{"name", "error", "attempts"}``) instead, until it succeeds. A shard is complete only when its marker exists and
the Parquet file has exactly the recorded size and digest, so a file cut short by a crash (or
any torn write) is never taken as finished: it is recomputed. Both files are written through
:func:`gdo.utils.io.atomic_open` (temporary file, fsync, rename), the marker last.

Shard names are ``{index:06d}-{hash of the shard's keys}``: changing which items a shard holds
changes its name, so a stale shard is never reused for different work.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from gdo.utils.hashing import config_hash, stable_hash
from gdo.utils.io import write_bytes_atomic, write_json_atomic


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def chunk(seq: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """Split ``seq`` into consecutive chunks of ``size`` (last one shorter). ``size`` >= 1."""
    if size < 1:
        raise ValueError(f"shard size must be >= 1, got {size}")
    return [seq[i:i + size] for i in range(0, len(seq), size)]


class ShardStore:
    """Shards of one stage under one config (see module doc).

    Args:
        root: folder holding every stage.
        stage: stage name (e.g. "media", "text", "model").
        config: JSON-serialisable dict; its hash selects the shard folder.
    """

    def __init__(self, root: str | os.PathLike, stage: str, config: dict):
        self.stage = stage
        self.config = dict(config)
        self.hash = config_hash({"stage": stage, **self.config})
        self.dir = Path(root) / stage / self.hash
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "config.json"
        if not cfg.exists():
            write_json_atomic(cfg, {"stage": stage, "config": self.config, "hash": self.hash})
        self.clean_partial()

    @staticmethod
    def shard_name(index: int, keys: Iterable[str]) -> str:
        """Name of shard ``index`` holding ``keys`` (order matters)."""
        return f"{index:06d}-{stable_hash(*[str(k) for k in keys], digest_size=6)}"

    def _paths(self, name: str) -> tuple[Path, Path]:
        return self.dir / f"{name}.parquet", self.dir / f"{name}.done.json"

    def clean_partial(self) -> int:
        """Remove temporary files left by interrupted atomic writes; returns how many."""
        n = 0
        for p in self.dir.glob(".*.tmp"):
            try:
                p.unlink()
                n += 1
            except FileNotFoundError:
                pass
        return n

    def is_complete(self, name: str) -> bool:
        """True when the shard's marker exists and matches its Parquet file (size and digest)."""
        data, marker = self._paths(name)
        if not marker.exists() or not data.exists():
            return False
        try:
            m = orjson.loads(marker.read_bytes())
            if data.stat().st_size != m["bytes"]:
                return False
            return _digest(data.read_bytes()) == m["blake2b"]
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def read(self, name: str) -> pa.Table:
        """Read a complete shard.

        Raises:
            FileNotFoundError: the shard is not complete.
        """
        if not self.is_complete(name):
            raise FileNotFoundError(f"shard {name} of stage {self.stage} is not complete in {self.dir}")
        return pq.read_table(self._paths(name)[0])

    def write(self, name: str, table: pa.Table) -> None:
        """Write ``table`` as shard ``name``: Parquet atomically, then the completion marker."""
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        blob = sink.getvalue().to_pybytes()
        data, marker = self._paths(name)
        if marker.exists():
            marker.unlink()
        write_bytes_atomic(data, blob)
        write_json_atomic(marker, {"name": name, "rows": table.num_rows, "bytes": len(blob),
                                   "blake2b": _digest(blob)})
        failed = self.dir / f"{name}.failed.json"
        if failed.exists():
            failed.unlink()

    def write_failure(self, name: str, error: str, attempts: int) -> None:
        """Record that shard ``name`` failed ``attempts`` times with ``error`` (``<name>.failed.json``);
        a later successful :meth:`write` removes the record."""
        write_json_atomic(self.dir / f"{name}.failed.json", {"name": name, "error": error, "attempts": attempts})

    def failures(self) -> dict[str, str]:
        """``{shard name: error}`` of shards recorded as failed and not completed since."""
        out = {}
        for p in sorted(self.dir.glob("*.failed.json")):
            name = p.name[: -len(".failed.json")]
            if not self.is_complete(name):
                try:
                    out[name] = orjson.loads(p.read_bytes()).get("error", "?")
                except (OSError, ValueError):
                    out[name] = "?"
        return out

    def complete_names(self) -> list[str]:
        """Names of all complete shards in this folder, sorted."""
        names = sorted(p.name[: -len(".done.json")] for p in self.dir.glob("*.done.json"))
        return [n for n in names if self.is_complete(n)]
