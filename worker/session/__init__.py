"""The WhatsApp Web session: states, probe, recovery, durable login, confirmed sending, encrypted backups."""

from .backup import NoUsableBackup, SessionBackups
from .crypto import BackupRejected, SessionKeyError
from .session import WhatsAppSession
from .states import WhatsAppState

__all__ = ["BackupRejected", "NoUsableBackup", "SessionBackups", "SessionKeyError", "WhatsAppSession", "WhatsAppState"]
