"""How much memory a running Chromium holds: the RSS summed over its whole process tree (the browser process and
its zygotes, renderers, GPU and utility processes). No selenium; psutil only."""

from __future__ import annotations

import contextlib

import psutil


def tree_rss_bytes(pid: int) -> int | None:
    """The sum of RSS (bytes) over `pid` and all its descendants, or None when `pid` is gone or cannot be read.

    RSS counts a shared page in every process that maps it, so the sum overstates what the tree costs (by the
    shared libraries, mostly); it is what `top` shows and cheap to read (no smaps walk). A process that exits
    while it is read is left out."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += process.memory_info().rss
    return total
