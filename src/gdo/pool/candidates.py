"""Rows -> candidates: one entry point over the row formats (GDO_METHOD.md section 2).

``parse_row(rec, fmt)`` reads one record of a file of format ``fmt`` with the format that owns it
(``gdo.pool.formats.for_row``); the row model and the rules shared by every format are in
``gdo.pool.formats.common`` (re-exported here).
"""

from __future__ import annotations

from typing import Any

from . import formats as F
from .formats.common import (ASSISTANT_ROLES, SYSTEM_ROLES, TOKEN_RE, USER_ROLES, Item, Pair,  # noqa: F401
                             Row, RowReject, content_id, media_fields, row_items)


def parse_row(rec: Any, fmt: str) -> Row:
    """Parse one pool record into a Row (kept pairs numbered k = 0, 1, ...).

    Args:
        rec: the decoded JSON object (dict) of the row.
        fmt: the file's format name (one of ``gdo.pool.formats.FORMATS``).

    Raises:
        RowReject: see ``gdo.pool.formats.common.parse_conversation``.
        ValueError: unknown ``fmt``.
    """
    return F.for_row(rec, F.get_format(fmt)).parse(rec)
