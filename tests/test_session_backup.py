"""SessionBackups on real files (no browser): what is copied, rotation, modes, staging, restore bookkeeping, CLI."""

from __future__ import annotations

import io
import itertools
import json
import os
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import EventLog, Home, SessionConfig
from continuity.worker.session.archive import MANIFEST
from continuity.worker.session.backup import NoUsableBackup, SessionBackups
from continuity.worker.session.crypto import KEY_ENV, BackupRejected, EncryptingWriter, SessionKeyError
from continuity.worker.session.login import AutoRestore
from tests._watchdog_harness import events

KEY = "a long random passphrase"
TOKEN = b"LOGIN-TOKEN-9f8e7d6c5b4a"
PROFILE_FILES = {
    "Local State": b'{"os_crypt": {}}',
    "Default/Preferences": b"{}",
    "Default/Local Storage/leveldb/000003.log": b"_http://127.0.0.1\x00\x01wa-token\x00\x01" + TOKEN,
    "Default/Local Storage/leveldb/LOCK": b"",
    "Default/IndexedDB/http_127.0.0.1_1.indexeddb.leveldb/000003.log": b"WASimSession" + TOKEN,
    "Default/Cookies": b"SQLite format 3\x00",
}
CACHES = {"Default/Cache/Cache_Data/f_000001": b"cached page", "GrShaderCache/data_0": b"shader"}


def _profile(home: Home, files: dict[str, bytes] | None = None) -> None:
    for rel, data in {**PROFILE_FILES, **CACHES, **(files or {})}.items():
        path = home.profile_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def _backups(home: Home, key: str | None = KEY, **config: object) -> SessionBackups:
    environ = {KEY_ENV: key} if key else {}
    return SessionBackups(
        home,
        SessionConfig(**config),
        events=EventLog(home.events_file, source="t"),
        environ=environ,  # type: ignore[arg-type]
    )


def _linked(home: Home, linked_at: float = 1000.0) -> None:
    home.session_dir.mkdir(parents=True, exist_ok=True)
    home.linked_file.write_text(json.dumps({"linked_at": linked_at}))


def test_backup_holds_only_the_login_storage_encrypted_and_private(home: Home) -> None:
    """A backup is 0600 in a 0700 folder, has no login bytes in the clear, and unpacks to the login files only."""
    _profile(home)
    backups = _backups(home)
    path = backups.create(reason="test")
    assert path.parent == home.session_backups_dir
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert TOKEN not in path.read_bytes()
    staged = backups.stage(path)
    got = {p.relative_to(staged.folder).as_posix() for p in staged.folder.rglob("*") if p.is_file()}
    assert got == set(PROFILE_FILES) - {"Default/Local Storage/leveldb/LOCK"}
    assert staged.manifest["reason"] == "test"
    [event] = events(home, "session_backup_created")
    assert event["files"] == 5 and event["file"] == path.name and KEY not in home.events_file.read_text()


def test_only_the_newest_backups_are_kept(home: Home) -> None:
    """max_session_backups = 2: after three backups the oldest is gone (and that is recorded)."""
    _profile(home)
    clock = itertools.count(1_000_000, 10)
    backups = SessionBackups(
        home,
        SessionConfig(max_session_backups=2),
        events=EventLog(home.events_file, source="t"),
        environ={KEY_ENV: KEY},
        wall_clock=lambda: float(next(clock)),
    )
    made = [backups.create(reason="test") for _ in range(3)]
    assert backups.files() == [made[2], made[1]]
    assert events(home, "session_backups_pruned")[0]["removed"] == [made[0].name]


def test_apply_replaces_the_login_storage_and_keeps_the_rest(home: Home) -> None:
    """Restoring puts the backed-up login back, drops login files the backup lacks, leaves caches alone."""
    _profile(home)
    backups = _backups(home)
    path = backups.create(reason="test")
    (home.profile_dir / "Default/Local Storage/leveldb/000003.log").write_bytes(b"a different, logged-out profile")
    (home.profile_dir / "Default/Session Storage").mkdir(parents=True)
    (home.profile_dir / "Default/Session Storage/000005.log").write_bytes(b"stale")
    backups.apply(backups.stage(path))
    assert (home.profile_dir / "Default/Local Storage/leveldb/000003.log").read_bytes().endswith(TOKEN)
    assert not (home.profile_dir / "Default/Session Storage").exists()
    assert (home.profile_dir / "Default/Cache/Cache_Data/f_000001").read_bytes() == b"cached page"
    assert not list(home.session_dir.glob(".restore-*")), "the staging folder is removed"
    assert events(home, "session_restore_applied")[0]["file"] == str(path)


def test_no_key_means_no_backup_and_one_clear_warning(home: Home) -> None:
    """Without a passphrase nothing is written, create() says why, and the warning event is recorded once."""
    _profile(home)
    backups = _backups(home, key=None)
    assert backups.due() is False
    with pytest.raises(SessionKeyError, match="CONTINUITY_SESSION_KEY"):
        backups.create(reason="test")
    assert backups.create_quietly(reason="test") is None
    assert not home.session_backups_dir.exists() or not backups.files()
    assert len(events(home, "session_backup_disabled")) == 1
    assert backups.status()["enabled"] is False


