"""Hardening of the store, its CLI and the notify job against hostile input, a read-only home and a full disk."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from continuity.watchdog.cli import cli
from continuity.watchdog.health import DEGRADED, HEALTHY, assess
from continuity.watchdog.instance import EventLog, Home, NotifyConfig
from continuity.worker.jobs import Job, JobContext, JobRunner
from continuity.worker.notify import NotifyJob, dedupe_key
from continuity.worker.store import Ledger, Outbox, TokenStore
from tests._watchdog_harness import FAST, events, start_watchdog, stop_watchdog, toml_value, wait_for

REPO = Path(__file__).resolve().parent.parent
PHONE = "15551234567"
FAILING_JOB = "tests.test_hardening_store:always_fails"


def always_fails(_context: JobContext) -> None:
    """A user job that raises on every run (used by the worker process in the health test)."""
    raise RuntimeError("price API down")


def run(home: Home, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--home", str(home.root), *args], catch_exceptions=False)


def cli_process(home: Home, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """`continuity --home HOME ARGS` as a real process."""
    argv = [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), *args]
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kwargs}
    return subprocess.run(argv, text=True, timeout=60, **streams)


def one_line_error(result: subprocess.CompletedProcess[str] | Result) -> str:
    """The single error line of a failed command (asserting there is exactly one, and no traceback)."""
    text = result.stderr if isinstance(result, subprocess.CompletedProcess) else result.output
    lines = [line for line in text.splitlines() if line.strip()]
    code = result.returncode if isinstance(result, subprocess.CompletedProcess) else result.exit_code
    assert code == 1, text[-2000:]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "Traceback" not in text, text[-2000:]
    return lines[0]


def stored_ids(home: Home) -> list[str]:
    with TokenStore.open(home) as store:
        return store.ids()


# -- 1. one unrenderable token does not block the others; a failing job makes health degraded ---------------
def test_unrenderable_token_is_skipped_once_and_later_tokens_are_queued(home: Home) -> None:
    """A token whose message text is too long is skipped (one event, reported), and later tokens are queued."""
    assert run(home, "tokens", "add", "bbb", "--symbol", "B" * 17000, "--chain", "sol").exit_code == 0
    assert run(home, "tokens", "add", "ccc", "--symbol", "C", "--chain", "sol").exit_code == 0
    with TokenStore.open(home) as store, Outbox.open(home) as outbox:
        context = JobContext(store, outbox, Ledger(home), logging.getLogger("t"), threading.Event(), home, None)
        job = NotifyJob(NotifyConfig(recipients=[PHONE]), events=EventLog(home.events_file, source="t"))
        job(context)
        job(context)
        assert outbox.find(dedupe_key("ccc", PHONE)) is not None
        assert outbox.find(dedupe_key("bbb", PHONE)) is None
    skipped = events(home, "notify_skipped")
    assert [e["token"] for e in skipped] == ["bbb"] and "16384" in skipped[0]["reason"]
    assert job.status()["skipped"] == 1 and job.status()["skipped_ids"] == ["bbb"]


def test_consecutive_job_errors_are_counted_and_reset_by_a_success(home: Home) -> None:
    """The jobs section says how many runs in a row failed and the last error; a success resets the count."""
    outcomes = [True, True, True, False]

    def flaky(_context: JobContext) -> None:
        if outcomes.pop(0):
            raise ValueError("bad data")

    context = JobContext(None, None, None, logging.getLogger("t"), threading.Event(), home, None)
    runner = JobRunner([Job("flaky", flaky, 0.0)], context, events=EventLog(home.events_file, source="t"))
    for _ in range(3):
        runner(None)
    assert runner.status()[0]["consecutive_errors"] == 3 and runner.status()[0]["last_error"] == "ValueError: bad data"
    runner(None)
    assert runner.status()[0]["consecutive_errors"] == 0 and runner.status()[0]["errors"] == 3


def test_health_rule_for_a_failing_job() -> None:
    """3 failed runs in a row: degraded, a reason and a fix_job sentence naming the job; 2: still healthy."""
    job = {"name": "mybot.prices:poll", "runs": 5, "errors": 3, "consecutive_errors": 3, "last_error": "KeyError: x"}
    beat = {"whatsapp": {"state": "ready"}, "jobs": [job]}
    failing = assess(watchdog_state="running", heartbeat=beat, heartbeat_age_s=1.0, heartbeat_timeout_s=60.0)
    assert failing["session_health"] == DEGRADED
    assert any("mybot.prices:poll" in reason for reason in failing["reasons"])
    assert "mybot.prices:poll" in failing["recommendations"]["fix_job"]
    beat["jobs"] = [{**job, "consecutive_errors": 2}, {"name": "odd", "consecutive_errors": "garbage"}]
    fine = assess(watchdog_state="running", heartbeat=beat, heartbeat_age_s=1.0, heartbeat_timeout_s=60.0)
    assert fine["session_health"] == HEALTHY and fine["recommendations"]["fix_job"] is None


def test_running_worker_skips_the_bad_token_and_reports_the_failing_job(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the real watchdog and worker: the later token is queued, and `status` is degraded naming the job."""
    assert run(home, "tokens", "add", "bbb", "--symbol", "B" * 17000, "--chain", "sol").exit_code == 0
    assert run(home, "tokens", "add", "ccc", "--symbol", "C", "--chain", "sol").exit_code == 0
    settings = {**FAST, "heartbeat_timeout": 10.0, "startup_grace": 20.0}
    home.config_file.write_text(
        "[watchdog]\n"
        + "".join(f"{key} = {toml_value(value)}\n" for key, value in settings.items())
        + "[worker]\nheartbeat_interval = 0.2\n[whatsapp]\nenabled = false\n[api]\nenabled = false\n"
        + f'[notify]\nrecipients = ["{PHONE}"]\n'
        + f'[[jobs]]\ncallable = "{FAILING_JOB}"\ninterval = 0.05\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    proc = start_watchdog(home)
    try:

        def queued() -> bool:
            with Outbox.open(home) as outbox:
                return outbox.find(dedupe_key("ccc", PHONE)) is not None

        wait_for(queued, timeout=30, what="the message for ccc")

        def degraded() -> dict[str, Any] | None:
            answer = cli_process(home, "status", "--json")
            report: dict[str, Any] = json.loads(answer.stdout)
            return report if answer.returncode == 1 and report["health"]["session_health"] == DEGRADED else None

        report = wait_for(degraded, timeout=30, what="status degraded")
    finally:
        stop_watchdog(proc)
    assert FAILING_JOB in report["health"]["recommendations"]["fix_job"]
    assert any(FAILING_JOB in reason for reason in report["health"]["reasons"])
    notify = next(job for job in report["heartbeat"]["jobs"] if job["name"] == "notify")
    assert notify["consecutive_errors"] == 0 and notify["errors"] == 0
    assert [e["token"] for e in events(home, "notify_skipped")] == ["bbb"]


# -- 2. deeply nested JSON ----------------------------------------------------------------------------------
def test_deeply_nested_data_is_one_line_error_and_nothing_stored(home: Home) -> None:
    """--data nested too deep to parse, or deeper than the store keeps, is one error line (exit 1), no record."""
    too_deep_to_parse = '{"a":' * 100_000 + "1" + "}" * 100_000
    deep = '{"a":' * 500 + "1" + "}" * 500
    for data in (too_deep_to_parse, deep):
        result = run(home, "tokens", "add", "x", "--data", data)
        assert "nest" in one_line_error(result)
    assert stored_ids(home) == []


def test_deeply_nested_import_is_one_line_error_and_nothing_stored(home: Home, tmp_path: Path) -> None:
    """An import file nested too deep (list, dict keyed by id, JSON lines) is one error line; nothing imported."""
    run(home, "tokens", "add", "keep")
    cases = {
        "list.json": "[" * 100_000 + "]" * 100_000,
        "dict.json": '{"k": ' + '{"a":' * 100_000 + "1" + "}" * 100_001,
        "lines.jsonl": '{"id": "ok"}\n' + '{"id": "d", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
        "moderate.json": json.dumps([{"id": "ok"}, {"id": "m", "x": json.loads("[" * 500 + "]" * 500)}]),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        assert "nest" in one_line_error(run(home, "tokens", "import", str(tmp_path / name))), name
    assert stored_ids(home) == ["keep"]


# -- 3. a read-only home, a full disk -----------------------------------------------------------------------
def _can_mount() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"], capture_output=True, timeout=30
    )
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs unshare -m and mount (a private mount namespace)")


def in_mount_namespace(setup: str, home: Home, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `setup` (mount commands) then `continuity --home HOME ARGS` in a private mount namespace."""
    argv = " ".join(f"'{part}'" for part in (sys.executable, "-m", "continuity.watchdog", "--home", str(home.root)))
    command = f"{setup} && exec {argv} " + " ".join(f"'{a}'" for a in args)
    return subprocess.run(["unshare", "-m", "sh", "-c", command], capture_output=True, text=True, timeout=60)


@needs_mount
def test_read_only_home_gives_one_line_for_every_store_command(home: Home) -> None:
    """On a read-only mount each store command exits 1 with one line naming the file and the reason."""
    assert run(home, "tokens", "add", "a").exit_code == 0
    read_only = f"mount --bind '{home.root}' '{home.root}' && mount -o remount,ro,bind '{home.root}'"
    commands = [
        ("tokens", "list"),
        ("tokens", "add", "b"),
        ("tokens", "remove", "a"),
        ("tokens", "backup"),
        ("tokens", "export"),
        ("send", PHONE, "hi"),
    ]
    for args in commands:
        line = one_line_error(in_mount_namespace(read_only, home, *args))
        assert "Read-only file system" in line and str(home.data_dir) in line, (args, line)
    assert stored_ids(home) == ["a"]


@needs_mount
def test_a_journal_that_cannot_be_opened_for_writing_is_not_moved_aside(home: Home) -> None:
    """A journal the store may not write is reported in one line and left where it is (not taken as damaged)."""
    assert run(home, "tokens", "add", "a").exit_code == 0
    journal = home.data_dir / "tracked_tokens.journal"
    read_only = f"mount --bind '{journal}' '{journal}' && mount -o remount,ro,bind '{journal}'"
    line = one_line_error(in_mount_namespace(read_only, home, "tokens", "list"))
    assert "tracked_tokens.journal" in line and "Read-only file system" in line
    assert not list(home.data_dir.glob("*.damaged-*")) and events(home, "journal_damaged") == []
    assert stored_ids(home) == ["a"]


NOBODY = 65534
needs_setpriv = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv to run as another user"
)


@needs_setpriv
def test_store_files_another_user_owns_are_reported_not_moved_aside() -> None:
    """As a user who may not write the journal or read the snapshot (left by a `sudo continuity ...`): one line,
    and neither file is taken for damaged, moved aside or replaced."""
    base = Path(tempfile.mkdtemp(prefix="continuity-perm-"))
    try:
        base.chmod(0o755)
        home = Home(base / "home")
        home.root.mkdir()
        assert run(home, "tokens", "add", "a").exit_code == 0
        for path in [home.root, *home.root.rglob("*")]:
            os.chown(path, NOBODY, NOBODY)
        journal, snapshot = home.data_dir / "tracked_tokens.journal", home.data_dir / "tracked_tokens.json"
        as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        argv = [*as_nobody, sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "tokens", "list"]
        for path, mode, words in ((journal, 0o644, "for writing"), (snapshot, 0o600, "cannot read")):
            os.chown(path, 0, 0)
            path.chmod(mode)
            result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            line = one_line_error(result)
            assert words in line and path.name in line and "Permission denied" in line, line
            assert not list(home.data_dir.glob("*.damaged-*")) and events(home, "journal_damaged") == []
            os.chown(path, NOBODY, NOBODY)
        assert stored_ids(home) == ["a"]
    finally:
        shutil.rmtree(base)


def test_data_path_blocked_even_for_root_gives_one_line(home: Home, tmp_path: Path) -> None:
    """A file where data/ should be, or a directory where the lock file should be: one line, exit 1."""
    blocked = Home(tmp_path / "blocked")
    blocked.root.mkdir()
    (blocked.root / "data").write_text("not a directory")
    assert "data" in one_line_error(cli_process(blocked, "tokens", "list"))
    assert run(home, "tokens", "add", "a").exit_code == 0
    (home.data_dir / "tracked_tokens.lock").unlink()
    (home.data_dir / "tracked_tokens.lock").mkdir()
    for args in (("tokens", "list"), ("tokens", "add", "b")):
        assert "tracked_tokens.lock" in one_line_error(cli_process(home, *args)), args


def test_export_to_a_full_disk_gives_one_line(home: Home, tmp_path: Path) -> None:
    """`tokens export -o FULL` and `tokens export > FULL` (FULL: a /dev/full device) fail with one line; the
    device is written to, never replaced by a regular file."""
    full_device = tmp_path / "full"  # a node of our own, so a regression cannot replace the system's /dev/full
    try:
        os.mknod(full_device, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except OSError as exc:
        pytest.skip(f"cannot create a /dev/full device node here: {exc}")
    assert run(home, "tokens", "add", "a", "--data", json.dumps({"pad": "x" * 20000})).exit_code == 0
    assert "No space left" in one_line_error(cli_process(home, "tokens", "export", "-o", str(full_device)))
    assert full_device.is_char_device()
    with open(full_device, "w") as full:
        result = cli_process(home, "tokens", "export", stdout=full)
    assert "No space left" in one_line_error(result)


@needs_mount
def test_backup_to_a_full_disk_gives_one_line(home: Home) -> None:
    """`tokens backup` onto a full file system (a filled tmpfs on data/backups) fails with one line."""
    assert run(home, "tokens", "add", "a", "--data", json.dumps({"pad": "x" * 20000})).exit_code == 0
    backups = home.data_dir / "backups"
    backups.mkdir(exist_ok=True)
    full = f"mount -t tmpfs -o size=16k tmpfs '{backups}' && (cat /dev/zero > '{backups}/filler' 2>/dev/null; true)"
    assert "No space left" in one_line_error(in_mount_namespace(full, home, "tokens", "backup"))
    assert stored_ids(home) == ["a"]


# -- 4. phone numbers: exactly what the message says -------------------------------------------------------
def test_send_accepts_only_plus_spaces_and_dashes(home: Home) -> None:
    """A trailing dot or parentheses are refused with the truthful message; '+', spaces and dashes are accepted."""
    for phone in ("15551234567.", "(1)5551234567", "1.555.123.4567"):
        line = one_line_error(run(home, "send", phone, "hi"))
        assert "a leading '+', spaces and dashes are ignored" in line, phone
    assert run(home, "send", " +1 555-123-4567 ", "hi").exit_code == 0
    with Outbox.open(home) as box:
        assert [m["phone"] for m in box.list()] == [PHONE]


# -- 5. a dict-keyed import whose "id" differs from its key ------------------------------------------------
def test_dict_import_with_an_id_different_from_its_key_is_refused(home: Home, tmp_path: Path) -> None:
    """{"k1": {"id": "other"}} is refused naming both (nothing stored); a matching "id" is accepted."""
    run(home, "tokens", "add", "keep")
    (tmp_path / "mismatch.json").write_text(json.dumps({"k0": {"id": "k0"}, "k1": {"id": "other"}}))
    line = one_line_error(run(home, "tokens", "import", str(tmp_path / "mismatch.json")))
    assert "'k1'" in line and "'other'" in line
    assert stored_ids(home) == ["keep"]
    (tmp_path / "match.json").write_text(json.dumps({"k1": {"id": "k1", "symbol": "K"}}))
    assert run(home, "tokens", "import", str(tmp_path / "match.json")).exit_code == 0
    assert stored_ids(home) == ["keep", "k1"]
