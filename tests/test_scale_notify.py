"""Scale (issue "Scale"): the notify job follows the store's changes, so an idle pass touches nothing, while every
token is still notified exactly once across a SIGKILL and a store restore; the outbox counts without a scan."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from continuity.watchdog.instance import EventLog, Home, NotifyConfig
from continuity.worker.jobs import MORE_WORK, Job, JobContext, JobRunner
from continuity.worker.notify import NotifyJob, dedupe_key
from continuity.worker.store import CLAIMED, PENDING, SENT, InvalidRecord, Ledger, Outbox, StoreLocked, TokenStore
from continuity.worker.store._changes import ChangeLog
from tests._watchdog_harness import events, wait_for
from tests.test_store_damage import _damage

REPO = Path(__file__).resolve().parent.parent
PHONE = "15551234567"


class Counting:
    """A real store, outbox or ledger, with every call of the methods named in `counted` counted, and the records
    (or ids) they returned."""

    def __init__(self, inner: Any, counted: set[str]) -> None:
        self.inner, self.counted, self.calls, self.returned = inner, counted, Counter[str](), 0

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)
        if name not in self.counted:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            result = value(*args, **kwargs)
            self.returned += len(result) if isinstance(result, list | dict) else 1
            return result

        return call


READS = {"list", "ids", "get", "get_many", "find", "find_states", "dedupe_keys", "missing", "transaction"}
WRITES = {"enqueue", "update", "append", "extend", "put", "upsert"}


def _job(home: Home) -> NotifyJob:
    return NotifyJob(NotifyConfig(recipients=[PHONE]), events=EventLog(home.events_file, source="t"))


def _context(home: Home, store: Any, outbox: Any, ledger: Any) -> JobContext:
    return JobContext(store, outbox, ledger, logging.getLogger("t"), threading.Event(), home, None)


def _run_until_done(job: NotifyJob, context: JobContext) -> None:
    """Passes until the job has nothing left to look at (it slices big work across passes), then one more: the
    messages it queued itself are changes it looks at once."""
    for _ in range(100):
        if job(context) is not MORE_WORK and job(context) is not MORE_WORK:
            return
    raise AssertionError("the notify job never finished its work")


def _keys(outbox: Outbox) -> Counter[str]:
    return Counter(m["dedupe_key"] for m in outbox.list())


@pytest.mark.parametrize("state", ["pending", "notified"])
def test_an_idle_pass_reads_no_record_and_writes_nothing(home: Home, state: str) -> None:
    """2000 tokens, all queued (messages pending) or all notified: a pass with no change reads no token, message
    or ledger id and queues nothing (the old job listed every token and the whole ledger on every pass)."""
    with TokenStore.open(home) as store, Outbox.open(home) as outbox:
        store.import_records({"id": f"t{k:04d}", "symbol": "S", "chain": "sol"} for k in range(2000))
        spies = [Counting(part, READS | WRITES) for part in (store, outbox, Ledger(home))]
        context = _context(home, *spies)
        job = _job(home)
        _run_until_done(job, context)
        if state == "notified":
            for message in outbox.list():
                outbox.mark_sent(message["id"])
            _run_until_done(job, context)
            assert len(Ledger(home).ids()) == 2000
        for spy in spies:
            spy.calls.clear()
        for _ in range(3):
            assert job(context) is None
        assert [dict(spy.calls) for spy in spies] == [{}, {}, {}]
        assert len(outbox.list()) == 2000 and job.status()["waiting"] == (2000 if state == "pending" else 0)


def test_a_sent_message_settles_only_its_token(home: Home) -> None:
    """With 500 tokens waiting, one message sent: the next pass reads that token's records only and notifies it."""
    with TokenStore.open(home) as store, Outbox.open(home) as outbox:
        store.import_records({"id": f"t{k:03d}", "symbol": "S", "chain": "sol"} for k in range(500))
        ledger = Ledger(home)
        spy = Counting(store, {"get", "get_many", "list", "ids"})
        context = _context(home, spy, outbox, ledger)
        job = _job(home)
        _run_until_done(job, context)
        outbox.mark_sent(outbox.find(dedupe_key("t123", PHONE))["id"])  # type: ignore[index]
        spy.returned = 0
        assert job(context) is None
        assert spy.returned == 1  # that token's record; the old job listed all 500
        assert ledger.ids() == ["t123"] and store.get("t123")["notified_at"]  # type: ignore[index]
        assert job.status()["waiting"] == 499


class FailsOnce:
    """A real ledger whose `name` method raises StoreLocked the first time (its lock held too long)."""

    def __init__(self, inner: Any, name: str) -> None:
        self.inner, self.name, self.failed = inner, name, False

    def __getattr__(self, attr: str) -> Any:
        if attr != self.name or self.failed:
            return getattr(self.inner, attr)
        self.failed = True

        def locked(*_args: Any, **_kwargs: Any) -> Any:
            raise StoreLocked("sent_tokens.lock is held for more than 10 s")

        return locked


