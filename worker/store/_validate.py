"""Checks on ids and records before anything is written."""

from __future__ import annotations

import re
from typing import Any

from ._errors import InvalidRecord, RecordTooLarge
from ._journal import dumps

MAX_ID_CHARS = 256
MAX_RECORD_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_id(ident: Any) -> str:
    """`ident` if it is a usable id (1-256 characters, no control characters), else InvalidRecord."""
    if not isinstance(ident, str) or not ident.strip():
        raise InvalidRecord(f"an id must be a non-empty string, not {ident!r}")
    if len(ident) > MAX_ID_CHARS or _CONTROL.search(ident):
        raise InvalidRecord(f"id {ident[:40]!r}... is longer than {MAX_ID_CHARS} characters or has control characters")
    return ident


def check_record(record: dict[str, Any]) -> dict[str, Any]:
    """`record` if it is plain JSON of at most MAX_RECORD_BYTES, else InvalidRecord / RecordTooLarge."""
    try:
        size = len(dumps(record))
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(f"record {record.get('id')!r} is not plain JSON: {exc}") from exc
    if size > MAX_RECORD_BYTES:
        raise RecordTooLarge(f"record {record.get('id')!r} is {size} bytes; the limit is {MAX_RECORD_BYTES}")
    return record
