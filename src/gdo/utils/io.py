"""Atomic writes: a partial file is never left under the final name."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

import orjson


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success fsync and rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is untouched.

    Raises:
        ValueError: if ``mode`` is not a write mode ("w", "wb").
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": "\n"} if mode == "w" else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would (0666 & ~umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, (stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH) & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def dumps_json(obj: Any, indent: bool = True) -> bytes:
    """Deterministic JSON bytes (sorted keys, numpy values allowed, trailing newline)."""
    opt = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
    if indent:
        opt |= orjson.OPT_INDENT_2
    return orjson.dumps(obj, option=opt) + b"\n"


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as deterministic, indented JSON to ``path`` atomically."""
    write_bytes_atomic(path, dumps_json(obj))


def write_parquet_atomic(path: str | os.PathLike, table: Any, **kwargs: Any) -> None:
    """Write a pyarrow Table to ``path`` atomically (zstd compression by default)."""
    import pyarrow.parquet as pq

    kwargs.setdefault("compression", "zstd")
    with atomic_open(path, "wb") as f:
        pq.write_table(table, f, **kwargs)


def output_dir(path: str | os.PathLike) -> Path:
    """Create the output folder ``path`` (and its parents) if needed and return it.

    Raises:
        ValueError: ``path`` (or a parent) exists and is not a folder, or cannot be created; the
            message names it (an ``--out`` mistake, never a traceback).
    """
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"output folder {p}: a file of that name exists (give --out a folder)") from None
    except NotADirectoryError:
        raise ValueError(f"output folder {p}: a parent of it is a file, not a folder") from None
    except OSError as e:
        raise ValueError(f"output folder {p}: cannot be created ({e.strerror or e})") from None
    return p
