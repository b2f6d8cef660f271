"""The durable token store, outbox and sent-token ledger shared by the worker and the CLI (issue 3).

Every change is fsynced to an append-only journal under a cross-process file lock before the call returns; a
human-readable snapshot (`data/tracked_tokens.json`, `data/outbox.json`) is rewritten atomically now and then;
verified backups go to `data/backups/`."""

from __future__ import annotations

from ._engine import DurableMap
from ._errors import (
    DuplicateId,
    ImportFormatError,
    InvalidPhone,
    InvalidRecord,
    RecordTooLarge,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreUnavailable,
    StoreWriteError,
    TokenNotFound,
)
from ._files import limit_malloc_arenas
from ._imports import parse_import
from ._ledger import Ledger
from ._outbox import CLAIMED, FAILED, PENDING, SENT, Outbox, normalize_phone
from ._tokens import TokenStore, TokenTransaction
from ._validate import MAX_NESTING, MAX_RECORD_BYTES, loads

__all__ = [
    "CLAIMED",
    "FAILED",
    "MAX_NESTING",
    "MAX_RECORD_BYTES",
    "PENDING",
    "SENT",
    "DuplicateId",
    "DurableMap",
    "ImportFormatError",
    "InvalidPhone",
    "InvalidRecord",
    "Ledger",
    "Outbox",
    "RecordTooLarge",
    "StoreCorrupt",
    "StoreError",
    "StoreLocked",
    "StoreUnavailable",
    "StoreWriteError",
    "TokenNotFound",
    "TokenStore",
    "TokenTransaction",
    "limit_malloc_arenas",
    "loads",
    "normalize_phone",
    "parse_import",
]
