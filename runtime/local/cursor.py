"""Opaque page cursors: the (time, id) position of the last row of a page, as URL-safe text.

Listings order by (time, id) descending; the next page is every row strictly before the cursor,
so rows sharing a time are neither skipped nor repeated across pages.
"""

from __future__ import annotations

import base64
import json


def encode_cursor(at: int, row_id: str) -> str:
    raw = json.dumps([at, row_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The position in ``cursor``; ValueError when it is not one of ours."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, row_id = json.loads(base64.urlsafe_b64decode(padded))
        # A time SQLite can compare (a 64-bit integer), as every cursor we write holds.
        if type(at) is not int or not -(2**63) <= at < 2**63 or not isinstance(row_id, str):
            raise TypeError
    except (ValueError, TypeError, RecursionError) as exc:
        raise ValueError("invalid cursor") from exc
    return at, row_id


def window_clauses(
    time_column: str, id_column: str, after: int | None, before: int | None, cursor: str | None
) -> tuple[list[str], list[object]]:
    """WHERE clauses and their arguments for a newest-first listing: exclusive time bounds, and
    (with a cursor) strictly older than the last row of the previous page, by a row-value
    comparison. Column names are the caller's constants, never user input."""
    where: list[str] = []
    args: list[object] = []
    if after is not None:
        where.append(f"{time_column} > ?")
        args.append(after)
    if before is not None:
        where.append(f"{time_column} < ?")
        args.append(before)
    if cursor is not None:
        where.append(f"({time_column}, {id_column}) < (?, ?)")
        args.extend(decode_cursor(cursor))
    return where, args