def test_empty_profile_is_not_backed_up(home: Home) -> None:
    """A profile without login storage gives an error and leaves no file; with no backup, restore says so."""
    backups = _backups(home)
    with pytest.raises(FileNotFoundError, match="no login storage"):
        backups.create(reason="test")
    assert backups.files() == []
    assert not list(home.session_backups_dir.iterdir())
    with pytest.raises(NoUsableBackup, match="no session backup"):
        backups.stage_for_restore()


def test_a_tampered_backup_is_skipped_for_the_next(home: Home) -> None:
    """stage_first: a backup with one flipped byte is refused (event naming it) and the older one is staged."""
    _profile(home)
    clock = itertools.count(1_000_000, 10)
    backups = SessionBackups(
        home, SessionConfig(), events=EventLog(home.events_file, source="t"), environ={KEY_ENV: KEY},
        wall_clock=lambda: float(next(clock)),
    )  # fmt: skip
    older, newest = backups.create(reason="t"), backups.create(reason="t")
    data = bytearray(newest.read_bytes())
    data[-40] ^= 0x80
    newest.write_bytes(bytes(data))
    staged = backups.stage_first(backups.files())
    assert staged is not None and staged.source == older
    [rejected] = events(home, "session_backup_rejected")
    assert rejected["file"] == str(newest) and "authentication failed" in rejected["reason"]


def test_an_authentic_archive_with_a_path_outside_the_login_storage_is_refused(home: Home) -> None:
    """Even a correctly encrypted archive may only hold login-storage paths (no ../, no other files)."""
    path = home.session_backups_dir / "session-evil.cbk"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as raw:
        writer = EncryptingWriter(raw, KEY.encode())
        with tarfile.open(fileobj=writer, mode="w|gz") as tar:  # type: ignore[call-overload]
            for name in (MANIFEST, "../../evil.sh"):
                info = tarfile.TarInfo(name)
                info.size = 2
                tar.addfile(info, io.BytesIO(b"{}"))
        writer.close()
    with pytest.raises(BackupRejected, match="unexpected entry"):
        _backups(home).stage(path)
    assert not (home.root.parent / "evil.sh").exists()


def test_restore_bookkeeping_logout_and_exhaustion(home: Home) -> None:
    """A phone logout (?post_logout=1) settles the pairing without restoring; with no backups a QR is asked for
    once; a new pairing (new linked_at) makes restores possible again."""
    _profile(home)
    _linked(home, 1000.0)
    backups = _backups(home)
    restore = AutoRestore(backups)
    assert restore.for_lost_login({"url": "http://x/?post_logout=1"}) is None
    assert restore.for_lost_login({"url": "http://x/"}) is None  # settled for this pairing
    assert [e["event"] for e in events(home) if e["event"].startswith("session_")] == ["session_restore_skipped"]
    _linked(home, 2000.0)
    assert restore.for_lost_login({"url": "http://x/"}) is None  # no backups at all
    assert events(home, "session_restore_failed")
    backups.create(reason="t")
    _linked(home, 3000.0)
    staged = restore.for_lost_login({"url": "http://x/"})
    assert staged is not None and staged.source == backups.files()[0]
    assert AutoRestore(_backups(home, auto_restore=False)).for_lost_login({"url": "http://x/"}) is None


# -- the CLI with no watchdog running: it works on the profile directly -------------------------------------


def _cli(home: Home, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home.root), "whatsapp", *args], catch_exceptions=False)


def test_cli_backup_and_restore_without_a_worker(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """`whatsapp backup` writes a backup, `whatsapp restore --yes` puts the login back into a deleted profile."""
    monkeypatch.setenv(KEY_ENV, KEY)
    _profile(home)
    _linked(home)
    result = _cli(home, "backup")
    assert result.exit_code == 0, result.output
    [path] = _backups(home).files()
    assert str(path) in result.output
    for rel in PROFILE_FILES:
        (home.profile_dir / rel).unlink()
    result = _cli(home, "restore", "--yes", str(path))
    assert result.exit_code == 0, result.output
    assert (home.profile_dir / "Default/IndexedDB/http_127.0.0.1_1.indexeddb.leveldb/000003.log").exists()


def test_cli_refuses_bad_input_clearly(home: Home, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key, a never-linked profile, a wrong passphrase, a foreign file, no backups: each a clear error, exit 1."""
    _profile(home)
    monkeypatch.delenv(KEY_ENV, raising=False)
    _linked(home)
    result = _cli(home, "backup")
    assert result.exit_code == 1 and "CONTINUITY_SESSION_KEY" in result.output
    monkeypatch.setenv(KEY_ENV, KEY)
    result = _cli(home, "restore", "--yes")
    assert result.exit_code == 1 and "no session backup" in result.output
    assert _cli(home, "backup").exit_code == 0
    monkeypatch.setenv(KEY_ENV, "Zq9-other-passphrase")
    result = _cli(home, "restore", "--yes")
    assert result.exit_code == 1 and "could be restored" in result.output
    foreign = tmp_path / "foreign.cbk"
    foreign.write_bytes(b"hello")
    result = _cli(home, "restore", "--yes", str(foreign))
    assert result.exit_code == 1 and "not a Continuity session backup" in result.output
    home.linked_file.unlink()
    result = _cli(home, "backup")
    assert result.exit_code == 1 and "never linked" in result.output
    assert os.environ[KEY_ENV] not in home.events_file.read_text()
