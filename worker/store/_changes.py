"""Which ids of a store changed since a cursor: in memory, per process, so a reader's work can follow the changes
instead of the whole store (the notify job)."""

from __future__ import annotations

from itertools import islice

CHANGE_LOG_LIMIT = 16384  # ids remembered; a reader further behind is told "everything changed"


class ChangeLog:
    """A monotonically increasing change sequence and, per id, the sequence of its last change (oldest first).

    `since(cursor)` answers in O(changes). After `reset()` (a first open, any full reload: a restore, a snapshot
    replaced under us) and for a cursor older than what is remembered, it answers None: every id may have changed.
    """

    def __init__(self, *, limit: int = CHANGE_LOG_LIMIT) -> None:
        self.seq = 0
        self._floor = 0  # a cursor below this cannot be answered
        self._last: dict[str, int] = {}
        self._limit = max(2, limit)

    def reset(self) -> None:
        """Everything may have changed (the state was loaded whole)."""
        self.seq += 1
        self._floor = self.seq
        self._last = {}

    def note(self, ident: str) -> None:
        """`ident` was put or deleted."""
        self.seq += 1
        self._last.pop(ident, None)
        self._last[ident] = self.seq
        if len(self._last) > self._limit:
            keep = list(islice(reversed(self._last.items()), self._limit // 2))
            keep.reverse()
            self._floor = keep[0][1] - 1  # every change after this one is still remembered
            self._last = dict(keep)

    def since(self, cursor: int) -> tuple[int, list[str] | None]:
        """(the cursor to pass next time, ids changed after `cursor`, oldest first), or None for the ids when that
        cannot be told (start with cursor -1: the first answer is None)."""
        if cursor < self._floor:
            return self.seq, None
        changed: list[str] = []
        for ident, seq in reversed(self._last.items()):
            if seq <= cursor:
                break
            changed.append(ident)
        changed.reverse()
        return self.seq, changed
