"""The worker engine on a real store: notify job, user jobs, outbox sending, control actions."""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any

import pytest

from continuity.watchdog.instance import ConfigError, EventLog, Home, JobConfig, NotifyConfig, control
from continuity.worker.control_requests import ActionDispatcher
from continuity.worker.delivery import FAILED, RETRY, SENT, OutboxSender, SendOutcome
from continuity.worker.jobs import Job, JobContext, JobRunner, load_callable
from continuity.worker.notify import NotifyJob, template_fields
from continuity.worker.store import Ledger, Outbox, TokenStore
from tests._watchdog_harness import assert_each_sigterm_arrives, events


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class RecordingSender:
    """A fake session: records what it was asked to send and answers with scripted outcomes."""

    def __init__(self, outcomes: list[SendOutcome] | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.outcomes = list(outcomes or [])
        self.is_ready = True

    def ready(self) -> bool:
        return self.is_ready

    def send(self, message: dict[str, Any], note: Any) -> SendOutcome:
        note(seen_before=len(self.calls))
        self.calls.append({"phone": message["phone"], "text": message["text"]})
        return self.outcomes.pop(0) if self.outcomes else SendOutcome(SENT)


@pytest.fixture
def parts(home: Home) -> Any:
    store, outbox, ledger = TokenStore.open(home), Outbox.open(home), Ledger(home)
    context = JobContext(store, outbox, ledger, logging.getLogger("t"), threading.Event(), home, None)
    yield store, outbox, ledger, context
    store.close()
    outbox.close()


def test_notify_queues_one_message_per_recipient_once(home: Home, parts: Any) -> None:
    """Each token becomes one message per recipient; running the job again queues nothing more."""
    store, outbox, _ledger, context = parts
    store.add("tok1", symbol="ABC", chain="sol")
    store.add("tok2", symbol="XYZ", chain="eth")
    job = NotifyJob(
        NotifyConfig(recipients=["15551234567", "447700900123"]), events=EventLog(home.events_file, source="t")
    )
    job(context)
    job(context)
    messages = outbox.list()
    assert len(messages) == 4
    assert {m["text"] for m in messages} == {"New token ABC on sol (tok1)", "New token XYZ on eth (tok2)"}


def test_notify_marks_token_and_ledger_once_all_sent(home: Home, parts: Any) -> None:
    """Only when every recipient's message is sent is the token marked notified and written to the ledger."""
    store, outbox, ledger, context = parts
    store.add("tok1", symbol="ABC", chain="sol")
    job = NotifyJob(
        NotifyConfig(recipients=["15551234567", "447700900123"]), events=EventLog(home.events_file, source="t")
    )
    job(context)
    first, second = outbox.list()
    outbox.mark_sent(first["id"])
    job(context)
    assert ledger.ids() == [] and not store.get("tok1").get("notified_at")
    outbox.mark_sent(second["id"])
    job(context)
    job(context)
    assert ledger.ids() == ["tok1"] and store.get("tok1")["notified_at"]
    assert (home.data_dir / "sent_tokens.txt").read_text() == "tok1\n"


def test_notify_after_a_crash_requeues_nothing(home: Home, parts: Any) -> None:
    """A new job instance (a restarted worker) finds the queued messages by dedupe key: no duplicates."""
    store, _outbox, _ledger, context = parts
    store.add("tok1", symbol="ABC", chain="sol")
    config = NotifyConfig(recipients=["15551234567"])
    NotifyJob(config, events=EventLog(home.events_file, source="t"))(context)
    reopened = Outbox.open(home)
    context.outbox = reopened
    NotifyJob(config, events=EventLog(home.events_file, source="t"))(context)
    assert len(reopened.list()) == 1
    reopened.close()


def test_damaged_ledger_and_outbox_send_nothing_twice(home: Home, parts: Any) -> None:
    """sent_tokens.txt and outbox.json cut to half plus garbage: a restarted job queues nothing again, and the
    ledger gets every notified token back."""
    store, outbox, _ledger, context = parts
    for k in range(20):
        store.add(f"tok{k:02d}", symbol="S", chain="sol")
    config = NotifyConfig(recipients=["15551234567"])
    NotifyJob(config, events=EventLog(home.events_file, source="t"))(context)
    for message in outbox.list():
        outbox.mark_sent(message["id"])
    NotifyJob(config, events=EventLog(home.events_file, source="t"))(context)
    outbox.compact()  # every message's outcome is in the snapshot only (and the segment kept in backups/)
    for name in ("sent_tokens.txt", "outbox.json"):
        path = home.data_dir / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2] + b"\x00garbage")
    context.outbox, context.ledger = Outbox.open(home), Ledger(home)
    NotifyJob(config, events=EventLog(home.events_file, source="t"))(context)
    messages = context.outbox.list()
    context.outbox.close()
    assert len(messages) == 20 and {m["state"] for m in messages} == {"sent"}
    assert sorted(Ledger(home).ids()) == [f"tok{k:02d}" for k in range(20)]
    assert events(home, "ledger_repaired")[0]["tokens"] > 0


