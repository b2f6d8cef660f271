"""Whether a process id names a live process (psutil), asked the same way everywhere."""

from __future__ import annotations

import psutil


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs: a zombie, a finished process and a bad pid are dead; never raises.

    A process that exists but denies us its status (another user's, on some systems) counts as alive."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.ZombieProcess:
        return False
    except psutil.AccessDenied:
        return True
    except (psutil.Error, OSError, ValueError, OverflowError):
        return False
