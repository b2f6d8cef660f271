"""Session backup encryption (scrypt + AES-GCM) and the passphrase sources: every bad input is refused clearly."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from continuity.watchdog.instance import Home, SessionConfig
from continuity.worker.session.crypto import (
    HEADER_SIZE,
    KEY_ENV,
    BackupRejected,
    EncryptingWriter,
    SessionKeyError,
    decrypt_file,
    load_passphrase,
)

SECRET = b"correct horse battery staple"
PLAIN = b"login storage " * 5000 + b"TOKEN-abc123"


def _encrypt(path: Path, data: bytes = PLAIN, passphrase: bytes = SECRET) -> Path:
    with open(path, "wb") as raw:
        writer = EncryptingWriter(raw, passphrase)
        for start in range(0, len(data), 7000):
            writer.write(data[start : start + 7000])
        writer.close()
    return path


def _decrypt(path: Path, passphrase: bytes = SECRET) -> bytes:
    out = io.BytesIO()
    decrypt_file(path, passphrase, out)
    return out.getvalue()


def test_round_trip_and_nothing_in_the_clear(tmp_path: Path) -> None:
    """What is written decrypts back byte for byte; the file holds no plaintext; two files never share a salt."""
    one, two = _encrypt(tmp_path / "a.cbk"), _encrypt(tmp_path / "b.cbk")
    assert _decrypt(one) == PLAIN
    assert b"TOKEN-abc123" not in one.read_bytes() and b"login storage" not in one.read_bytes()
    assert one.read_bytes()[:8] == b"CTSESSBK" and one.read_bytes()[8] == 2  # format 2: authenticated chunks
    assert one.read_bytes()[13:HEADER_SIZE] != two.read_bytes()[13:HEADER_SIZE]  # salt and nonce per file


def test_wrong_passphrase_is_refused_naming_the_file(tmp_path: Path) -> None:
    """Another passphrase: BackupRejected naming the file and saying why."""
    path = _encrypt(tmp_path / "a.cbk")
    with pytest.raises(BackupRejected, match="wrong passphrase") as caught:
        _decrypt(path, b"not it")
    assert str(path) in str(caught.value) and caught.value.path == path


@pytest.mark.parametrize("where", ["salt", "nonce", "body", "tag", "version"])
def test_one_flipped_byte_anywhere_is_refused(tmp_path: Path, where: str) -> None:
    """A single flipped bit in the header, the ciphertext or the tag is detected."""
    path = _encrypt(tmp_path / "a.cbk")
    data = bytearray(path.read_bytes())
    offset = {"salt": 14, "nonce": 30, "body": len(data) // 2, "tag": len(data) - 3, "version": 8}[where]
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(BackupRejected) as caught:
        _decrypt(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "bad header"),
        (b"PK\x03\x04 a zip, not ours" * 4, "bad header"),
        (b"CTSESSBK\x01\x01\x1e\x08\x01" + bytes(60), "out of range"),  # n = 2**30: refused before deriving
        (b"CTSESSBK\x07\x01\x0f\x08\x01" + bytes(60), "unsupported backup format version 7"),
        (b"CTSESSBK\x01\x01\x0f\x08\x01" + bytes(30), "truncated"),
    ],
)
def test_foreign_or_broken_files_are_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    """Empty, foreign, absurd-parameter, future-version and truncated files each get their own clear reason."""
    path = tmp_path / "x.cbk"
    path.write_bytes(content)
    with pytest.raises(BackupRejected, match=reason):
        _decrypt(path)


def test_truncated_body_is_refused(tmp_path: Path) -> None:
    """A backup cut short (a copy that did not finish) fails authentication."""
    path = _encrypt(tmp_path / "a.cbk")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(BackupRejected):
        _decrypt(path)


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    """Encrypting with an empty passphrase is a SessionKeyError, not a weak file."""
    with open(tmp_path / "a.cbk", "wb") as raw, pytest.raises(SessionKeyError, match="empty"):
        EncryptingWriter(raw, b"")


# -- where the passphrase comes from ------------------------------------------------------------------------


def _key_file(tmp_path: Path, text: str = "s3cret passphrase\n", mode: int = 0o600) -> Path:
    path = tmp_path / "keys" / "session.key"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_environment_wins_and_nothing_configured_is_none(home: Home, tmp_path: Path) -> None:
    """$CONTINUITY_SESSION_KEY is used first; with neither source set there is no key (None, not an invented one)."""
    key_file = _key_file(tmp_path)
    config = SessionConfig(key_file=str(key_file))
    assert load_passphrase(home, config, {KEY_ENV: "from env"}) == b"from env"
    assert load_passphrase(home, config, {}) == b"s3cret passphrase"  # trailing newline dropped
    assert load_passphrase(home, SessionConfig(), {KEY_ENV: ""}) is None


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("world", "chmod 600"),
        ("group", "chmod 600"),
        ("inside", "inside the home"),
        ("relative", "absolute path"),
        ("missing", "cannot read it"),
        ("empty", "is empty"),
        ("directory", "not a regular file"),
    ],
)
def test_unsafe_or_unusable_key_files_are_refused(home: Home, tmp_path: Path, setup: str, message: str) -> None:
    """A key file others can read, inside the home, relative, missing, empty or a folder: a clear SessionKeyError
    that never quotes the passphrase."""
    if setup == "inside":
        path = home.root / "session.key"
        path.write_text("s3cret passphrase")
        os.chmod(path, 0o600)
    elif setup == "relative":
        path = Path("session.key")
    elif setup == "missing":
        path = tmp_path / "nope.key"
    elif setup == "directory":
        path = tmp_path
    else:
        mode = {"world": 0o604, "group": 0o640, "empty": 0o600}[setup]
        path = _key_file(tmp_path, "" if setup == "empty" else "s3cret passphrase", mode)
    with pytest.raises(SessionKeyError, match=message) as caught:
        load_passphrase(home, SessionConfig(key_file=str(path)), {})
    assert "s3cret" not in str(caught.value)
