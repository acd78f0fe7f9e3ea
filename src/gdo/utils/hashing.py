"""Stable hashing. Never Python's salted ``hash()`` for data."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def stable_hash(*parts: str | bytes, digest_size: int = 8) -> str:
    """Return a hex BLAKE2b digest of ``parts`` (joined with a 0x1f separator).

    Args:
        parts: strings (UTF-8 encoded) or bytes.
        digest_size: bytes of digest; the hex string is twice as long.

    Returns:
        Lower-case hex string, identical across processes, runs and machines.
    """
    h = hashlib.blake2b(digest_size=digest_size)
    for i, p in enumerate(parts):
        if i:
            h.update(b"\x1f")
        h.update(p.encode("utf-8") if isinstance(p, str) else p)
    return h.hexdigest()


def stable_int(*parts: str | bytes) -> int:
    """Return a stable unsigned 64-bit integer hash of ``parts``."""
    return int(stable_hash(*parts, digest_size=8), 16)


def config_hash(config: Any) -> str:
    """Hash a JSON-serialisable config (dict keys sorted) to a 16-char hex id."""
    blob = orjson.dumps(config, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return stable_hash(blob, digest_size=8)