def test_a_pass_that_fails_while_collecting_changes_loses_none(home: Home) -> None:
    """The first pass raises while it looks for what to notify: the next pass still looks at every token (the
    change cursors had not moved on), so all are queued."""
    with TokenStore.open(home) as store, Outbox.open(home) as outbox:
        store.import_records({"id": f"t{k}", "symbol": "S", "chain": "sol"} for k in range(10))
        context = _context(home, store, outbox, FailsOnce(Ledger(home), "missing"))
        job = _job(home)
        with pytest.raises(StoreLocked):
            job(context)
        _run_until_done(job, context)
        assert _keys(outbox) == Counter({dedupe_key(f"t{k}", PHONE): 1 for k in range(10)})


def test_outbox_counts_need_no_scan_and_match_one(home: Home) -> None:
    """Counts per state kept in the index agree with a scan through enqueue, claim, lease expiry, release, retry,
    sent, failed, another process's writes and a reopen, and are answered without iterating the messages."""
    now = [1000.0]
    rng = random.Random(7)
    outbox = Outbox.open(home, clock=lambda: now[0])
    other = Outbox.open(home, clock=lambda: now[0])

    def scanned(box: Outbox) -> dict[str, int]:
        out = dict.fromkeys(("pending", "claimed", "sent", "failed"), 0)
        for m in box.list():
            expired = m["state"] == CLAIMED and (m["lease_expires_at"] or 0) <= now[0]
            out[PENDING if expired else m["state"]] += 1
        return out

    for step in range(300):
        box = rng.choice([outbox, other])
        roll = rng.random()
        if roll < 0.4:
            box.enqueue(PHONE, f"message {step}", dedupe_key=f"k{rng.randrange(200)}")
        elif roll < 0.6:
            box.claim(f"owner{rng.randrange(2)}", lease_s=rng.choice([1.0, 50.0]))
        elif roll < 0.75 and (claimed := box.list(state=CLAIMED)):
            box.mark_sent(rng.choice(claimed)["id"])
        elif roll < 0.85 and (claimed := box.list(state=CLAIMED)):
            box.mark_failed(rng.choice(claimed)["id"], "x", permanent=rng.random() < 0.5)
        elif roll < 0.9:
            box.release_claims(except_owner="owner0")
        else:
            now[0] += rng.choice([0.5, 2.0, 30.0])
        assert outbox.counts() == scanned(outbox), step
    other.close()
    outbox.close()
    reopened = Outbox.open(home, clock=lambda: now[0])
    expected, total = scanned(reopened), len(reopened.list())

    class NoScan(dict[str, Any]):
        def _refuse(self, *_args: Any) -> Any:
            raise AssertionError("counts() iterated every message")

        values = items = __iter__ = _refuse  # type: ignore[assignment]

    reopened._items = NoScan(reopened._items)
    assert reopened.counts() == expected and sum(expected.values()) == total
    reopened.close()


def test_enqueue_many_is_one_write_all_or_none_and_deduped(home: Home) -> None:
    """Messages queued together are one journal record; a bad one queues none; a key used before or earlier in
    the same call gives the existing message."""
    with Outbox.open(home, backup_interval=3600) as outbox:
        first, created = outbox.enqueue(PHONE, "one", dedupe_key="k1")
        assert created
        with pytest.raises(InvalidRecord):
            outbox.enqueue_many([(PHONE, "two", "k2"), (PHONE, "x" * 17000, "k3")])
        assert [m["dedupe_key"] for m in outbox.list()] == ["k1"]
        lines_before = outbox.journal_path.read_bytes().count(b"\n")
        answers = outbox.enqueue_many([(PHONE, "one again", "k1"), (PHONE, "two", "k2"), (PHONE, "2", "k2")])
        assert outbox.journal_path.read_bytes().count(b"\n") == lines_before + 1
        assert [(m["text"], created) for m, created in answers] == [("one", False), ("two", True), ("two", False)]
        assert answers[0][0]["id"] == first["id"] and len(outbox.list()) == 2


def test_change_log_answers_changes_or_everything() -> None:
    """Changes since a cursor in order, each id once; a reset or a cursor older than what is kept: None."""
    log = ChangeLog(limit=8)
    cursor, changed = log.since(-1)
    assert changed is None
    for ident in "abcab":
        log.note(ident)
    cursor, changed = log.since(cursor)
    assert changed == ["c", "a", "b"] and log.since(cursor) == (cursor, [])
    for k in range(20):
        log.note(f"x{k}")
    assert log.since(cursor)[1] is None  # more than the log keeps happened since: everything may have changed
    cursor = log.since(-1)[0]
    log.note("y")
    assert log.since(cursor)[1] == ["y"]
    log.reset()
    assert log.since(cursor)[1] is None


