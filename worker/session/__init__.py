"""The WhatsApp Web session: states, probe, recovery, durable login, confirmed sending, encrypted backups.

Names are imported on first use, so `continuity.worker.session.selectors` (read by the config check in the
watchdog) does not bring in the session, its backups and their crypto."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backup import NoUsableBackup, SessionBackups
    from .crypto import BackupRejected, SessionKeyError
    from .session import WhatsAppSession
    from .states import WhatsAppState

_WHERE = {
    "NoUsableBackup": ".backup",
    "SessionBackups": ".backup",
    "BackupRejected": ".crypto",
    "SessionKeyError": ".crypto",
    "WhatsAppSession": ".session",
    "WhatsAppState": ".states",
}

__all__ = ["BackupRejected", "NoUsableBackup", "SessionBackups", "SessionKeyError", "WhatsAppSession", "WhatsAppState"]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
