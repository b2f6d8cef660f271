"""Journal segments: each journal, once a compaction replaces it, is kept as `backups/<NAME>.g<G>.journal`.

A verified backup of generation B holds every change of the journals before B, so segments older than the oldest
kept backup are deleted; no other segment is. A restore is then the newest valid backup plus every later segment
plus the live journal, with the chain of generations checked (`replay_chain`)."""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import write_bytes_atomic

from ._files import install
from ._journal import parse

_SEGMENT_RE = re.compile(r"^(?P<stem>.+)\.g(?P<gen>\d+)\.journal$")


def segment_path(directory: Path, stem: str, gen: int) -> Path:
    """Where the journal of generation `gen` is kept once it is no longer the live one."""
    return directory / f"{stem}.g{gen}.journal"


def list_segments(directory: Path, stem: str) -> dict[int, Path]:
    """The kept segments of `stem`, by generation."""
    found: dict[int, Path] = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            match = _SEGMENT_RE.match(entry.name)
            if match and match["stem"] == stem:
                found[int(match["gen"])] = Path(entry.path)
    return found


def archive(journal: Path, directory: Path, stem: str, gen: int) -> Path:
    """Keep the journal file of generation `gen` as a segment (a hard link; a copy where links fail)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = segment_path(directory, stem, gen)
    tmp = directory / f".{target.name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    try:
        os.link(journal, tmp)
    except OSError:  # a file system without hard links (or across devices): copy, fsynced
        write_bytes_atomic(target, journal.read_bytes())
        return target
    install(tmp, target)
    return target


def prune(directory: Path, stem: str, *, below: int) -> None:
    """Delete the segments older than generation `below` (every change in them is held by a kept backup)."""
    for gen, path in list_segments(directory, stem).items():
        if gen < below:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def read_segment(path: Path, gen: int) -> list[Any] | None:
    """The records of a segment whose header says generation `gen`, else None (unreadable or not that one)."""
    found = read_segment_counted(path, gen)
    return None if found is None else found[1]


def read_segment_counted(path: Path, gen: int) -> tuple[int | None, list[Any]] | None:
    """(records in the state when it started, its records) of a segment whose header says generation `gen`, else
    None (unreadable or not that one). The count is None in segments written before headers carried it."""
    try:
        parsed = parse(path.read_bytes(), 0)
    except OSError:
        return None
    first = parsed.records[0] if parsed.records else None
    if not isinstance(first, dict) or first.get("gen") != gen:
        return None
    count = first.get("count")
    return (count if isinstance(count, int) and not isinstance(count, bool) else None), parsed.records[1:]


@dataclass
class Chain:
    """What a restore replays on top of its base: record lists in generation order, and the gaps."""

    batches: list[list[Any]] = field(default_factory=list)
    applied: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def replay_chain(directory: Path, stem: str, *, base_gen: int, last_gen: int, live: list[Any] | None) -> Chain:
    """The journals from `base_gen` to `last_gen` (`live` holds the live one's records, if there is one).

    `base_gen` 0 stands for an empty base: generation 0 is optional there (a new store starts at 1)."""
    segments = list_segments(directory, stem)
    chain = Chain()
    for gen in range(base_gen, last_gen + 1):
        if gen == last_gen and live is not None:
            records: list[Any] | None = live
        else:
            path = segments.get(gen)
            records = read_segment(path, gen) if path is not None else None
        if records is None:
            if not (gen == 0 and base_gen == 0):
                chain.missing.append(gen)
            continue
        chain.batches.append(records)
        chain.applied.append(gen)
    return chain
