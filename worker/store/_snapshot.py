"""The human-readable snapshot file and its verified backups.

Snapshot layout (one record a line, so a person can read and diff it)::

    {"format":"continuity.tokens","version":1,"generation":3,"count":2,"tokens":[
    {"id":"abc","symbol":"ABC"},
    {"id":"def","symbol":"DEF"}
    ]}

`generation` G means: every journal of generation < G is folded in; the journal of generation G holds what
came after. The seed's formats (a list of records, or a dict keyed by id) are accepted too, with an unknown
generation.

Just over 300 lines: the snapshot's writer, its two readers (the fast CRC-checked one and the whole parse) and the
backups' naming and checking share one format and are kept together."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import fsync_dir

from ._files import install, write_temp
from ._journal import dumps

UNKNOWN_GEN = -1


CHUNK_BYTES = 1 << 20  # the size of the pieces a snapshot is written in
BACKUP_GZIP_LEVEL = 1


def render(*, kind: str, items_key: str, gen: int, records: Iterable[bytes], count: int) -> bytes:
    """The snapshot bytes for `records` (each one record's compact JSON, as `encode` makes it)."""
    return b"".join(render_chunks(kind=kind, items_key=items_key, gen=gen, records=list(records)))


def render_chunks(*, kind: str, items_key: str, gen: int, records: Sequence[bytes]) -> Iterator[bytes]:
    """The snapshot of `records` in pieces of about CHUNK_BYTES (never the whole file in memory at once). The header
    carries the body's CRC-32, so a file we wrote is loaded without parsing each record (`parse`)."""
    crc = 0
    for index, record in enumerate(records):
        crc = zlib.crc32(record, zlib.crc32(b",\n", crc) if index else crc)
    header = {"format": f"continuity.{kind}", "version": 1, "generation": gen, "count": len(records), "body_crc32": crc}
    yield dumps(header)[:-1] + b',"' + items_key.encode() + b'":[\n'
    piece: list[bytes] = []
    size = 0
    for index, record in enumerate(records):
        piece.append(record)
        size += len(record) + 2
        if size >= CHUNK_BYTES or index == len(records) - 1:
            yield b",\n".join(piece) + (b",\n" if index < len(records) - 1 else b"")
            piece, size = [], 0
    yield b"\n]}\n" if records else b"]}\n"


def encode(ident: str, record: dict[str, Any]) -> bytes:
    """A record's compact JSON as kept in memory and in snapshots: its "id" first, so `parse` finds it unparsed."""
    if next(iter(record), None) != "id" or record.get("id") != ident:
        record = {"id": ident, **{key: value for key, value in record.items() if key != "id"}}
    return dumps(record)


def _id_of(raw: bytes) -> str | None:
    """The id of a record made by `encode`, read without parsing it; None when it needs a real parse."""
    if not raw.startswith(b'{"id":"'):
        return None
    end = raw.find(b'"', 7)
    ident = raw[7:end]
    if end < 0 or b"\\" in ident:
        return None
    return ident.decode("utf-8")


def _body(data: bytes, *, items_key: str) -> tuple[int, int, int] | None:
    """(generation, count, where the body starts) of a snapshot whose body has the CRC-32 its header says, else
    None (no CRC: an older writer or a person's edit; or one that differs: damage)."""
    first_end = data.find(b"\n") + 1
    if first_end <= 0 or not data[:first_end].endswith(b',"' + items_key.encode() + b'":[\n'):
        return None
    try:
        header = json.loads(data[: first_end - 1] + b"]}")
    except ValueError:
        return None
    crc, gen, count = header.get("body_crc32"), header.get("generation"), header.get("count")
    if not isinstance(crc, int) or not isinstance(gen, int) or not isinstance(count, int) or gen < 0:
        return None
    if count:
        if not data.endswith(b"\n]}\n"):
            return None
        body = memoryview(data)[first_end:-4]  # no copy
    elif data[first_end:] == b"]}\n":
        body = memoryview(b"")
    else:
        return None
    return (gen, count, first_end) if zlib.crc32(body) == crc else None


def is_whole(data: bytes, *, items_key: str) -> bool:
    """True when `data` is a snapshot whose body has the CRC-32 its header says (as written, not damaged)."""
    return _body(data, items_key=items_key) is not None


def _parse_fast(data: bytes, *, items_key: str) -> tuple[int, dict[str, bytes]] | None:
    """(generation, raw records by id) of a whole snapshot (`_body`), split by line without parsing each record;
    None when that cannot be done (then it is parsed whole)."""
    whole = _body(data, items_key=items_key)
    if whole is None:
        return None
    gen, count, start = whole
    parts = data.split(b",\n") if count else []  # the first has the header line before it, the last "\n]}\n" after
    if len(parts) != count:
        return None
    if parts:
        parts[0], parts[-1] = parts[0][start:], parts[-1][:-4]
        if count == 1:
            parts[0] = data[start:-4]
    out: dict[str, bytes] = {}
    for raw in parts:
        ident = _id_of(raw)
        if ident is None:
            return None
        out[ident] = raw
    return (gen, out) if len(out) == count else None


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


def parse(data: bytes, *, items_key: str, what: str) -> tuple[int, dict[str, bytes]]:
    """(generation, raw records by id, as `encode` makes them) from snapshot bytes; ValueError when they are not a
    valid snapshot. A body whose CRC-32 matches its header's is split by line; any other is parsed whole."""
    fast = _parse_fast(data, items_key=items_key)
    if fast is not None:
        return fast
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
    out: dict[str, bytes] = {}
    for record in records:
        ident = record.get("id")
        if not isinstance(ident, str) or not ident:
            raise ValueError(f"{what}: a record has no string id")
        if ident in out:
            raise ValueError(f"{what}: id {ident!r} appears twice")
        try:
            out[ident] = encode(ident, record)
        except (TypeError, ValueError) as exc:  # NaN and the like: not JSON we can write back
            raise ValueError(f"{what}: record {ident!r} is not plain JSON: {exc}") from exc
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
    r"^(?P<stem>.+)\.(?P<stamp>\d{8}T\d{12}Z)\.g(?P<gen>\d+)\.o(?P<offset>\d+)\.(?P<sha>[0-9a-f]{16})\.json(?:\.gz)?$"
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


def copy_backup(directory: Path, stem: str, source: Path, *, now: float, gen: int, offset: int) -> BackupInfo:
    """A gzip-compressed backup of the snapshot file `source`, read and written piece by piece (never whole in
    memory), then read back and checked; OSError when it cannot be written or verified."""
    with open(source, "rb") as handle:
        return _write_backup(
            directory, stem, iter(lambda: handle.read(CHUNK_BYTES), b""), now=now, gen=gen, offset=offset
        )


def _write_backup(
    directory: Path, stem: str, pieces: Iterable[bytes], *, now: float, gen: int, offset: int
) -> BackupInfo:
    """A backup is gzip (level 1: fast; JSON shrinks about sixfold), named by the SHA-256 of its compressed bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    packer = zlib.compressobj(BACKUP_GZIP_LEVEL, zlib.DEFLATED, 31)  # wbits 31: a gzip file (`gunzip -c` reads it)

    def packed() -> Iterator[bytes]:
        for piece in pieces:
            if out := packer.compress(piece):
                yield out
        yield packer.flush()

    name = f"{stem}.{stamp(now)}.g{gen}.o{offset}"
    tmp, sha = write_temp(directory / f"{name}.json.gz", packed())
    path = directory / f"{name}.{sha[:16]}.json.gz"
    install(tmp, path)
    return _verified(BackupInfo(path, stamp(now), gen, offset, sha[:16]))


def _verified(info: BackupInfo) -> BackupInfo:
    if file_sha256(info.path)[:16] != info.sha:
        info.path.unlink()
        raise OSError(f"backup {info.path.name} did not verify (read back differs)")
    return info


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read piece by piece."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def load_backup(info: BackupInfo, *, items_key: str) -> dict[str, bytes] | None:
    """The records of a backup whose checksum and content are valid, else None."""
    try:
        data = info.path.read_bytes()
        if hashlib.sha256(data).hexdigest()[:16] != info.sha:
            return None
        if info.path.name.endswith(".gz"):
            data = gzip.decompress(data)
        return parse(data, items_key=items_key, what=info.path.name)[1]
    except (OSError, ValueError, EOFError, zlib.error):
        return None


def prune_backups(directory: Path, stem: str, *, keep: int) -> None:
    """Delete all but the newest `keep` backups of `stem`."""
    for info in list_backups(directory, stem)[keep:]:
        with contextlib.suppress(FileNotFoundError):
            info.path.unlink()
