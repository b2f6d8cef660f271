"""WhatsApp session states (DESIGN.md `whatsapp.state`); a leaf module."""

from __future__ import annotations

from enum import Enum


class WhatsAppState(Enum):
    STARTING = "starting"  # the browser is being launched
    LOADING = "loading"  # "Loading your chats" (or a blank page still booting)
    QR = "qr"  # not linked: a QR code waits to be scanned
    READY = "ready"  # main screen: chats can be opened and messages sent
    OFFLINE = "offline"  # "Computer not connected" / "Trying to reach phone"
    CONFLICT = "conflict"  # open on another computer or browser, or in another tab
    LOGGED_OUT = "logged_out"  # was linked, now shows a QR again (logged out from the phone)
    CRASHED = "crashed"  # the tab crashed or hangs (script calls time out)
    BROWSER_DEAD = "browser_dead"  # the browser or chromedriver is gone ("invalid session id", "not reachable")
    UNRECOGNIZED = "unrecognized"  # a loaded page showing none of the known screens (WhatsApp changed its page)
    DISABLED = "disabled"  # [whatsapp] enabled = false


CONNECTED_STATES = frozenset({WhatsAppState.READY})