def test_token_missing_a_template_field_is_skipped_with_an_event(home: Home, parts: Any) -> None:
    """A token without a field the template uses is not notified, is reported once, and nothing crashes."""
    store, outbox, _ledger, context = parts
    store.add("tok1", chain="sol")
    job = NotifyJob(NotifyConfig(recipients=["15551234567"]), events=EventLog(home.events_file, source="t"))
    job(context)
    job(context)
    assert outbox.list() == []
    skipped = events(home, "notify_skipped")
    assert len(skipped) == 1 and skipped[0]["missing"] == ["symbol"]


@pytest.mark.parametrize("template", ["New {symbol", "Token {0}", "Token {token.symbol}", "{symbol!z}"])
def test_bad_templates_are_config_errors(template: str) -> None:
    """A template that cannot be formatted is refused at start as a configuration error."""
    with pytest.raises(ConfigError, match=r"notify\.template"):
        template_fields(template)


def test_failing_job_is_counted_and_the_loop_goes_on(home: Home, parts: Any) -> None:
    """An exception in a job is logged with its traceback, counted, recorded; later jobs still run."""
    *_, context = parts
    ran: list[str] = []

    def broken(_ctx: JobContext) -> None:
        raise RuntimeError("price API down")

    clock = Clock()
    runner = JobRunner(
        [Job("broken", broken, 30.0), Job("fine", lambda _c: ran.append("fine"), 30.0)],
        context,
        events=EventLog(home.events_file, source="t"),
        clock=clock,
    )
    assert runner(None) == 30.0
    assert ran == ["fine"]
    assert runner.status()[0]["errors"] == 1 and "price API down" in runner.status()[0]["last_error"]
    assert events(home, "job_failed")[0]["job"] == "broken"


def test_overrunning_job_is_reported(home: Home, parts: Any) -> None:
    """A job that takes longer than its interval is reported as an overrun."""
    *_, context = parts
    clock = Clock()

    def slow(_ctx: JobContext) -> None:
        clock.now += 45

    runner = JobRunner([Job("slow", slow, 30.0)], context, events=EventLog(home.events_file, source="t"), clock=clock)
    runner(None)
    assert runner.jobs[0].overruns == 1
    assert events(home, "job_overrun")[0]["duration_s"] == 45


def test_job_callables_are_checked_at_start() -> None:
    """A job naming a missing module or function is a configuration error, not a crash later."""
    assert load_callable("json:dumps") is not None
    with pytest.raises(ConfigError, match="cannot import"):
        load_callable("no_such_module_xyz:run")
    with pytest.raises(ConfigError, match="has no"):
        load_callable("json:no_such_function")
    with pytest.raises(ConfigError):
        JobRunner.from_config([JobConfig(callable="json:nothing")], None, events=None)  # type: ignore[arg-type]


def test_sender_records_each_outcome(home: Home, parts: Any) -> None:
    """sent -> acked; retry -> pending with a retry time; failed -> failed for good; exception -> retry."""
    _store, outbox, _ledger, _context = parts
    ids = [outbox.enqueue("15551234567", f"m{i}")[0]["id"] for i in range(4)]

    class Exploding(RecordingSender):
        def send(self, message: dict[str, Any], note: Any) -> SendOutcome:
            if len(self.calls) == 3:
                raise RuntimeError("chrome not reachable")
            return super().send(message, note)

    fake = Exploding([SendOutcome(SENT), SendOutcome(RETRY, "stuck on clock"), SendOutcome(FAILED, "invalid number")])
    clock = Clock()
    sender = OutboxSender(outbox, fake, min_interval_s=0, events=EventLog(home.events_file, source="t"), clock=clock)
    for _ in range(4):
        sender(None)
    states = [outbox.get(i) for i in ids]
    assert states[0]["state"] == "sent" and states[0]["seen_before"] == 0 and states[2]["seen_before"] == 2
    assert states[1]["state"] == "pending" and states[1]["retry_at"] and states[1]["last_error"] == "stuck on clock"
    assert states[2]["state"] == "failed" and states[2]["last_error"] == "invalid number"
    assert states[3]["state"] == "pending" and "chrome not reachable" in states[3]["last_error"]


