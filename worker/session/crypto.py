"""Session backup encryption: scrypt (salt per file) + AES-256-GCM in authenticated chunks, behind a versioned header.

File layout, format version 2 (all integers unsigned bytes):

    0   8  magic b"CTSESSBK"
    8   1  format version (2)
    9   1  key derivation (1 = scrypt)
    10  1  scrypt log2(n)
    11  1  scrypt r
    12  1  scrypt p
    13 16  salt
    29  7  nonce prefix
    36  1  log2(chunk size) (20: 1 MiB)
    37  .. chunks: AES-GCM ciphertext of one chunk of plaintext, then its 16-byte tag; every chunk holds a whole
           chunk size of plaintext but the last, which holds 0 up to a chunk size. The nonce of chunk i is
           prefix + i (4 bytes, big-endian) + 1 for the last chunk else 0 (the STREAM construction), so chunks cannot
           be reordered, dropped or cut off at a chunk boundary unnoticed.

The whole header is authenticated with every chunk (GCM associated data), so a flipped header byte is refused like
a flipped ciphertext byte. `decrypt_file` authenticates the whole file before it writes a byte, and each chunk again
before its plaintext is written: a tampered backup yields no plaintext at all.

Format version 1 (written before chunking, still read): the same first 29 bytes, a 12-byte nonce, one GCM
ciphertext of the whole plaintext, its 16-byte tag at the end. Its plaintext can only be checked whole, so it is
checked whole before the pass that writes it.

The passphrase comes from $CONTINUITY_SESSION_KEY or `[session] key_file`, never from continuity.toml, and never
reaches a log line or an event.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from continuity.watchdog.instance import SESSION_KEY_ENV, Home, SessionConfig

KEY_ENV = SESSION_KEY_ENV  # the name tests and scripts know it by
MAGIC = b"CTSESSBK"
VERSION = 2  # written; 1 (one GCM stream) is still read
KDF_SCRYPT = 1
SCRYPT_LOG2_N, SCRYPT_R, SCRYPT_P = 15, 8, 1  # 32 MiB, ~0.1 s per derivation
LOG2_CHUNK = 20  # 1 MiB of plaintext a chunk
HEADER_SIZE = 37  # version 2
HEADER_SIZE_V1 = 41
TAG_SIZE = 16
READ_SIZE = 1 << 20  # version 1: bytes read at a time
# Bounds a header may ask for: a tampered header must not make us allocate gigabytes before the tag check.
_LOG2_N_RANGE, _R_RANGE, _P_RANGE, _LOG2_CHUNK_RANGE = range(10, 21), range(1, 33), range(1, 9), range(12, 25)
_AUTH_FAILED = "authentication failed: wrong passphrase, or the file was changed or damaged"


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


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    return prefix + index.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """A write-only binary stream: bytes written are encrypted into `dst`, a chunk at a time; `close()` writes the
    last chunk (it must be called: a file without its last chunk is refused)."""

    def __init__(
        self,
        dst: BinaryIO,
        passphrase: bytes,
        *,
        log2_n: int = SCRYPT_LOG2_N,
        r: int = SCRYPT_R,
        p: int = SCRYPT_P,
        log2_chunk: int = LOG2_CHUNK,
    ) -> None:
        if not passphrase:
            raise SessionKeyError("the session backup passphrase is empty")
        salt, self._prefix = os.urandom(16), os.urandom(7)
        self._header = MAGIC + bytes((VERSION, KDF_SCRYPT, log2_n, r, p)) + salt + self._prefix + bytes((log2_chunk,))
        assert len(self._header) == HEADER_SIZE
        self._aead = AESGCM(_derive(passphrase, salt, log2_n, r, p))
        self._chunk, self._index, self._buffer = 1 << log2_chunk, 0, bytearray()
        self._dst = dst
        self._dst.write(self._header)
        self.closed = False

    def _seal(self, plain: bytes, *, last: bool) -> None:
        if self._index >= 1 << 32:
            raise OverflowError("a session backup holds at most 2**32 chunks")
        self._dst.write(self._aead.encrypt(_nonce(self._prefix, self._index, last), plain, self._header))
        self._index += 1

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > self._chunk:  # a whole chunk is sealed once more follows: the last is marked
            self._seal(bytes(self._buffer[: self._chunk]), last=False)
            del self._buffer[: self._chunk]
        return len(data)

    def flush(self) -> None:
        self._dst.flush()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._seal(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._dst.flush()


def _open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading, refused unless it is a regular file (a FIFO would block the open or the reads)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise BackupRejected(path, f"cannot read it: {exc.strerror or exc}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BackupRejected(path, "not a regular file (a FIFO, a device or a folder?)")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_some(src: BinaryIO, path: Path, count: int) -> bytes:
    try:
        return src.read(count)
    except OSError as exc:
        raise BackupRejected(path, f"cannot read it: {exc.strerror or exc}") from exc


def _read_header(src: BinaryIO, path: Path, size: int) -> bytes:
    start = _read_some(src, path, 13)
    if len(start) < 13 or start[:8] != MAGIC:
        raise BackupRejected(path, "not a Continuity session backup (bad header)")
    version, kdf, log2_n, r, p = start[8:13]
    if version not in (1, VERSION) or kdf != KDF_SCRYPT:
        raise BackupRejected(path, f"unsupported backup format version {version} (kdf {kdf})")
    if log2_n not in _LOG2_N_RANGE or r not in _R_RANGE or p not in _P_RANGE:
        raise BackupRejected(path, "tampered header (scrypt parameters out of range)")
    length = HEADER_SIZE if version == VERSION else HEADER_SIZE_V1
    header = start + _read_some(src, path, length - 13)
    if len(header) < length:
        raise BackupRejected(path, "not a Continuity session backup (bad header)")
    if version == VERSION and header[36] not in _LOG2_CHUNK_RANGE:
        raise BackupRejected(path, "tampered header (chunk size out of range)")
    if size < len(header) + TAG_SIZE:
        raise BackupRejected(path, "truncated file")
    return header


def _exactly(src: BinaryIO, path: Path, count: int) -> bytes:
    data = _read_some(src, path, count)
    if len(data) != count:
        raise BackupRejected(path, "truncated file")
    return data


def _chunks(src: BinaryIO, path: Path, header: bytes, size: int, key: bytes) -> Iterator[bytes]:
    """The plaintext of version 2, a chunk at a time, each authenticated before it is yielded."""
    aead, prefix, whole = AESGCM(key), header[29:36], (1 << header[36]) + TAG_SIZE
    body = size - HEADER_SIZE
    count = max(1, -(-body // whole))
    last_size = body - (count - 1) * whole
    if last_size < TAG_SIZE:
        raise BackupRejected(path, "truncated file")
    if count > 1 << 32:
        raise BackupRejected(path, "too large to be a session backup")
    for index in range(count):
        last = index == count - 1
        data = _exactly(src, path, last_size if last else whole)
        yield aead.decrypt(_nonce(prefix, index, last), data, header)


def _stream_v1(src: BinaryIO, path: Path, header: bytes, size: int, key: bytes) -> Iterator[bytes]:
    """The plaintext of version 1: authenticated only as a whole, when the last piece has been yielded."""
    src.seek(size - TAG_SIZE)
    tag = _exactly(src, path, TAG_SIZE)
    src.seek(HEADER_SIZE_V1)
    decryptor = Cipher(algorithms.AES(key), modes.GCM(header[29:41], tag)).decryptor()
    decryptor.authenticate_additional_data(header)
    left = size - HEADER_SIZE_V1 - TAG_SIZE
    while left > 0:
        data = _exactly(src, path, min(READ_SIZE, left))
        left -= len(data)
        yield decryptor.update(data)
    yield decryptor.finalize()


def _read(path: Path, passphrase: bytes, dst: Writable | None) -> None:
    """Authenticate the whole of `path`; then, when `dst` is given, decrypt it into `dst` (a second pass, in which
    each chunk of version 2 is authenticated again before it is written)."""
    with _open_regular(path) as src:
        size = os.fstat(src.fileno()).st_size
        header = _read_header(src, path, size)
        key = _derive(passphrase, header[13:29], header[10], header[11], header[12])
        plaintext = _chunks if header[8] == VERSION else _stream_v1
        for out in (None, dst) if dst is not None else (None,):
            src.seek(len(header))
            try:
                for piece in plaintext(src, path, header, size, key):
                    if out is not None:
                        out.write(piece)  # an OSError here is the target's: raised as it is
            except InvalidTag:
                raise BackupRejected(path, _AUTH_FAILED) from None


def verify_file(path: Path, passphrase: bytes) -> None:
    """Check that `path` is a session backup that authenticates with `passphrase`. Raises BackupRejected."""
    _read(path, passphrase, None)


def decrypt_file(path: Path, passphrase: bytes, dst: Writable) -> None:
    """Decrypt backup `path` into `dst`. Raises BackupRejected, and then has written nothing to `dst`: the whole
    file is authenticated before the pass that writes. (Were the file changed between the two passes, version 2
    still writes only authenticated chunks and stops at the first changed one; version 1 can only tell at its end.)"""
    _read(path, passphrase, dst)


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
