"""Errors of the token store, outbox and ledger; each subclasses the builtin it means."""

from __future__ import annotations

import filelock

from continuity.watchdog.instance import ContinuityError


class StoreError(ContinuityError):
    """Base class of every error the store raises on purpose."""


class StoreLocked(StoreError, TimeoutError):
    """Another process held the store's lock longer than `lock_timeout` seconds; nothing was changed."""


class _StoreOSError(StoreError, OSError):
    """A store error that is an OSError; its text is the message alone (OSError would prefix "[Errno N]")."""

    def __str__(self) -> str:
        return str(self.strerror) if self.strerror else super().__str__()


class StoreWriteError(_StoreOSError):
    """The journal or snapshot could not be written (full disk, I/O error); nothing was changed."""


class StoreUnavailable(_StoreOSError):
    """The store's files cannot be opened or created (a read-only disk, permissions, something in the way);
    nothing was changed."""


class RecordTooLarge(StoreError, ValueError):
    """One record is bigger than the store accepts."""


class InvalidRecord(StoreError, ValueError):
    """A record, an id or a field value the store cannot keep (not JSON, bad id, ...)."""


class DuplicateId(InvalidRecord):
    """The same id appears twice where ids must be unique (an import) or is already taken (add)."""


class ImportFormatError(StoreError, ValueError):
    """An import file is not UTF-8, not JSON / JSON lines, or not records."""


class TokenNotFound(StoreError, KeyError):
    """No record with that id."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class InvalidPhone(StoreError, ValueError):
    """A phone number is not 8-15 digits with the country code."""


class StoreCorrupt(_StoreOSError):
    """The store's files are damaged and no valid backup could replace them."""


def unavailable(what: str, exc: OSError) -> StoreUnavailable:
    """StoreUnavailable saying `what` could not be done and why, naming the file when `what` does not."""
    reason = exc.strerror or str(exc)
    if exc.filename and str(exc.filename) not in what:
        reason = f"{exc.filename}: {reason}"
    return StoreUnavailable(exc.errno, f"{what}: {reason}")


def acquire_lock(flock: filelock.FileLock, *, timeout_s: float) -> None:
    """Take the store's cross-process lock: StoreLocked after `timeout_s` seconds, StoreUnavailable when the lock
    file cannot be opened (a read-only disk, permissions, a directory in its place)."""
    try:
        flock.acquire()
    except filelock.Timeout as exc:
        raise StoreLocked(
            f"{flock.lock_file} is held by another process for more than {timeout_s:g} s; nothing was changed"
        ) from exc
    except OSError as exc:
        raise unavailable(f"cannot open the lock file {flock.lock_file}", exc) from exc