def test_sender_keeps_the_minimum_interval(home: Home, parts: Any) -> None:
    """Two queued messages are never sent closer than send_min_interval; nothing is sent while not ready."""
    _store, outbox, _ledger, _context = parts
    outbox.enqueue("15551234567", "one")
    outbox.enqueue("15551234567", "two")
    fake = RecordingSender()
    fake.is_ready = False
    clock = Clock()
    sender = OutboxSender(outbox, fake, min_interval_s=3.0, events=EventLog(home.events_file, source="t"), clock=clock)
    assert sender(None) is None and fake.calls == []
    fake.is_ready = True
    wait = sender(None)
    assert len(fake.calls) == 1 and wait is not None and 3.0 <= wait <= 4.5
    clock.now += 2.9
    sender(None)
    assert len(fake.calls) == 1
    clock.now += 1.7
    sender(None)
    assert [c["text"] for c in fake.calls] == ["one", "two"]


def test_actions_are_answered_and_unknown_ones_refused(home: Home) -> None:
    """A queued action gets its handler's result; an action with no handler is answered as not available."""
    dispatcher = ActionDispatcher(home.control_dir, events=EventLog(home.events_file, source="t"))
    dispatcher.register("health-check", lambda params: (True, "all good", {"state": "ready"}))
    known = control.submit(home.control_dir, "health-check")
    other = control.submit(home.control_dir, "clear-session")
    dispatcher(None)
    result = control.wait_result(home.control_dir, known, timeout_s=1)
    assert result["ok"] and result["message"] == "all good" and result["details"] == {"state": "ready"}
    refused = control.wait_result(home.control_dir, other, timeout_s=1)
    assert not refused["ok"] and "not available" in refused["message"]
    assert control.pending(home.control_dir) == []


def test_heartbeat_is_written_per_interval_and_at_once_on_news(home: Home) -> None:
    """Passes with nothing new leave the heartbeat alone until heartbeat_interval; news is written at once."""
    from continuity.watchdog.instance import Config, WorkerConfig, read_heartbeat
    from continuity.worker.loop import WorkerLoop

    now = [100.0]
    state = ["qr"]
    loop = WorkerLoop(home, Config(worker=WorkerConfig(heartbeat_interval=10.0)), clock=lambda: now[0])
    loop.news_sources.append(lambda: state[0])

    def seq() -> int:
        return int((read_heartbeat(home.heartbeat_file) or {})["seq"])

    loop.heartbeat()
    assert seq() == 1
    now[0] += 9.0
    assert not loop.beat_if_due() and seq() == 1
    assert loop.seconds_until_beat_due() == pytest.approx(1.0)
    state[0] = "ready"
    assert loop.beat_if_due() and seq() == 2
    now[0] += 9.9
    assert not loop.beat_if_due() and seq() == 2
    now[0] += 0.1
    assert loop.beat_if_due() and seq() == 3


# The worker's stop signals against its real handler: the main thread spins on `stop_requested` (as the loop waits
# on it), so a handler landing while the Event's lock is held happens within a few signals.
WORKER_STOP_STORM = r"""
import sys
sys.setswitchinterval(1e-6)
from pathlib import Path
from continuity.watchdog.instance import Config
from continuity.watchdog.instance import Home
from continuity.worker.loop import WorkerLoop
loop = WorkerLoop(Home(Path(sys.argv[1])), Config())
loop.install_signal_handlers()
print("ready", flush=True)
while True:  # spins through Event.wait, which holds the Event's lock for most of its bytecodes
    if loop.stop_requested.wait(0):
        loop.stop_requested.clear()
        print("stop seen", flush=True)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="the watchdog stops the worker with SIGTERM on POSIX only")
def test_stop_signals_never_deadlock_the_worker(home: Home) -> None:
    """Each of 3000 SIGTERMs reaches the worker's loop; none deadlocks the handler on stop_requested's lock."""
    assert_each_sigterm_arrives(WORKER_STOP_STORM, home, count=3000, who="worker")
