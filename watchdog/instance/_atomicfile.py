"""Atomic, durable file replacement: temp file beside the target, fsync, replace, fsync the directory."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from ._timing import backoff_delay

# Windows: os.replace onto a file another process holds open fails briefly (antivirus, indexers, readers).
_REPLACE_RETRIES = 10
_REPLACE_FIRST_WAIT_S, _REPLACE_MAX_WAIT_S = 0.025, 0.5  # seconds: 0.025, 0.05, 0.1 ... 0.5
_temp_counter = itertools.count()


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename or a new file in `directory` durable (no-op where directories cannot be opened)."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_with_retry(src: str, dst: Path) -> None:
    for attempt in range(1, _REPLACE_RETRIES + 1):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == _REPLACE_RETRIES:
                raise
            time.sleep(backoff_delay(attempt=attempt, first_s=_REPLACE_FIRST_WAIT_S, cap_s=_REPLACE_MAX_WAIT_S))


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, durable: bool = True, mode: int = 0o644) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, never a mix.

    With `durable`, the content and the rename are fsynced before returning (survives power loss).
    """
    target = Path(path)
    # A unique name beside the target (not tempfile: it drags in random and hashlib, ~1 MB in the watchdog).
    tmp = str(target.parent / f".{target.name}.{os.getpid()}.{next(_temp_counter)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if os.name != "nt":
            os.chmod(tmp, mode)
        _replace_with_retry(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(target.parent)


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, durable: bool = True, mode: int = 0o644) -> None:
    """Serialize `obj` as JSON and replace `path` atomically."""
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    write_bytes_atomic(path, data, durable=durable, mode=mode)


def read_json_or_none(path: str | os.PathLike[str]) -> Any:
    """The JSON in `path`, or None when it is missing, truncated, garbage or not UTF-8."""
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return None


def remove_orphan_temp_files(directory: str | os.PathLike[str], name: str) -> int:
    """Delete temp files a killed writer of `name` left in `directory`; returns how many."""
    removed = 0
    for leftover in Path(directory).glob(f".{name}.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
    return removed
