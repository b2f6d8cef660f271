"""The human-readable snapshot file and its verified backups.

Snapshot layout (one record a line, so a person can read and diff it)::

    {"format":"continuity.tokens","version":1,"generation":3,"count":2,"tokens":[
    {"id":"abc","symbol":"ABC"},
    {"id":"def","symbol":"DEF"}
    ]}

`generation` G means: every journal of generation < G is folded in; the journal of generation G holds what
came after. The seed's formats (a list of records, or a dict keyed by id) are accepted too, with an unknown
generation."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from continuity.watchdog.atomicfile import fsync_dir, write_bytes_atomic

from ._journal import dumps

UNKNOWN_GEN = -1


def render(*, kind: str, items_key: str, gen: int, records: Iterable[dict[str, Any]], count: int) -> bytes:
    """The snapshot bytes for `records`."""
    header = {"format": f"continuity.{kind}", "version": 1, "generation": gen, "count": count}
    head = dumps(header)[:-1] + b',"' + items_key.encode() + b'":[\n'
    body = b",\n".join(dumps(record) for record in records)
    return head + body + (b"\n]}\n" if body else b"]}\n")


def records_from_json(obj: Any, *, what: str, keys_are_ids: bool = False) -> list[dict[str, Any]]:
    """Records from a list of records or a dict keyed by id (the key becomes "id"); ValueError else.

    With `keys_are_ids` (an import), a record of a dict whose own "id" differs from its key is a ValueError; else
    (reading a seed's snapshot) the record's own "id" wins, as it always did."""
    if isinstance(obj, dict):
        out = []
        for key, value in obj.items():
            if not isinstance(value, dict):
                raise ValueError(f"{what}: the value for {key!r} is not an object")
            if keys_are_ids and "id" in value and value["id"] != key:
                raise ValueError(f"{what}: the record under key {key!r} has a different id {value['id']!r}")
            out.append({"id": key, **value})
        return out
    if isinstance(obj, list):
        for index, value in enumerate(obj):
            if not isinstance(value, dict):
                raise ValueError(f"{what}: item {index} is not an object")
        return obj
    raise ValueError(f"{what}: expected a list of records or an object keyed by id")


def parse(data: bytes, *, items_key: str, what: str) -> tuple[int, dict[str, dict[str, Any]]]:
    """(generation, records by id) from snapshot bytes; ValueError when they are not a valid snapshot."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} is not UTF-8") from exc
    gen = UNKNOWN_GEN
    if isinstance(obj, dict) and str(obj.get("format", "")).startswith("continuity."):
        found, records = obj.get("generation"), obj.get(items_key)
        if not isinstance(found, int) or found < 0 or not isinstance(records, list):
            raise ValueError(f"{what}: bad generation or no {items_key!r} list")
        gen = found
        if obj.get("count", len(records)) != len(records):
            raise ValueError(f"{what}: count {obj.get('count')} but {len(records)} records (truncated?)")
    records = records_from_json(obj if gen == UNKNOWN_GEN else records, what=what)
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        ident = record.get("id")
        if not isinstance(ident, str) or not ident:
            raise ValueError(f"{what}: a record has no string id")
        if ident in out:
            raise ValueError(f"{what}: id {ident!r} appears twice")
        out[ident] = record
    return gen, out


def read_header(path: Path) -> tuple[int, int] | None:
    """(generation, count) from a snapshot's first line without reading the rest; None if not available."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(4096)
        obj = json.loads(first.rstrip(b"\n") + b"]}")
        return int(obj["generation"]), int(obj["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def stamp(now: float) -> str:
    """A sortable UTC timestamp with microseconds, for file names."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now % 1 * 1e6):06d}Z"


def move_aside(path: Path, *, now: float) -> Path:
    """Rename a damaged file to `<name>.damaged-<stamp>` beside it (never deleted); returns the new path."""
    target = path.with_name(f"{path.name}.damaged-{stamp(now)}")
    os.replace(path, target)
    with contextlib.suppress(OSError):
        fsync_dir(path.parent)
    return target


# -- backups -------------------------------------------------------------------------------------------------
_BACKUP_RE = re.compile(
    r"^(?P<stem>.+)\.(?P<stamp>\d{8}T\d{12}Z)\.g(?P<gen>\d+)\.o(?P<offset>\d+)\.(?P<sha>[0-9a-f]{16})\.json$"
)


@dataclass(frozen=True)
class BackupInfo:
    """One backup file; `gen` and `offset` say which journal position its content covers."""

    path: Path
    stamp: str
    gen: int
    offset: int
    sha: str


def list_backups(directory: Path, stem: str) -> list[BackupInfo]:
    """Backups of `stem` in `directory`, newest first."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            match = _BACKUP_RE.match(entry.name)
            if match and match["stem"] == stem:
                found.append(
                    BackupInfo(
                        Path(entry.path),
                        match["stamp"],
                        int(match["gen"]),
                        int(match["offset"]),
                        match["sha"],
                    )
                )
    return sorted(found, key=lambda info: (info.stamp, info.gen, info.offset), reverse=True)


def write_backup(directory: Path, stem: str, data: bytes, *, now: float, gen: int, offset: int) -> BackupInfo:
    """Write `data` as a backup, read it back and check it; OSError when it cannot be written or verified."""
    directory.mkdir(parents=True, exist_ok=True)
    sha = hashlib.sha256(data).hexdigest()[:16]
    path = directory / f"{stem}.{stamp(now)}.g{gen}.o{offset}.{sha}.json"
    write_bytes_atomic(path, data)
    if hashlib.sha256(path.read_bytes()).hexdigest()[:16] != sha:
        path.unlink()
        raise OSError(f"backup {path.name} did not verify (read back differs)")
    return BackupInfo(path, stamp(now), gen, offset, sha)


def load_backup(info: BackupInfo, *, items_key: str) -> dict[str, dict[str, Any]] | None:
    """The records of a backup whose checksum and content are valid, else None."""
    try:
        data = info.path.read_bytes()
        if hashlib.sha256(data).hexdigest()[:16] != info.sha:
            return None
        return parse(data, items_key=items_key, what=info.path.name)[1]
    except (OSError, ValueError):
        return None


def prune_backups(directory: Path, stem: str, *, keep: int) -> None:
    """Delete all but the newest `keep` backups of `stem`."""
    for info in list_backups(directory, stem)[keep:]:
        with contextlib.suppress(FileNotFoundError):
            info.path.unlink()
