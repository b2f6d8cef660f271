"""Checks on ids and records before anything is written."""

from __future__ import annotations

import json
import re
from typing import Any

from ._errors import InvalidRecord, RecordTooLarge
from ._journal import dumps

MAX_ID_CHARS = 256
MAX_RECORD_BYTES = 64 * 1024
MAX_NESTING = 64  # levels of objects and lists in one record (deeper JSON breaks the recursive parsers)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_id(ident: Any) -> str:
    """`ident` if it is a usable id (1-256 characters, no control characters), else InvalidRecord."""
    if not isinstance(ident, str) or not ident.strip():
        raise InvalidRecord(f"an id must be a non-empty string, not {ident!r}")
    if len(ident) > MAX_ID_CHARS or _CONTROL.search(ident):
        raise InvalidRecord(f"id {ident[:40]!r}... is longer than {MAX_ID_CHARS} characters or has control characters")
    return ident


def loads(text: str | bytes, *, what: str) -> Any:
    """json.loads, with JSON nested too deeply to parse as InvalidRecord (a ValueError) instead of RecursionError."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise InvalidRecord(f"{what} nests objects or lists too deeply (the limit is {MAX_NESTING} levels)") from exc


def nesting(value: Any) -> int:
    """How many levels of objects and lists `value` has (0 for a plain value); iterative, so any depth is fine."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_record(record: dict[str, Any]) -> dict[str, Any]:
    """`record` if it is plain JSON of at most MAX_RECORD_BYTES and MAX_NESTING levels, else InvalidRecord /
    RecordTooLarge."""
    if nesting(record) > MAX_NESTING:
        raise InvalidRecord(f"record {record.get('id')!r} nests objects or lists deeper than {MAX_NESTING} levels")
    try:
        size = len(dumps(record))
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(f"record {record.get('id')!r} is not plain JSON: {exc}") from exc
    if size > MAX_RECORD_BYTES:
        raise RecordTooLarge(f"record {record.get('id')!r} is {size} bytes; the limit is {MAX_RECORD_BYTES}")
    return record
