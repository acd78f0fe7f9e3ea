"""Pool containers: JSONL, JSON arrays, Parquet and Hugging Face ``save_to_disk`` folders.

Container reading is shared by every row format (``gdo.pool.formats``): a record stream yields
``(line, record, error)``. A saved HF dataset is read with pyarrow (Arrow IPC files; the ``datasets``
package is not needed; a DatasetDict folder reads its splits in ``dataset_dict.json`` order).

``line`` is the 1-based line of a JSONL file, or the 1-based record index elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import orjson

#: Lines longer than this are rejected (``line_too_long``) without being parsed.
MAX_LINE_BYTES = 8 << 20

#: A record stream yields (line, record, error): error is (reason, detail) or None.
Record = tuple[int, Any, "tuple[str, str] | None"]


class FormatError(Exception):
    """A whole file cannot be read (``reason``: unknown_format, malformed_json, unreadable_file)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def detect_container(path: str | os.PathLike) -> str:
    """Return ``jsonl``, ``json``, ``parquet`` or ``hf_dataset`` for a pool path.

    Raises:
        FormatError: ``unreadable_file`` (missing) or ``unknown_format``.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "dataset_dict.json").exists() or (p / "state.json").exists() or any(p.glob("*.arrow")):
            return "hf_dataset"
        raise FormatError("unknown_format", f"{p} is a folder but not a saved Hugging Face dataset")
    if not p.exists():
        raise FormatError("unreadable_file", f"{p} does not exist")
    if p.suffix.lower() == ".parquet":
        return "parquet"
    if p.suffix.lower() == ".arrow":
        return "hf_dataset"
    with open(p, "rb") as f:
        head = f.read(4096)
    if head[:4] == b"PAR1":
        return "parquet"
    s = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not s:
        raise FormatError("unknown_format", f"{p} is empty")
    if s[:1] == b"[":
        return "json"
    if s[:1] == b"{":
        if p.suffix.lower() == ".json":
            # a .json file may still be JSON Lines; a single object spanning lines is not.
            first = s.split(b"\n", 1)[0]
            try:
                orjson.loads(first)
                return "jsonl"
            except orjson.JSONDecodeError:
                raise FormatError("unknown_format", f"{p}: a JSON object, not an array of rows or JSON Lines") from None
        return "jsonl"
    raise FormatError("unknown_format", f"{p}: not JSON, JSON Lines, Parquet or a saved HF dataset")


def _decode_line(line: bytes, lineno: int, is_last_unterminated: bool, max_line_bytes: int,
                 offset: int = -1) -> Record:
    """Decode one JSONL line (``offset``: its byte offset in the file) or say why it does not."""
    if len(line) > max_line_bytes:
        return lineno, None, ("line_too_long", f"{len(line)} bytes > limit {max_line_bytes}")
    try:
        return lineno, orjson.loads(line), None
    except orjson.JSONDecodeError as e:
        if not line.strip():
            return lineno, None, ("blank_line", "empty or whitespace-only line")
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as u:
            where = f" (byte offset {offset + u.start} in the file)" if offset >= 0 else ""
            return lineno, None, ("not_utf8", f"invalid UTF-8 byte 0x{line[u.start]:02x} at column {u.start + 1}{where}")
        msg = str(e)
        if is_last_unterminated:
            msg = f"last line has no newline and does not parse (truncated file?): {msg}"
        return lineno, None, ("malformed_json", msg)


def _only_blank_after(f, pos: int, size: int) -> bool:
    """True when bytes [pos, size) of the open file are all whitespace (stops at the first other)."""
    f.seek(pos)
    while pos < size:
        b = f.read(min(1 << 20, size - pos))
        if not b:
            break
        if b.strip():
            return False
        pos += len(b)
    return True


#: Error code of a blank line after the last non-blank line of a file: not a row (skipped, counted).
BLANK_TRAILING = "blank_trailing"


def iter_jsonl(path: str | os.PathLike, start: int = 0, end: int | None = None, first_line: int = 1,
               max_line_bytes: int = MAX_LINE_BYTES, chunk_bytes: int = 1 << 20) -> Iterator[Record]:
    """Yield (line, record, error) for the JSONL lines starting in byte range [start, end).

    ``start`` must be 0 or just after a newline; ``first_line`` is the 1-based number of the line
    at ``start``. Reads ``chunk_bytes`` at a time (memory-bounded, except for one very long line).
    The 1 MiB default keeps each chunk and its lines in CPU cache while they are parsed: measured
    about 1.6x faster than 32 MiB chunks on a 700 MB pool (benchmarks/bench_ingest.py).

    Blank (empty or whitespace-only) lines followed by a non-blank line are ``blank_line`` errors
    (a row each); blank lines at the end of the file are ``blank_trailing`` (not rows: callers skip
    and count them). A line that is not UTF-8 is ``not_utf8`` with its byte offset in the file.
    """
    path = os.fspath(path)
    size = os.path.getsize(path)
    end = size if end is None else min(end, size)
    lineno = first_line
    chunk_bytes = max(chunk_bytes, 4)  # the first read must see a whole byte order mark
    held: list[Record] = []  # blank lines not yet known to be trailing
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        parts: list[bytes] = []  # the unfinished line (kept as pieces: a long line is joined once)
        while pos < end:
            buf = f.read(min(chunk_bytes, end - pos))
            if not buf:
                break
            if pos == 0 and buf.startswith(b"\xef\xbb\xbf"):
                buf = memoryview(buf)[3:].tobytes()  # UTF-8 byte order mark
                pos += 3
            data_off = pos - sum(len(x) for x in parts)  # file offset of the unfinished line
            pos += len(buf)
            cut = buf.rfind(b"\n")
            if cut < 0:
                parts.append(buf)
                continue
            if parts:
                parts.append(buf)
                data = b"".join(parts)
                cut += len(data) - len(buf)
            else:
                data = buf
            lines = data[:cut].split(b"\n")
            parts = [data[cut + 1:]] if cut + 1 < len(data) else []
            loads = orjson.loads
            for i, line in enumerate(lines):
                if len(line) <= max_line_bytes:
                    try:
                        rec = loads(line)
                        if held:
                            yield from held
                            held.clear()
                        yield lineno, rec, None
                        lineno += 1
                        continue
                    except orjson.JSONDecodeError:
                        pass
                r = _decode_line(line, lineno, False, max_line_bytes,
                                 data_off + sum(len(x) for x in lines[:i]) + i)
                lineno += 1
                if r[2][0] == "blank_line":
                    held.append(r)
                    continue
                if held:
                    yield from held
                    held.clear()
                yield r
        rest = b"".join(parts)
        if rest:
            r = _decode_line(rest, lineno, pos >= size, max_line_bytes, pos - len(rest))
            if r[2] is not None and r[2][0] == "blank_line":
                held.append(r)
            else:
                if held:
                    yield from held
                    held.clear()
                yield r
        trailing = end >= size or (bool(held) and _only_blank_after(f, end, size))
    for ln, _, err in held:
        yield (ln, None, (BLANK_TRAILING, "blank line at the end of the file")) if trailing else (ln, None, err)


def jsonl_ranges(path: str | os.PathLike, n: int) -> list[tuple[int, int, int]]:
    """Split a JSONL file into ``n`` byte ranges on line boundaries: [(start, end, first_line)]."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if n <= 1 or size < (1 << 20):
        return [(0, size, 1)]
    cuts = [0]
    with open(path, "rb") as f:
        for i in range(1, n):
            target = max(size * i // n, cuts[-1])
            f.seek(target)
            f.readline()
            p = f.tell()
            if p > cuts[-1] and p < size:
                cuts.append(p)
    cuts.append(size)
    out = []
    line = 1
    with open(path, "rb") as f:
        for a, b in zip(cuts[:-1], cuts[1:]):
            out.append((a, b, line))
            f.seek(a)
            remaining = b - a
            while remaining > 0:
                chunk = f.read(min(remaining, 64 << 20))
                if not chunk:
                    break
                line += chunk.count(b"\n")
                remaining -= len(chunk)
    return out


def iter_json_array(path: str | os.PathLike) -> Iterator[Record]:
    """Yield (index, record, None) for a JSON array file.

    Raises:
        FormatError: ``malformed_json`` / ``not_utf8`` when the file does not parse (no row can be
        located in a broken JSON array), ``unknown_format`` when it is not an array.
    """
    raw = Path(path).read_bytes()
    bom = 3 if raw.startswith(b"\xef\xbb\xbf") else 0
    if bom:
        raw = raw[3:]
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as u:
            raise FormatError("not_utf8", f"invalid UTF-8 byte 0x{raw[u.start]:02x} at byte offset {u.start + bom}") from None
        raise FormatError("malformed_json", str(e)) from None
    if not isinstance(data, list):
        raise FormatError("unknown_format", f"top-level JSON is a {type(data).__name__}, not an array of rows")
    del raw
    for i, rec in enumerate(data, 1):
        yield i, rec, None


def _arrow_tables(path: Path) -> Iterator[Any]:
    import pyarrow as pa

    def read(f: Path):
        try:
            with pa.memory_map(str(f)) as src:
                return pa.ipc.open_stream(src).read_all()
        except pa.ArrowInvalid:
            with pa.memory_map(str(f)) as src:
                return pa.ipc.open_file(src).read_all()

    if path.is_file():
        yield read(path)
        return
    if (path / "dataset_dict.json").exists():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        for s in splits:
            yield from _arrow_tables(path / s)
        return
    files: list[Path] = []
    state = path / "state.json"
    if state.exists():
        files = [path / d["filename"] for d in json.loads(state.read_text()).get("_data_files", [])]
    if not files:
        files = sorted(path.glob("*.arrow"))
    for f in files:
        yield read(f)


def iter_table_records(path: str | os.PathLike, container: str, batch_rows: int = 8192) -> Iterator[Record]:
    """Yield (index, record, None) from a Parquet file or a saved HF dataset, batch by batch."""
    import pyarrow.parquet as pq

    i = 0
    if container == "parquet":
        batches = pq.ParquetFile(os.fspath(path)).iter_batches(batch_size=batch_rows)
    else:
        batches = (b for t in _arrow_tables(Path(path)) for b in t.to_batches(max_chunksize=batch_rows))
    for b in batches:
        for rec in b.to_pylist():
            i += 1
            yield i, rec, None


def sample_records(path: str | os.PathLike, container: str, n: int = 64,
                   errors: list | None = None) -> list[Any]:
    """Up to ``n`` parseable records from the start of a file (for format detection).

    ``errors``: when given, the ``(line, (reason, detail))`` of the unreadable lines met on the way
    are appended (so detection can say ``not_utf8`` with the byte offset rather than "unknown").
    """
    out: list[Any] = []
    if container == "jsonl":
        it = iter_jsonl(path, chunk_bytes=1 << 20)
    elif container == "json":
        it = iter_json_array(path)
    else:
        it = iter_table_records(path, container, batch_rows=n)
    for ln, rec, err in it:
        if err is None:
            out.append(rec)
            if len(out) >= n:
                break
        elif errors is not None:
            errors.append((ln, err))
    return out
