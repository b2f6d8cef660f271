"""Session backups, hardened: no plaintext before authentication, restore on a fresh machine, FIFOs refused, and
each restore error said once. Real files, real CLI processes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import Home
from continuity.worker.session.crypto import (
    KEY_ENV,
    MAGIC,
    BackupRejected,
    EncryptingWriter,
    _derive,
    decrypt_file,
)
from tests.test_session_backup import KEY, PROFILE_FILES, _backups, _linked, _profile

SECRET = KEY.encode()
# Three chunks and a bit at 1 MiB a chunk, not compressible: tampering can hit the first, a middle or the last.
PLAIN = b"".join(i.to_bytes(4, "big") * 16 for i in range(52_000))


def _encrypt(path: Path, data: bytes = PLAIN) -> Path:
    with open(path, "wb") as raw:
        writer = EncryptingWriter(raw, SECRET, log2_n=10)
        for start in range(0, len(data), 70_000):
            writer.write(data[start : start + 70_000])
        writer.close()
    return path


def _encrypt_v1(path: Path, data: bytes = PLAIN) -> Path:
    """A backup in the format before chunking (version 1: one GCM stream, one tag at the end)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    header = MAGIC + bytes((1, 1, 10, 8, 1)) + salt + nonce
    path.write_bytes(header + AESGCM(_derive(SECRET, salt, 10, 8, 1)).encrypt(nonce, data, header))
    return path


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["last byte", "middle chunk", "first chunk", "v1 last byte", "v1 middle chunk"])
def test_a_tampered_backup_writes_no_plaintext_at_all(tmp_path: Path, where: str) -> None:
    """A flipped byte anywhere (the last one, a middle chunk; old and new format) is refused as failed
    authentication before a single plaintext byte reaches the target file."""
    source = _encrypt_v1(tmp_path / "a.cbk") if where.startswith("v1") else _encrypt(tmp_path / "a.cbk")
    size = source.stat().st_size
    offset = {"last byte": -1, "middle chunk": size // 2, "first chunk": 200}.get(where.removeprefix("v1 "), size // 2)
    _flip(source, offset % size)
    target = tmp_path / "plain.tar.gz"
    with open(target, "wb") as out, pytest.raises(BackupRejected, match="authentication failed"):
        decrypt_file(source, SECRET, out)
    assert target.stat().st_size == 0, "no unauthenticated (or partial) plaintext was written"


def test_both_formats_still_decrypt_whole(tmp_path: Path) -> None:
    """The chunked format (version 2) and the old one (version 1) both decrypt byte for byte."""
    for path in (_encrypt(tmp_path / "new.cbk"), _encrypt_v1(tmp_path / "old.cbk")):
        target = tmp_path / f"{path.stem}.out"
        with open(target, "wb") as out:
            decrypt_file(path, SECRET, out)
        assert target.read_bytes() == PLAIN
    assert (tmp_path / "new.cbk").read_bytes()[8] == 2 and (tmp_path / "old.cbk").read_bytes()[8] == 1


@pytest.mark.parametrize("cut", ["a whole last chunk", "inside the last chunk", "one byte"])
def test_a_backup_cut_at_a_chunk_boundary_is_refused(tmp_path: Path, cut: str) -> None:
    """Dropping whole chunks (a copy that stopped between two) is caught: the last chunk is marked as last."""
    path = _encrypt(tmp_path / "a.cbk")
    data = path.read_bytes()
    body_end = len(data) - (len(PLAIN) % (1 << 20) + 16)  # where the last (short) chunk starts
    keep = {"a whole last chunk": body_end, "inside the last chunk": body_end + 100, "one byte": len(data) - 1}[cut]
    path.write_bytes(data[:keep])
    target = tmp_path / "out"
    with open(target, "wb") as out, pytest.raises(BackupRejected):
        decrypt_file(path, SECRET, out)
    assert target.stat().st_size == 0


def test_restore_on_a_fresh_home_from_another_machines_backup(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`whatsapp restore FILE` on a home never started (no session/ at all) creates what it needs, privately, and
    puts the login back byte for byte."""
    monkeypatch.setenv(KEY_ENV, KEY)
    _profile(home)
    _linked(home)
    made = _backups(home).create(reason="test")
    copied = tmp_path / "copied.cbk"
    copied.write_bytes(made.read_bytes())
    fresh = Home(tmp_path / "new-machine")
    fresh.root.mkdir()
    result = CliRunner().invoke(
        cli, ["--home", str(fresh.root), "whatsapp", "restore", "--yes", str(copied)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    for rel, data in PROFILE_FILES.items():
        if not rel.endswith("LOCK"):
            assert (fresh.profile_dir / rel).read_bytes() == data, rel
    assert stat.S_IMODE(fresh.session_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(fresh.profile_dir.stat().st_mode) == 0o700
    assert not list(fresh.session_dir.glob(".restore-*"))


def _continuity(home: Home, *args: str, key: str | None = KEY, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV} | ({KEY_ENV: key} if key else {})
    return subprocess.run(
        [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def test_restore_refuses_a_fifo_at_once(home: Home, tmp_path: Path) -> None:
    """`whatsapp restore FIFO` does not wait for a writer: one clear line, exit 1, well within seconds."""
    fifo = tmp_path / "backup.cbk"
    os.mkfifo(fifo)
    result = _continuity(home, "whatsapp", "restore", "--yes", str(fifo), timeout=20)
    assert result.returncode == 1, result
    assert result.stderr.strip().splitlines() == [f"Error: {fifo} is not a regular file: refusing to restore from it"]


def test_decrypt_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    """decrypt_file itself (as the worker's restore action uses it) refuses a FIFO instead of waiting for a writer."""
    fifo = tmp_path / "backup.cbk"
    os.mkfifo(fifo)
    code = (
        "import io, sys\nfrom pathlib import Path\nfrom continuity.worker.session.crypto import decrypt_file\n"
        "try:\n    decrypt_file(Path(sys.argv[1]), b'k', io.BytesIO())\nexcept ValueError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=20)
    assert "not a regular file" in result.stdout, result


def test_each_restore_error_is_said_once(home: Home, tmp_path: Path) -> None:
    """A foreign file, a tampered backup, no key, or no usable backup: the reason appears once in the output (no
    log line echoing the error); a good restore says one line."""
    _profile(home)
    _linked(home)
    good = _backups(home).create(reason="test")
    tampered = tmp_path / "tampered.cbk"
    tampered.write_bytes(good.read_bytes())
    _flip(tampered, tampered.stat().st_size - 1)
    foreign = tmp_path / "foreign.cbk"
    foreign.write_bytes(b"hello, not a backup")
    cases = [
        (("restore", "--yes", str(foreign)), KEY, "not a Continuity session backup"),
        (("restore", "--yes", str(tampered)), KEY, "authentication failed"),
        (("restore", "--yes", str(good)), None, "no key configured"),
        (("restore", "--yes"), "another passphrase", "could be restored"),
        (("backup",), None, "no key configured"),
    ]
    for args, key, reason in cases:
        result = _continuity(home, "whatsapp", *args, key=key)
        output = result.stdout + result.stderr
        assert result.returncode == 1, (args, output)
        assert output.count(reason) == 1, (args, output)
        assert len(output.strip().splitlines()) == 1, (args, output)
    result = _continuity(home, "whatsapp", "restore", "--yes", str(good))
    assert result.returncode == 0 and len((result.stdout + result.stderr).strip().splitlines()) == 1, result
