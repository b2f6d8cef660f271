"""TokenStore: the tracked tokens, shared by the worker and CLI processes (data/tracked_tokens.*)."""

from __future__ import annotations

import builtins
import contextlib
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._engine import DurableMap, Op, Record
from ._errors import DuplicateId, TokenNotFound
from ._validate import check_id, check_record

PREVIEW_SIZE = 20  # tokens in the heartbeat's tokens.preview


class TokenTransaction:
    """Changes staged under the store lock and committed as one journal record (all or nothing)."""

    def __init__(self, store: TokenStore) -> None:
        self._store = store
        self._staged: dict[str, Record | None] = {}

    def get(self, ident: str) -> Record | None:
        """The record as this transaction sees it (staged changes included)."""
        if ident in self._staged:
            staged = self._staged[ident]
            return dict(staged) if staged is not None else None
        return self._store._record(ident)

    def add(self, ident: str, **fields: Any) -> Record:
        """Create a token; DuplicateId if it exists."""
        check_id(ident)
        if self.get(ident) is not None:
            raise DuplicateId(f"token {ident!r} already exists")
        record = {"id": ident, **fields}
        record.setdefault("added_at", round(self._store._clock(), 3))
        return self.put(record)

    def update(self, ident: str, **fields: Any) -> Record:
        """Merge `fields` into an existing token; TokenNotFound if it does not exist."""
        current = self.get(ident)
        if current is None:
            raise TokenNotFound(f"no token {ident!r}")
        return self.put({**current, **fields, "id": ident})

    def upsert(self, ident: str, **fields: Any) -> Record:
        """Merge into the token, creating it if needed."""
        return self.update(ident, **fields) if self.get(ident) is not None else self.add(ident, **fields)

    def put(self, record: Record) -> Record:
        """Set the whole record (its "id" says which); unknown fields are kept."""
        check_id(record.get("id"))
        self._staged[record["id"]] = check_record(dict(record))
        return dict(record)

    def remove(self, ident: str) -> Record:
        """Delete a token; TokenNotFound if it does not exist."""
        current = self.get(ident)
        if current is None:
            raise TokenNotFound(f"no token {ident!r}")
        self._staged[ident] = None
        return current

    def ops(self) -> list[Op]:
        return [["p", ident, rec] if rec is not None else ["d", ident] for ident, rec in self._staged.items()]


class TokenStore(DurableMap):
    """Tracked tokens by id. Every call that changes something returns only once the change is on disk."""

    NAME, KIND, ITEMS_KEY = "tracked_tokens", "tokens", "tokens"
    DEFAULT_SOURCE = "store"
    _tx_thread: int | None = None

    # -- transactions ----------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[TokenTransaction]:
        """Hold the lock, stage changes on the yielded object, commit them as one record at the end."""
        with self._writing():
            if self._tx_thread == threading.get_ident():
                raise RuntimeError("transactions do not nest; use the transaction object you already have")
            self._tx_thread = threading.get_ident()
            try:
                tx = TokenTransaction(self)
                yield tx
                self._commit_locked(tx.ops())
            finally:
                self._tx_thread = None

    def _one(self, change: Callable[[TokenTransaction], Record]) -> Record:
        with self.transaction() as tx:
            return change(tx)

    # -- single changes --------------------------------------------------------------------------------------
    def add(self, ident: str, **fields: Any) -> Record:
        """Create a token (DuplicateId if it exists); durable on return."""
        return self._one(lambda tx: tx.add(ident, **fields))

    def update(self, ident: str, **fields: Any) -> Record:
        """Merge fields into a token (TokenNotFound if missing); durable on return."""
        return self._one(lambda tx: tx.update(ident, **fields))

    def upsert(self, ident: str, **fields: Any) -> Record:
        """Merge fields into a token, creating it if needed; durable on return."""
        return self._one(lambda tx: tx.upsert(ident, **fields))

    def put(self, record: Record) -> Record:
        """Set a whole record; durable on return."""
        return self._one(lambda tx: tx.put(record))

    def remove(self, ident: str) -> Record:
        """Delete a token (TokenNotFound if missing); returns what it was; durable on return."""
        return self._one(lambda tx: tx.remove(ident))

    def import_records(self, records: Iterable[Record]) -> int:
        """Put every record in one transaction (all or none); DuplicateId if an id repeats."""
        records = list(records)
        seen: set[str] = set()
        for record in records:
            ident = check_id(record.get("id"))
            if ident in seen:
                raise DuplicateId(f"id {ident!r} appears more than once in the import")
            seen.add(ident)
            check_record(record)
        with self.transaction() as tx:
            for record in records:
                tx.put(record)
        return len(records)

    # -- reading ---------------------------------------------------------------------------------------------
    def get(self, ident: str) -> Record | None:
        """A copy of the token, or None."""
        with self._mutex:
            self.refresh()
            return self._record(ident)

    def get_many(self, idents: Iterable[str]) -> dict[str, Record]:
        """Copies of the tokens `idents` that exist, by id (one refresh for all)."""
        with self._mutex:
            self.refresh()
            found = ((ident, self._items.get(ident)) for ident in idents)
            return {ident: self._decode(raw) for ident, raw in found if raw is not None}

    def list(self) -> builtins.list[Record]:
        """Copies of every token, in the order they were first added."""
        with self._mutex:
            self.refresh()
            return [self._decode(raw) for raw in self._items.values()]

    def preview(self, limit: int = PREVIEW_SIZE) -> dict[str, Any]:
        """The count and the first `limit` tokens (id, symbol, chain; 200 characters each at most), O(limit): what
        the heartbeat publishes for the dashboard, so the watchdog never reads the store's files."""
        with self._mutex:
            self.refresh()
            first = [self._decode(raw) for raw in itertools.islice(self._items.values(), max(0, limit))]
            count = len(self._items)
        items = [{key: str(record.get(key) or "")[:200] for key in ("id", "symbol", "chain")} for record in first]
        return {"count": count, "items": items}

    def ids(self) -> builtins.list[str]:
        with self._mutex:
            self.refresh()
            return list(self._items)

    def count(self) -> int:
        with self._mutex:
            self.refresh()
            return len(self._items)

    def __contains__(self, ident: object) -> bool:
        with self._mutex:
            self.refresh()
            return ident in self._items

    def __len__(self) -> int:
        return self.count()
