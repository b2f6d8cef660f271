"""Browser recycling: a healthy Chromium is restarted cleanly (login kept) when its tree's RSS or its age is over
the limit, only at a quiet moment, at a bounded rate. The policy with a fake clock, then real Chromium."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import ConfigError, Home, WhatsAppConfig, clean_heartbeat, load_config
from continuity.worker.browser.memory import tree_rss_bytes
from continuity.worker.session import WhatsAppState
from continuity.worker.session.recycle import MIN_INTERVAL_S, RecyclePolicy
from continuity.worker.store import Outbox
from tests._session_harness import drive, linked_session, unpaced_sender
from tests._watchdog_harness import events

PHONE = "15551234567"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _policy(clock: Clock, **kwargs: Any) -> RecyclePolicy:
    settings: dict[str, Any] = {"max_rss_mib": 1500.0, "max_age_s": 24 * 3600.0, "clock": clock, **kwargs}
    policy = RecyclePolicy(**settings)
    policy.browser_started()
    return policy


def _quiet() -> bool:
    return False


# -- the policy (pure, fake clock) -----------------------------------------------------------------------------
def test_age_limit_recycles_at_the_age_and_not_before() -> None:
    """Just under max_age_s nothing is due; at it, an "age" recycle saying the hours and the limit."""
    clock = Clock()
    policy = _policy(clock, max_age_s=7200.0)
    clock.now += 7199.0
    assert policy.due(ready=True, sends_waiting=_quiet) is None
    clock.now += 1.0
    due = policy.due(ready=True, sends_waiting=_quiet)
    assert due is not None and due.reason == "age"
    assert due.details == {"age_h": 2.0, "limit_h": 2.0}


def test_rss_limit_needs_a_measurement_over_it_and_the_min_interval() -> None:
    """Over the RSS limit: due only once measured over it and min_interval_s after the browser started."""
    clock = Clock()
    policy = _policy(clock, max_rss_mib=100.0, min_interval_s=600.0)
    assert policy.measure_due()
    policy.observe_rss(250.0)
    clock.now += 599.0
    assert policy.due(ready=True, sends_waiting=_quiet) is None  # too soon after its start: no storm
    clock.now += 1.0
    due = policy.due(ready=True, sends_waiting=_quiet)
    assert due is not None and due.reason == "rss" and due.details == {"rss_mib": 250.0, "limit_mib": 100.0}
    policy.observe_rss(100.0)  # at the limit is not over it
    assert policy.due(ready=True, sends_waiting=_quiet) is None
    policy.observe_rss(None)  # could not be measured: nothing to act on
    assert policy.due(ready=True, sends_waiting=_quiet) is None


def test_default_min_interval_is_ten_minutes() -> None:
    """Without a shorter one given, RSS recycles are at least 600 s apart (the rate bound of the issue)."""
    assert MIN_INTERVAL_S == 600.0
    clock = Clock()
    policy = _policy(clock, max_rss_mib=1.0)
    policy.observe_rss(50.0)
    clock.now += 599.0
    assert policy.due(ready=True, sends_waiting=_quiet) is None
    clock.now += 1.0
    assert policy.due(ready=True, sends_waiting=_quiet) is not None


def test_never_while_not_ready() -> None:
    """A crossed limit waits while the page is not ready (starting, in recovery), then goes."""
    clock = Clock()
    policy = _policy(clock, max_age_s=60.0)
    clock.now += 3600.0
    assert policy.due(ready=False, sends_waiting=_quiet) is None
    assert policy.due(ready=True, sends_waiting=_quiet) is not None


def test_waits_while_messages_wait_but_not_forever() -> None:
    """Messages waiting hold a due recycle back, for at most max_defer_s s; once they are out it goes at once."""
    clock = Clock()
    policy = _policy(clock, max_age_s=60.0, max_defer_s=300.0)
    clock.now += 60.0
    waiting = [True]
    assert policy.due(ready=True, sends_waiting=lambda: waiting[0]) is None
    clock.now += 299.0
    assert policy.due(ready=True, sends_waiting=lambda: waiting[0]) is None
    waiting[0] = False
    assert policy.due(ready=True, sends_waiting=lambda: waiting[0]) is not None
    waiting[0] = True  # a backlog that never drains: the browser is recycled anyway after max_defer_s
    clock.now += 1.0
    assert policy.due(ready=True, sends_waiting=lambda: waiting[0]) is not None


def test_outbox_is_not_read_unless_a_limit_is_crossed() -> None:
    """`sends_waiting` (an outbox read) is asked only when a recycle would otherwise be due."""
    clock = Clock()
    policy = _policy(clock, max_age_s=60.0)
    asked: list[int] = []

    def waiting() -> bool:
        asked.append(1)
        return False

    assert policy.due(ready=True, sends_waiting=waiting) is None and asked == []
    clock.now += 60.0
    assert policy.due(ready=False, sends_waiting=waiting) is None and asked == []
    assert policy.due(ready=True, sends_waiting=waiting) is not None and asked == [1]


def test_once_per_crossing() -> None:
    """After a recycle nothing is due until the new browser crosses a limit again; the old RSS does not count."""
    clock = Clock()
    policy = _policy(clock, max_rss_mib=100.0, max_age_s=3600.0, min_interval_s=10.0)
    policy.observe_rss(500.0)
    clock.now += 10.0
    assert policy.due(ready=True, sends_waiting=_quiet) is not None
    policy.recycling()
    assert policy.recycles == 1
    assert policy.due(ready=True, sends_waiting=_quiet) is None  # the restart is under way
    policy.browser_started()
    clock.now += 3000.0
    assert policy.rss_mib is None and policy.due(ready=True, sends_waiting=_quiet) is None
    policy.observe_rss(50.0)
    assert policy.due(ready=True, sends_waiting=_quiet) is None
    clock.now += 600.0  # the new browser's own age crossing
    due = policy.due(ready=True, sends_waiting=_quiet)
    assert due is not None and due.reason == "age"


def test_measures_every_interval_only_while_a_browser_runs() -> None:
    """An RSS measurement is due at start, then every measure_every_s s; never without a browser."""
    clock = Clock()
    policy = _policy(clock, measure_every_s=60.0)
    assert policy.measure_due()
    policy.observe_rss(300.0)
    clock.now += 59.0
    assert not policy.measure_due()
    clock.now += 1.0
    assert policy.measure_due()
    policy.browser_stopped()
    assert not policy.measure_due()
    assert policy.status() == {"browser_rss_mib": None, "browser_age_h": None, "browser_recycles": 0}


def test_status_fields_are_typed_for_the_heartbeat() -> None:
    """browser_rss_mib, browser_age_h, browser_recycles pass the heartbeat's type table; wrong types are dropped."""
    clock = Clock()
    policy = _policy(clock)
    policy.observe_rss(812.5)
    clock.now += 5400.0
    status = policy.status()
    assert status == {"browser_rss_mib": 812.5, "browser_age_h": 1.5, "browser_recycles": 0}
    assert clean_heartbeat({"whatsapp": status})["whatsapp"] == status
    bad = clean_heartbeat({"whatsapp": {"browser_rss_mib": "big", "browser_age_h": 1.0, "browser_recycles": 1.5}})
    assert set(bad["invalid_fields"]) == {"whatsapp.browser_rss_mib", "whatsapp.browser_recycles"}


