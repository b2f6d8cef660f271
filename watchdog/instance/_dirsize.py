"""The bytes a directory tree holds, measured without following a symlink."""

from __future__ import annotations

import os
from pathlib import Path


def directory_size(path: Path) -> int:
    """Bytes of the files (and symlinks themselves) under `path`: an iterative walk that never follows a symlink
    and skips what it cannot read; 0 when `path` is missing or not a directory."""
    total = 0
    pending: list[str | os.PathLike[str]] = [path]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total