def test_store_restore_makes_the_job_look_again_and_requeue_nothing(home: Home) -> None:
    """tracked_tokens.json damaged, restored by another process from a backup that holds a token this job never
    saw: the running job notices the reload, queues every new token and re-queues none of the notified ones."""
    store, outbox, ledger = TokenStore.open(home), Outbox.open(home), Ledger(home)
    context = _context(home, store, outbox, ledger)
    job = _job(home)
    store.import_records({"id": f"t{k}", "symbol": "S", "chain": "sol"} for k in range(5))
    _run_until_done(job, context)
    for message in outbox.list():
        outbox.mark_sent(message["id"])
    _run_until_done(job, context)
    assert sorted(ledger.ids()) == [f"t{k}" for k in range(5)]
    with TokenStore.open(home) as cli:  # another process (new journals: this job's store never read them)
        cli.compact()
        cli.add("t5", symbol="S", chain="sol")  # then only in the backup's snapshot
        cli.backup()
        cli.add("t6", symbol="S", chain="sol")  # in the journal the restore replays
    assert _damage(home.data_dir / "tracked_tokens.json")
    with TokenStore.open(home) as cli:  # restores (that backup + the journal), then adds one more
        cli.add("t7", symbol="S", chain="sol")
    assert events(home, "store_restored")
    _run_until_done(job, context)
    assert _keys(outbox) == Counter({dedupe_key(f"t{k}", PHONE): 1 for k in range(8)})
    for message in outbox.list(state=PENDING):
        outbox.mark_sent(message["id"])
    _run_until_done(job, context)
    lines = (home.data_dir / "sent_tokens.txt").read_text().split()
    assert sorted(lines) == [f"t{k}" for k in range(8)]
    assert all(store.get(f"t{k}")["notified_at"] for k in range(8))  # type: ignore[index]
    store.close()
    outbox.close()


def test_more_work_runs_again_at_the_next_pass_not_after_the_interval(home: Home) -> None:
    """A job returning MORE_WORK is due again at once; one returning anything else waits its interval (seconds)."""
    now = [100.0]
    answers = [MORE_WORK, MORE_WORK, None]
    calls: list[float] = []

    def sliced(_context: JobContext) -> object:
        calls.append(now[0])
        return answers.pop(0) if answers else None

    context = JobContext(None, None, None, logging.getLogger("t"), threading.Event(), home, None)
    runner = JobRunner(
        [Job("sliced", sliced, 30.0)], context, events=EventLog(home.events_file, source="t"), clock=lambda: now[0]
    )
    for _ in range(4):
        hint = runner(None)
        now[0] += 1.0
    assert calls == [100.0, 101.0, 102.0] and hint == pytest.approx(29.0)  # due at 102 + 30, asked at 103


def _worker(home: Home) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CONTINUITY_HOME": str(home.root), "PYTHONPATH": str(REPO)}
    env.pop("CONTINUITY_WATCHDOG_PID", None)
    return subprocess.Popen([sys.executable, "-m", "continuity.worker"], env=env, stderr=subprocess.DEVNULL)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)


def test_sigkilled_workers_notify_every_token_exactly_once(home: Home) -> None:
    """Real workers SIGKILLed while queueing and while settling, tokens added meanwhile: in the end every token
    has exactly one message (one dedupe key), one ledger line and notified_at."""
    home.config_file.write_text(f'[whatsapp]\nenabled = false\n[notify]\nrecipients = ["{PHONE}"]\n')
    with TokenStore.open(home) as store:
        store.import_records({"id": f"a{k:04d}", "symbol": "S", "chain": "sol"} for k in range(3000))
    outbox = Outbox.open(home)
    worker = _worker(home)
    try:
        deadline = time.monotonic() + 60
        while outbox.open_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.001)
        _kill(worker)
        assert 0 < outbox.open_count() < 3000  # killed while queueing
        for message in outbox.list()[::2]:  # a sender: some went out while no worker ran
            outbox.mark_sent(message["id"])
        with TokenStore.open(home) as store:
            store.import_records({"id": f"b{k:04d}", "symbol": "S", "chain": "sol"} for k in range(500))
        worker = _worker(home)
        wait_for(lambda: len(_keys(outbox)) >= 3500, timeout=120, what="a message for every token")
        ledger = Ledger(home)
        for message in outbox.list(state=PENDING)[:2000]:
            outbox.mark_sent(message["id"])
        wait_for(lambda: len(ledger.ids()) >= 100, timeout=60, what="the first tokens settled")
        _kill(worker)
        worker = _worker(home)
        for message in outbox.list(state=PENDING):
            outbox.mark_sent(message["id"])
        wait_for(lambda: len(ledger.ids()) >= 3500, timeout=120, what="every token in the ledger")
    finally:
        _kill(worker)
    keys = _keys(outbox)
    outbox.close()
    assert len(keys) == 3500 and set(keys.values()) == {1}
    lines = (home.data_dir / "sent_tokens.txt").read_text().split()
    assert len(lines) == 3500 and len(set(lines)) == 3500
    with TokenStore.open(home) as store, Outbox.open(home) as reopened:
        assert all(token.get("notified_at") for token in store.list())
        assert {m["state"] for m in reopened.list()} == {SENT}
