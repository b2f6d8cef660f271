"""Writing big files (snapshots, backups) without stalling the journal's small fsyncs.

On ext4 (data=ordered) an fsync commits the file system's journal, which first writes out every file's dirty data
of that transaction: a 10 MB snapshot written at once and fsynced makes a concurrent journal append wait for all of
it. Written and fsynced in steps of FLUSH_STEP bytes, there is never more than one step to wait for."""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from continuity.watchdog.instance import fsync_dir, pid_alive

FLUSH_STEP = 1 << 20  # bytes written between two fsyncs
_temp_counter = itertools.count()


Data = bytes | Iterable[bytes]  # the whole content, or its pieces in order


def write_synced(fd: int, data: Data) -> str:
    """Write `data` to `fd`, fsyncing every FLUSH_STEP bytes and at the end, then close `fd`; returns the SHA-256
    (hex) of what was written."""
    digest = hashlib.sha256()
    try:
        unsynced = 0
        for piece in [data] if isinstance(data, bytes) else data:
            view = memoryview(piece)
            digest.update(view)
            for start in range(0, len(view), FLUSH_STEP):
                chunk = view[start : start + FLUSH_STEP]
                written = 0
                while written < len(chunk):
                    written += os.write(fd, chunk[written:])
                unsynced += len(chunk)
                if unsynced >= FLUSH_STEP:
                    os.fsync(fd)
                    unsynced = 0
        os.fsync(fd)
    finally:
        os.close(fd)
    return digest.hexdigest()


def write_temp(target: Path, data: Data) -> tuple[Path, str]:
    """`data` in a fsynced temp file beside `target`, named as `remove_dead_temp_files` finds a killed writer's;
    (its path, the SHA-256 in hex of what was written)."""
    tmp = target.parent / f".{target.name}.{os.getpid()}.s{next(_temp_counter)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        return tmp, write_synced(fd, data)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def install(tmp: Path, target: Path) -> None:
    """Rename the written temp file `tmp` to `target` and make the rename durable (fsync the folder); on failure the
    temp file is removed."""
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def release_free_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's malloc_trim): after a store was loaded whole, the
    bytes read and parsed are free but would stay in the process's resident memory. No-op elsewhere."""
    global _trim
    if _trim is None:
        _trim = _load_trim()
    _trim()


def _load_trim() -> Callable[[], object]:
    if not sys.platform.startswith("linux"):
        return lambda: None
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return lambda: None
    return lambda: trim(0)


_trim: Callable[[], object] | None = None
MALLOC_ARENAS = 1  # glibc malloc arenas in the worker (its default is 8 per core); the GIL serializes most anyway
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_malloc_arenas() -> None:
    """Keep glibc's malloc to MALLOC_ARENAS arenas: each thread (the compaction's, the inbox handlers') otherwise
    gets an arena of its own whose free memory stays resident (about 10 MB at 100,000 tokens). Call it before any
    thread starts; no-op where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def remove_dead_temp_files(directory: Path, name: str) -> int:
    """Delete the temp files of `name` in `directory` that a killed writer left (`.<name>.<pid>.<n>.tmp`), not those
    of a process still running (another process's compaction writes its snapshot with the lock released)."""
    removed = 0
    for leftover in directory.glob(f".{name}.*.tmp"):
        parts = leftover.name.split(".")  # .<target>.<pid>.<n>.tmp, .<target>.<pid>.s<n>.tmp, .<target>.<pid>.tmp
        pid = parts[-3] if len(parts) > 4 and parts[-3].isdigit() else parts[-2]
        if pid.isdigit() and int(pid) != os.getpid() and pid_alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
            removed += 1
    return removed
