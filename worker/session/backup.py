"""Encrypted backups of the WhatsApp login storage (session/backups/), and putting one back into the profile.

Only what Chromium needs to come back logged in is copied (`LOGIN_PATHS`), never caches, and only while
Chromium is closed (the session calls `create` inside a clean browser restart), so the LevelDB/SQLite files are
consistent. Each file is a gzip'd tar encrypted with `crypto` (scrypt + AES-GCM), mode 0600 in a 0700 folder,
verified after writing; the newest `max_session_backups` are kept. File operations only: when a backup is taken
or put back on its own (the automatic restore of a lost login) is login.py's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import EventLog, Home, SessionConfig, fsync_dir

from .archive import LOGIN_PATHS, pack, unpack
from .crypto import BackupRejected, EncryptingWriter, SessionKeyError, decrypt_file, load_passphrase, verify_file

logger = logging.getLogger("continuity.whatsapp")

SUFFIX = ".cbk"
RETRY_AFTER_FAILURE_S = 600.0  # s before a failed periodic backup is tried again


class NoUsableBackup(LookupError):
    """No session backup could be restored (none exists, or none decrypts)."""


@dataclass
class Staged:
    """A backup decrypted into a private staging folder, ready to be moved into the profile."""

    source: Path
    folder: Path
    manifest: dict[str, Any]


class SessionBackups:
    """The session's backups: create, list, rotate, stage and apply."""

    def __init__(
        self,
        home: Home,
        config: SessionConfig,
        *,
        events: EventLog,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.home = home
        self.config = config
        self.events = events
        self._environ = environ
        self.clock, self.wall_clock = clock, wall_clock  # monotonic s (retries); epoch s (names, ages)
        self._passphrase: bytes | None = None
        self._key_problem: str | None = None
        self._key_loaded = self._key_logged = False
        self._retry_at = 0.0
        self.last_backup: Path | None = None
        self.last_error: str | None = None

    @property
    def folder(self) -> Path:
        return self.home.session_backups_dir

    # -- the key ----------------------------------------------------------------------------------------------
    def _load_key(self) -> bytes | None:
        """The passphrase (loaded once, a problem recorded as an event once); None when there is none."""
        if not self._key_loaded:
            self._key_loaded = True
            try:
                self._passphrase = load_passphrase(self.home, self.config, self._environ)
            except SessionKeyError as exc:
                self._key_problem = str(exc)
                self.events.emit("session_key_error", error=str(exc))
            if self._passphrase is None and self._key_problem is None:
                self._key_problem = "no key configured (set CONTINUITY_SESSION_KEY or [session] key_file)"
                self.events.emit("session_backup_disabled", reason=self._key_problem)
        return self._passphrase

    def passphrase(self) -> bytes | None:
        """The passphrase; None when none is configured or the key file is refused (logged once: nothing else
        says it, unlike `_require_key`'s callers, who raise it)."""
        key = self._load_key()
        if key is None and not self._key_logged:
            self._key_logged = True
            logger.warning("session backups disabled: %s; a lost login will need a QR scan", self._key_problem)
        return key

    @property
    def key_problem(self) -> str | None:
        """Why there is no passphrase (None while there is one, or before it was looked for)."""
        return self._key_problem

    def _require_key(self) -> bytes:
        key = self._load_key()
        if key is None:
            raise SessionKeyError(f"session backups are disabled: {self._key_problem}")
        return key

    # -- listing ----------------------------------------------------------------------------------------------
    def files(self) -> list[Path]:
        """Backup files, newest first."""
        with contextlib.suppress(FileNotFoundError):
            return sorted((p for p in self.folder.iterdir() if p.name.endswith(SUFFIX)), reverse=True)
        return []

    def due(self) -> bool:
        """True when a periodic backup should be taken now (a key is set and the newest is `backup_interval` old)."""
        if self.clock() < self._retry_at or self.passphrase() is None:
            return False
        newest = self.files()
        with contextlib.suppress(OSError):
            return not newest or self.wall_clock() - newest[0].stat().st_mtime >= self.config.backup_interval
        return True

    def status(self) -> dict[str, Any]:
        """A small summary for the heartbeat (no secrets)."""
        files = self.files()
        newest = None
        with contextlib.suppress(OSError, IndexError):
            newest = round(files[0].stat().st_mtime, 3)
        return {"enabled": self.passphrase() is not None, "problem": self._key_problem, "count": len(files),
                "newest_at": newest}  # fmt: skip

    # -- creating ---------------------------------------------------------------------------------------------
    def create(self, profile_dir: Path | None = None, *, reason: str) -> Path:
        """Back up the login storage of `profile_dir` (Chromium must be closed). Raises SessionKeyError, OSError."""
        key = self._require_key()
        profile = profile_dir or self.home.profile_dir
        started = time.monotonic()
        self.ensure_folder()
        now = self.wall_clock()
        final = self._new_name(now)
        tmp = self.folder / f".{final.name}.{os.getpid()}.tmp"
        files: list[str] = []
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as raw:
                writer = EncryptingWriter(raw, key)
                files = pack(writer, profile, {"format": 1, "created_at": now, "reason": reason}, mtime=now)
                writer.close()
                raw.flush()
                os.fsync(raw.fileno())
            if not files:
                raise FileNotFoundError(f"no login storage in {profile} (is the profile empty?)")
            self.verify(tmp, key)  # verify before it counts (and before older ones are pruned)
            os.replace(tmp, final)
            fsync_dir(self.folder)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        seconds = round(time.monotonic() - started, 3)
        size = final.stat().st_size
        logger.info("session backup %s (%d files, %d bytes) in %.2f s", final.name, len(files), size, seconds)
        self.events.emit(
            "session_backup_created", file=final.name, bytes=size, files=len(files), seconds=seconds, reason=reason
        )
        self.last_backup, self.last_error = final, None
        self._prune()
        return final

    def _new_name(self, now: float) -> Path:
        """session-<UTC time to the ms>Z.cbk: names sort by age; a taken name moves on by a millisecond."""
        ms = int(now * 1000)
        while True:
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ms // 1000))
            path = self.folder / f"session-{stamp}{ms % 1000:03d}Z{SUFFIX}"
            if not path.exists():
                return path
            ms += 1

    def create_quietly(self, *, reason: str) -> Path | None:
        """`create`, for the worker loop: a failure is logged, recorded and retried later, never raised."""
        try:
            return self.create(reason=reason)
        except Exception as exc:  # the worker loop must go on (and the browser be started again)
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._retry_at = self.clock() + min(RETRY_AFTER_FAILURE_S, self.config.backup_interval)
            logger.error("session backup failed: %s", self.last_error)
            self.events.emit("session_backup_failed", error=self.last_error[:500], reason=reason)
            return None

    def ensure_folder(self) -> None:
        """session/backups/, mode 0700."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            os.chmod(self.folder, 0o700)

    def _prune(self) -> None:
        old = self.files()[self.config.max_session_backups :]
        for path in old:
            path.unlink(missing_ok=True)
        if old:
            self.events.emit("session_backups_pruned", removed=[p.name for p in old])

    def verify(self, path: Path, key: bytes | None = None) -> None:
        """Check that `path` decrypts and authenticates (read-only). Raises BackupRejected, SessionKeyError."""
        verify_file(path, key or self._require_key())

    # -- restoring --------------------------------------------------------------------------------------------
    def stage(self, path: Path) -> Staged:
        """Decrypt and unpack `path` into a private staging folder. Raises BackupRejected (an event recorded, not
        logged: the caller says it)."""
        key = self._require_key()
        self.home.session_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # a fresh home restoring a copy
        folder = Path(tempfile.mkdtemp(prefix=".restore-", dir=self.home.session_dir))
        try:
            with tempfile.TemporaryFile(dir=folder) as plain:
                decrypt_file(path, key, plain)  # the tag is checked before anything is unpacked
                plain.seek(0)
                manifest = unpack(plain, folder, path)
            return Staged(path, folder, manifest)
        except BackupRejected as exc:
            shutil.rmtree(folder, ignore_errors=True)
            self.events.emit("session_backup_rejected", file=str(path), reason=exc.reason)
            raise
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def stage_first(self, candidates: list[Path], refused: list[str] | None = None) -> Staged | None:
        """Stage the first of `candidates` that decrypts; None when none does. Each refusal is an event, and a log
        line unless `refused` is given: then its reason is appended there, for the caller to say."""
        while candidates:
            path = candidates.pop(0)
            try:
                return self.stage(path)
            except BackupRejected as exc:
                if refused is None:
                    logger.error("%s", exc)
                else:
                    refused.append(f"{path.name}: {exc.reason}")
        return None

    def apply(self, staged: Staged, profile_dir: Path | None = None) -> None:
        """Replace the profile's login storage by the staged one (Chromium must be closed)."""
        profile = profile_dir or self.home.profile_dir
        started = time.monotonic()
        profile.mkdir(parents=True, exist_ok=True)
        if os.name == "posix":
            os.chmod(profile, 0o700)
        try:
            for rel in LOGIN_PATHS:
                target, source = profile / rel, staged.folder / rel
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                elif os.path.lexists(target):
                    target.unlink()
                if os.path.lexists(source):
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(source, target)
        finally:
            shutil.rmtree(staged.folder, ignore_errors=True)
        seconds = round(time.monotonic() - started, 3)
        logger.info("session login storage restored from %s", staged.source)
        self.events.emit("session_restore_applied", file=str(staged.source), seconds=seconds)

    def stage_for_restore(self, path: Path | None = None) -> Staged:
        """Stage `path`, or the newest backup that decrypts (manual restore). Raises BackupRejected, NoUsableBackup,
        SessionKeyError; logs nothing (the caller says the error, once)."""
        if path is not None:
            return self.stage(path)
        refused: list[str] = []
        staged = self.stage_first(self.files(), refused)
        if staged is None:
            why = f" ({'; '.join(refused[:3])}{'; ...' if len(refused) > 3 else ''})" if refused else ""
            raise NoUsableBackup(f"no session backup in {self.folder} could be restored{why}")
        return staged
