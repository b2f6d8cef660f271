"""The control actions a WhatsApp session answers: reconnect, restart-browser, clear-session, health-check,
inspect, initialize, backup-session, restore-session (each returns ok, a message for people, and details)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .states import WhatsAppState

if TYPE_CHECKING:
    from .session import WhatsAppSession

Handler = Callable[[dict[str, Any]], tuple[bool, str, dict[str, Any]]]


def session_action_handlers(session: WhatsAppSession) -> dict[str, Handler]:
    """Handlers bound to `session`."""

    def reconnect(_params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        if session.page is None:
            return False, "no browser is running", {}
        session.page.reload()
        return True, f"page reloaded; state {session.probe().value}", session.status()

    def restart_browser(_params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        session.slot.restart(reason="requested")
        return session.browser is not None, f"browser restarted; state {session.state.value}", session.status()

    def clear_session(_params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        session.login.clear()
        return True, "session cleared: scan the new QR code to link again", session.status()

    def health_check(_params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        state = session.probe() if session.page is not None else session.state
        return state is WhatsAppState.READY, f"state {state.value}, quality {session.quality}", session.status()

    def inspect(_params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        if session.page is None:
            return False, f"no page to inspect (WhatsApp is {session.state.value})", {"state": session.state.value}
        state = session.probe()
        page = session.page
        if page is None:  # the probe found the browser dead
            return False, f"no page to inspect (WhatsApp is {state.value})", {"state": state.value}
        with contextlib.suppress(Exception):  # the chat-only roles are seen only while a chat is open
            page.outgoing()
        roles = page.role_report()
        details = {
            "state": state.value,
            "web_version": session.watch.version,
            "roles": roles,
            "overrides": dict(page.overrides),
            "bad_selectors": sorted(page.bad_selectors),
            "unknown_popup": session.watch.unknown_popup,
        }
        missing = [r for r, how in roles.items() if how == "none"]
        return True, f"state {state.value}; roles not found now: {', '.join(missing) or 'none'}", details

    def initialize(_params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        if session.browser is None:
            session.slot.start()
        return session.browser is not None, f"state {session.state.value}", session.status()

    def backup_session(_params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        if session.state is not WhatsAppState.READY or session.backups.passphrase() is None:
            why = session.backups.status()["problem"] or f"WhatsApp is {session.state.value}, not ready"
            return False, f"no session backup taken: {why}", session.status()
        made = session.login.back_up(reason="requested")
        return made is not None, f"session backup {made}" if made else str(session.backups.last_error), {}

    def restore_session(params: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
        file = params.get("file")
        try:
            restored = session.login.restore(session.backups.stage_for_restore(Path(file) if file else None))
        except (ValueError, LookupError) as exc:  # BackupRejected, SessionKeyError, NoUsableBackup
            return False, str(exc), {}
        if not restored:
            return False, "the backup could not be put into the profile (event session_restore_error)", {}
        return True, f"login storage restored; state {session.state.value}", session.status()

    return {
        "backup-session": backup_session,
        "restore-session": restore_session,
        "reconnect": reconnect,
        "restart-browser": restart_browser,
        "clear-session": clear_session,
        "health-check": health_check,
        "inspect": inspect,
        "initialize": initialize,
    }
