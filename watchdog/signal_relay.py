"""Signal handlers that do nothing but write to a pipe, and one thread that acts on what arrives.

A Python signal handler runs in the main thread between two bytecodes, possibly while that thread holds a lock the
handler would need (an Event's, inside wait() or clear()): calling Event.set() or similar from the handler can
deadlock the process. So the handler only writes the signal's number to a non-blocking pipe (a full pipe already
holds the news), and a daemon thread blocked on the pipe calls `act(signum)`: no timer, no wakeup otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any


def relay_signals(names: Iterable[str], act: Callable[[int], None], *, thread_name: str) -> None:
    """Route each signal of `names` that this platform has (e.g. "SIGTERM", "SIGBREAK") to `act` on a thread."""
    read_fd, write_fd = os.pipe()
    if sys.platform != "win32":
        os.set_blocking(write_fd, False)

    def relay() -> None:
        while data := os.read(read_fd, 64):
            for signum in data:
                act(signum)

    threading.Thread(target=relay, name=thread_name, daemon=True).start()

    def handler(signum: int, _frame: Any) -> None:
        with contextlib.suppress(OSError):
            os.write(write_fd, bytes([signum]))

    for name in names:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), handler)
