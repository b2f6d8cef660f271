"""Reading an import file: the seed's tracked_tokens.json (a list of records or a dict keyed by id), JSON
lines, or a snapshot of this store."""

from __future__ import annotations

from typing import Any

from ._errors import ImportFormatError, InvalidRecord
from ._snapshot import records_from_json
from ._validate import loads

MAX_IMPORT_BYTES = 512 * 1024 * 1024


def parse_import(data: bytes, *, what: str = "import file") -> list[dict[str, Any]]:
    """The records in `data`; ImportFormatError (saying where) when it is not UTF-8 or not records."""
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportFormatError(f"{what} is larger than {MAX_IMPORT_BYTES} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{what} is not UTF-8 text (byte {exc.start}): nothing was imported") from exc
    if not text.strip():
        raise ImportFormatError(f"{what} is empty: nothing was imported")
    try:
        obj = loads(text, what=what)
    except InvalidRecord as exc:
        raise ImportFormatError(f"{exc}: nothing was imported") from exc
    except ValueError as whole_error:
        return _json_lines(text, what, whole_error)
    if isinstance(obj, dict) and str(obj.get("format", "")).startswith("continuity.") and "tokens" in obj:
        obj = obj["tokens"]
    try:
        return records_from_json(obj, what=what, keys_are_ids=True)
    except ValueError as exc:
        raise ImportFormatError(f"{exc}: nothing was imported") from exc


def _json_lines(text: str, what: str, whole_error: ValueError) -> list[dict[str, Any]]:
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if len(lines) < 2 and not text.lstrip().startswith("{"):
        raise ImportFormatError(f"{what} is not valid JSON ({whole_error}): nothing was imported")
    records = []
    for number, line in lines:
        try:
            record = loads(line, what=f"{what} line {number}")
        except InvalidRecord as exc:
            raise ImportFormatError(f"{exc}: nothing was imported") from exc
        except ValueError as exc:
            raise ImportFormatError(f"{what} line {number} is not valid JSON ({exc}): nothing was imported") from exc
        if not isinstance(record, dict):
            raise ImportFormatError(f"{what} line {number} is not a JSON object: nothing was imported")
        records.append(record)
    return records
