"""Keeping the WhatsApp login: `session/linked.json` (`Home.linked_file`: when this profile was last linked), a new
login made durable by a clean browser restart, session backups taken while the browser is closed (backup.py does
the files), and the automatic restore of a lost login (`AutoRestore`, its state in
`session/backups/restore-state.json`)."""

from __future__ import annotations

import functools
import logging
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from continuity.watchdog.instance import Home, read_json_or_none, write_json_atomic

from .backup import SessionBackups, Staged

if TYPE_CHECKING:
    from .browser_slot import BrowserSlot

logger = logging.getLogger("continuity.whatsapp")


def read_linked(home: Home) -> dict[str, Any] | None:
    """session/linked.json: when this profile was last linked (None if never)."""
    data = read_json_or_none(home.linked_file)
    return data if isinstance(data, dict) else None


class AutoRestore:
    """When a lost login gets a backup put back: once per pairing (linked.json's `linked_at`), never after a logout
    from the phone, each backup in turn (newest first) until one brings WhatsApp back or none is left."""

    def __init__(self, backups: SessionBackups) -> None:
        self.backups, self.home, self.events = backups, backups.home, backups.events
        self._clock = backups.clock
        self._candidates: list[Path] | None = None
        self._restoring: tuple[Path, float] | None = None

    @property
    def state_file(self) -> Path:
        return self.home.restore_state_file

    def _linked_at(self) -> Any:
        data = read_linked(self.home)
        return data.get("linked_at") if data is not None else None

    def _settled(self, outcome: str, **fields: Any) -> None:
        """Remember that this pairing's login loss is dealt with (until the next pairing writes linked.json)."""
        self.backups.ensure_folder()
        write_json_atomic(self.state_file, {"linked_at": self._linked_at(), "outcome": outcome}, mode=0o600)
        self.events.emit(f"session_restore_{outcome}", **fields)

    def should_restore(self, markers: dict[str, Any]) -> bool:
        """On a QR while linked: True when a backup should be put back now (the caller stages and applies it)."""
        linked_at = self._linked_at()
        if not self.backups.config.auto_restore or linked_at is None:
            return False
        state = read_json_or_none(self.state_file)
        if isinstance(state, dict) and state.get("linked_at") == linked_at:
            return False  # already settled for this pairing: logged out from the phone, or no backup worked
        if "post_logout=1" in str(markers.get("url") or ""):
            self._candidates = self._restoring = None
            self._settled("skipped", reason="logged out from the phone: backups are not restored")
            return False
        if self._restoring is not None:
            self.events.emit("session_restore_no_login", file=str(self._restoring[0]))
            self._restoring = None
        if self._candidates is None:
            if self.backups.passphrase() is None:
                self._settled("failed", reason=f"login lost and no backup can be restored: {self.backups.key_problem}")
                return False
            self._candidates = self.backups.files()
            self.events.emit("session_login_lost", candidates=len(self._candidates))
        if not self._candidates:
            self._candidates = None
            self._settled("failed", reason="no session backup brought the login back: scan a new QR code")
            return False
        return True

    def for_lost_login(self, markers: dict[str, Any]) -> Staged | None:
        """On a QR while linked: the next backup to put back, staged; None when none should or can be."""
        if not self.should_restore(markers):
            return None
        staged = self.backups.stage_first(self._candidates or [])
        if staged is None:
            self.should_restore(markers)  # every one was refused: settle it now (event "session_restore_failed")
        return staged

    def restoring(self, source: Path) -> None:
        """`source` was just put into the profile: the next ready page (or QR) tells whether it worked."""
        self._restoring = (source, self._clock())

    def on_ready(self) -> None:
        """The page is ready: a restore in progress has worked."""
        if self._restoring is not None:
            path, since = self._restoring
            self.events.emit("session_restored", file=str(path), seconds=round(self._clock() - since, 3))
            logger.warning("WhatsApp is ready again from session backup %s", path.name)
        self._restoring = self._candidates = None


class LoginKeeper:
    """The login of `backups`' home: linked.json, durability, backups and restores, each done on `slot`'s browser
    while it is closed."""

    def __init__(self, backups: SessionBackups, slot: BrowserSlot) -> None:
        self.backups, self.slot = backups, slot
        self.home, self.events = backups.home, backups.events
        self.auto_restore = AutoRestore(backups)

    def was_linked(self) -> bool:
        return self.home.linked_file.exists()

    def make_durable(self) -> None:
        """A new login lives only in Chromium's memory for a few seconds: a clean restart writes it to disk."""
        self.events.emit("login_durability", step="restarting browser cleanly")
        backup = functools.partial(self.backup_closed, reason="paired")
        self.slot.restart(reason="make the new login durable", counted=False, while_closed=backup)
        write_json_atomic(self.home.linked_file, {"linked_at": self.backups.wall_clock()}, mode=0o600)
        self.events.emit("login_durable")

    def backup_closed(self, reason: str = "periodic") -> None:
        """A session backup (the browser must be closed), when a key is set; a failure is recorded, never raised."""
        if self.backups.passphrase() is not None:
            self.backups.create_quietly(reason=reason)

    def back_up(self, reason: str = "periodic") -> Path | None:
        """Restart the browser cleanly with a backup taken while it is closed; the file made, or None."""
        self.backups.last_backup = None
        self.slot.restart(
            reason="session backup", counted=False, while_closed=functools.partial(self.backup_closed, reason=reason)
        )
        return self.backups.last_backup

    def restore(self, staged: Staged | None) -> bool:
        """Close the browser, put the staged backup's login storage into the profile, relaunch."""
        if staged is None:
            return False
        self.slot.close()
        try:
            self.backups.apply(staged)
            self.auto_restore.restoring(staged.source)
        except OSError as exc:
            logger.error("cannot put backup %s into the profile: %s", staged.source, exc)
            self.events.emit("session_restore_error", file=str(staged.source), error=str(exc)[:500])
            return False
        finally:
            self.slot.start()
        return True

    def restore_lost(self, markers: dict[str, Any]) -> bool:
        """On a QR while linked: put the next backup back when the automatic restore says so (True: it was)."""
        return self.restore(self.auto_restore.for_lost_login(markers))

    def on_ready(self) -> None:
        self.auto_restore.on_ready()

    def clear(self) -> None:
        """Forget the login: close the browser, delete linked.json and the profile, start on a fresh one (QR)."""
        self.slot.close()
        self.home.linked_file.unlink(missing_ok=True)
        shutil.rmtree(self.home.profile_dir, ignore_errors=True)
        self.events.emit("session_cleared")
        self.slot.start()