def test_config_defaults_and_bounds(tmp_path: Path) -> None:
    """Defaults 1500 MiB / 24 h; 0 and more than a week (168 h) are refused, naming the key and the bound."""
    assert (WhatsAppConfig().browser_max_rss_mb, WhatsAppConfig().browser_max_age_h) == (1500.0, 24.0)
    path = tmp_path / "continuity.toml"
    path.write_text("[whatsapp]\nbrowser_max_rss_mb = 800\nbrowser_max_age_h = 168\n", encoding="utf-8")
    wa = load_config(path).whatsapp
    assert (wa.browser_max_rss_mb, wa.browser_max_age_h) == (800.0, 168.0)
    for text, message in [
        ("browser_max_rss_mb = 0", "whatsapp.browser_max_rss_mb must be greater than 0"),
        ("browser_max_age_h = 0", "whatsapp.browser_max_age_h must be greater than 0"),
        ("browser_max_age_h = 169", "whatsapp.browser_max_age_h must be at most 168 h (1 week)"),
    ]:
        path.write_text(f"[whatsapp]\n{text}\n", encoding="utf-8")
        with pytest.raises(ConfigError) as info:
            load_config(path)
        assert message in str(info.value)


# -- real Chromium against the simulator ----------------------------------------------------------------------
def _position(home: Home, kind: str, **match: Any) -> int:
    """Index in the event log of the first event of `kind` with these fields."""
    for index, event in enumerate(events(home)):
        if event["event"] == kind and all(event.get(k) == v for k, v in match.items()):
            return index
    raise AssertionError(f"no {kind} {match} event")


