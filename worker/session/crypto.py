"""Session backup encryption: scrypt (salt per file) + AES-256-GCM, streamed, behind a versioned header.

File layout (all integers unsigned bytes):

    0   8  magic b"CTSESSBK"
    8   1  format version (1)
    9   1  key derivation (1 = scrypt)
    10  1  scrypt log2(n)
    11  1  scrypt r
    12  1  scrypt p
    13 16  salt
    29 12  GCM nonce
    41  .. ciphertext
    -16 16 GCM tag

The whole header is authenticated (GCM associated data), so a flipped header byte is refused like a flipped
ciphertext byte. The passphrase comes from $CONTINUITY_SESSION_KEY or `[session] key_file`, never from
continuity.toml, and never reaches a log line or an event.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from continuity.watchdog.config import SessionConfig
from continuity.watchdog.home import Home

KEY_ENV = "CONTINUITY_SESSION_KEY"
MAGIC = b"CTSESSBK"
VERSION = 1
KDF_SCRYPT = 1
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 15, 8, 1  # 32 MiB, ~0.1 s per derivation
HEADER_SIZE = 41
TAG_SIZE = 16
CHUNK = 1 << 20
# Bounds a header may ask for: a tampered header must not make us allocate gigabytes before the tag check.
_LOG2_N_RANGE, _R_RANGE, _P_RANGE = range(10, 21), range(1, 33), range(1, 9)


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class SessionKeyError(ValueError):
    """The backup passphrase is configured wrongly (unsafe or unreadable key file, empty passphrase)."""


class BackupRejected(ValueError):
    """A backup file was refused: wrong passphrase, tampered or truncated, or not a session backup at all."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"session backup {path} refused: {reason}")
        self.path = path
        self.reason = reason


def _derive(passphrase: bytes, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(passphrase)


class EncryptingWriter:
    """A write-only binary stream: bytes written are encrypted into `dst`; `close()` appends the tag."""

    def __init__(
        self, dst: BinaryIO, passphrase: bytes, *, log2_n: int = SCRYPT_LOG2_N, r: int = SCRYPT_R, p: int = SCRYPT_P
    ) -> None:
        if not passphrase:
            raise SessionKeyError("the session backup passphrase is empty")
        salt, nonce = os.urandom(16), os.urandom(12)
        header = MAGIC + bytes((VERSION, KDF_SCRYPT, log2_n, r, p)) + salt + nonce
        assert len(header) == HEADER_SIZE
        key = _derive(passphrase, salt, log2_n, r, p)
        self._encryptor = Cipher(algorithms.AES(key), modes.GCM(nonce)).encryptor()
        self._encryptor.authenticate_additional_data(header)
        self._dst = dst
        self._dst.write(header)
        self.closed = False

    def write(self, data: bytes) -> int:
        self._dst.write(self._encryptor.update(data))
        return len(data)

    def flush(self) -> None:
        self._dst.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._dst.write(self._encryptor.finalize())
            self._dst.write(self._encryptor.tag)
            self._dst.flush()


def decrypt_file(path: Path, passphrase: bytes, dst: Writable) -> None:
    """Decrypt backup `path` into `dst`. Raises BackupRejected; then `dst` holds unauthenticated bytes: discard it."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as src:
            header = src.read(HEADER_SIZE)
            if len(header) < HEADER_SIZE or header[:8] != MAGIC:
                raise BackupRejected(path, "not a Continuity session backup (bad header)")
            version, kdf, log2_n, r, p = header[8:13]
            if version != VERSION or kdf != KDF_SCRYPT:
                raise BackupRejected(path, f"unsupported backup format version {version} (kdf {kdf})")
            if log2_n not in _LOG2_N_RANGE or r not in _R_RANGE or p not in _P_RANGE:
                raise BackupRejected(path, "tampered header (scrypt parameters out of range)")
            if size < HEADER_SIZE + TAG_SIZE:
                raise BackupRejected(path, "truncated file")
            src.seek(size - TAG_SIZE)
            tag = src.read(TAG_SIZE)
            src.seek(HEADER_SIZE)
            key = _derive(passphrase, header[13:29], log2_n, r, p)
            decryptor = Cipher(algorithms.AES(key), modes.GCM(header[29:41], tag)).decryptor()
            decryptor.authenticate_additional_data(header)
            left = size - HEADER_SIZE - TAG_SIZE
            while left > 0:
                chunk = src.read(min(CHUNK, left))
                if not chunk:
                    raise BackupRejected(path, "truncated file")
                left -= len(chunk)
                dst.write(decryptor.update(chunk))
            try:
                dst.write(decryptor.finalize())
            except InvalidTag:
                raise BackupRejected(
                    path, "authentication failed: wrong passphrase, or the file was changed or damaged"
                ) from None
    except OSError as exc:
        raise BackupRejected(path, f"cannot read it: {exc.strerror or exc}") from exc


def key_file_problem(path: Path, home: Home) -> str | None:
    """Why `path` is not an acceptable key file (None when it is): outside the home, 0600, readable, not empty."""
    if not path.is_absolute():
        return f"[session] key_file {path} must be an absolute path (outside the home)"
    resolved = path.resolve()
    if resolved == home.root or home.root in resolved.parents:
        return (
            f"[session] key_file {path} is inside the home {home.root}: a copy of the home would carry its own key; "
            "move it outside (e.g. ~/.config/continuity/session.key)"
        )
    try:
        info = path.stat()
    except OSError as exc:
        return f"[session] key_file {path}: cannot read it: {exc.strerror or exc}"
    if not stat.S_ISREG(info.st_mode):
        return f"[session] key_file {path} is not a regular file"
    if os.name == "posix" and info.st_mode & 0o077:
        return (
            f"[session] key_file {path} has mode {stat.S_IMODE(info.st_mode):04o}: other users can read or change "
            f"it; run: chmod 600 {path}"
        )
    return None


def load_passphrase(home: Home, config: SessionConfig, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The backup passphrase: $CONTINUITY_SESSION_KEY, else `[session] key_file`; None when neither is set.

    Raises SessionKeyError for an unsafe or unreadable key file or an empty one.
    """
    env = os.environ if environ is None else environ
    value = env.get(KEY_ENV, "")
    if value:
        return value.encode("utf-8")
    if not config.key_file:
        return None
    path = Path(config.key_file).expanduser()
    problem = key_file_problem(path, home)
    if problem:
        raise SessionKeyError(problem)
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise SessionKeyError(f"[session] key_file {path}: cannot read it: {exc.strerror or exc}") from exc
    if not secret:
        raise SessionKeyError(f"[session] key_file {path} is empty: write a long random passphrase into it")
    return secret
