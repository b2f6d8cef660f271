"""The WhatsApp Web session: states, probe, recovery, durable login, confirmed sending."""

from .session import WhatsAppSession
from .states import WhatsAppState

__all__ = ["WhatsAppSession", "WhatsAppState"]