@pytest.mark.browser
def test_age_limit_recycles_once_keeps_login_and_delivers_once(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """browser_max_age_h 0.002 (7.2 s): held back while a message waits, then one clean recycle ("age"); ready and
    linked again without a scan, not counted as a failure, and each message delivered exactly once."""
    session = linked_session(home, sim, browser_max_age_h=0.002)
    closing.append(session)
    scans = sim.state()["counts"]["scans"]
    outbox = Outbox.open(home)
    sender = unpaced_sender(home, outbox, session)
    session.sender = sender  # what attach() does: the session sees the outbox
    try:
        first = outbox.enqueue(PHONE, "queued before the recycle")[0]["id"]
        drive(
            session,
            lambda: session.recycle.crossed() is not None or session.recycle.recycles,
            timeout=30,
            what="the age limit crossed",
        )
        assert session.recycle.recycles == 0, "recycled while a message was waiting"
        old_pid = session.browser.browser_pid
        drive(
            session,
            lambda: session.recycle.recycles and session.state is WhatsAppState.READY,
            timeout=60,
            what="recycled and ready again",
            extra=lambda: sender(None),
        )
        assert outbox.get(first)["state"] == "sent"
        recycled = events(home, "browser_recycled")
        assert len(recycled) == 1 and recycled[0]["reason"] == "age", recycled
        assert recycled[0]["limit_h"] == 0.002 and recycled[0]["age_h"] >= 0.002
        assert _position(home, "message_sent", id=first) < _position(home, "browser_recycled")
        assert session.browser.browser_pid != old_pid
        assert session.was_linked() and sim.state()["counts"]["scans"] == scans
        assert len(events(home, "qr_needed")) == 1  # only the first run's
        status = session.status()
        assert status["browser_recycles"] == 1 and status["browser_restarts"] == 0
        assert status["browser_age_h"] is not None and status["browser_age_h"] < 0.002
        second = outbox.enqueue(PHONE, "queued after the recycle")[0]["id"]
        drive(
            session, lambda: outbox.get(second)["state"] == "sent", timeout=30, what="sent", extra=lambda: sender(None)
        )
        assert [d["text"] for d in sim.delivered()] == ["queued before the recycle", "queued after the recycle"]
        assert len(sim.history(PHONE)) == 2
    finally:
        outbox.close()


@pytest.mark.browser
def test_rss_limit_recycles_at_a_bounded_rate(home: Home, sim: Simulator, closing: list[Any]) -> None:
    """browser_max_rss_mb 1: "rss" recycles with the MiB measured over the tree, never sooner than the min interval
    after the browser's start (no restart storm), each from a fresh measurement; login kept, no failure counted."""
    session = linked_session(home, sim, browser_max_rss_mb=1.0)
    closing.append(session)
    assert session.recycle.recycles == 0  # the default 600 s min interval held while linking
    scans = sim.state()["counts"]["scans"]
    min_interval_s = 6.0
    session.recycle = RecyclePolicy(
        max_rss_mib=1.0, max_age_s=3600.0, min_interval_s=min_interval_s, measure_every_s=1.0
    )
    session.recycle.browser_started()  # the browser already runs: its age counts from now
    started = time.monotonic()
    drive(
        session,
        lambda: session.recycle.recycles >= 2 and session.state is WhatsAppState.READY,
        timeout=90,
        what="two recycles",
    )
    elapsed = time.monotonic() - started
    recycled = events(home, "browser_recycled")
    assert len(recycled) <= elapsed / min_interval_s + 1, (elapsed, recycled)
    assert all(e["reason"] == "rss" and e["limit_mib"] == 1.0 and e["rss_mib"] > 50.0 for e in recycled), recycled
    starts = [e["ts"] for e in events(home, "browser_started")]
    for event in recycled:  # each recycle comes min_interval_s or more after the start of the browser it ends
        began = max(ts for ts in starts if ts < event["ts"])
        assert event["ts"] - began >= min_interval_s - 0.5, (event, began)
    assert session.status()["browser_restarts"] == 0 and session.was_linked()
    assert sim.state()["counts"]["scans"] == scans
    pid = session.browser.browser_pid
    tree = tree_rss_bytes(pid)
    assert tree is not None and tree > psutil.Process(pid).memory_info().rss  # renderers and GPU included
