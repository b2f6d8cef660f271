"""The durable inbox in real Chromium against the simulator: stored before read, once, across kills; the webhook."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import EventLog, Home, read_heartbeat
from continuity.worker.inbox import InboxWatcher
from continuity.worker.session import incoming
from continuity.worker.store._inbox import Inbox
from tests._session_harness import drive, linked_session, run_worker_until, write_worker_config

pytestmark = pytest.mark.browser
PHONE = "15557654321"


def _ready(home: Home) -> bool:
    beat = read_heartbeat(home.heartbeat_file) or {}
    return (beat.get("whatsapp") or {}).get("state") == "ready"


def _texts(home: Home) -> list[str]:
    with Inbox.open(home) as inbox:
        return [m["text"] for m in inbox.messages()]


def test_watcher_stores_before_the_chat_is_read(home: Home, sim: Simulator) -> None:
    """Person and group messages are stored with chat, sender and text; each read receipt left while a durable note
    for its chat was on disk (what makes a kill at that moment lose nothing)."""
    session = linked_session(home, sim)
    inbox = Inbox.open(home)
    notes_at_receipt: list[list[str]] = []
    real_open = sim._sim._incoming.open  # the simulator's "chat opened: send read receipts"

    def open_and_look(jid: str) -> list[dict[str, Any]]:
        before = len(sim._sim._incoming.receipts)  # (called under the simulator's lock)
        answer = real_open(jid)
        if len(sim._sim._incoming.receipts) > before:  # read receipts went out: which notes were on disk?
            with Inbox.open(home) as other:  # another reader of the files, as a restarted worker would be
                notes_at_receipt.append([str(n["title"]) for n in other.readings()])
        return answer

    sim._sim._incoming.open = open_and_look  # type: ignore[method-assign]
    watcher = InboxWatcher(
        session, inbox, scan_interval_s=0.3, events=EventLog(home.events_file, source="t"), webhook=False, jobs=False
    )
    sim.receive(PHONE, "hello one")
    sim.receive(PHONE, "hello two")
    sim.receive("group:Token Alerts", "/track ABC", sender="15551112222", name="Bob")
    try:
        drive(session, lambda: inbox.counts()["messages"] == 3, timeout=30, what="3 stored", extra=lambda: watcher())
        messages = inbox.messages()
        by_text = {m["text"]: m for m in messages}
        assert by_text["hello one"]["chat"] == PHONE and by_text["hello one"]["sender_phone"] == PHONE
        assert by_text["/track ABC"]["chat"] == "Token Alerts" and by_text["/track ABC"]["group"] is True
        assert by_text["/track ABC"]["sender"] == "Bob" and by_text["/track ABC"]["sender_phone"] == "15551112222"
        assert by_text["hello one"]["seq"] < by_text["hello two"]["seq"]  # in order per chat
        receipts = sim.receipts()
        assert sum(len(r["ids"]) for r in receipts) == 3
        assert sorted(notes_at_receipt) == [["+" + PHONE], ["Token Alerts"]]
        sim.receive(PHONE, "hello three")  # a later message: a badge again (the chat was closed after reading)
        drive(session, lambda: inbox.counts()["messages"] == 4, timeout=30, what="4 stored", extra=lambda: watcher())
        assert [m["text"] for m in inbox.messages()][-1] == "hello three"
        assert inbox.counts()["reading"] == 0
    finally:
        session.close()
        inbox.close()


def test_message_arriving_while_the_worker_is_killed_is_stored_once(home: Home, sim: Simulator) -> None:
    """A worker is SIGKILLed; a message arrives; the next worker stores it from the unread badge, exactly once."""
    linked_session(home, sim).close()
    write_worker_config(home, sim.url)
    sim.receive(PHONE, "before the kill")
    run_worker_until(home, lambda: "before the kill" in _texts(home), timeout=90, what="first message stored")
    sim.receive(PHONE, "while the worker was dead")  # nobody is running: only the badge remembers it
    run_worker_until(
        home, lambda: "while the worker was dead" in _texts(home), timeout=90, what="message stored after restart"
    )
    run_worker_until(home, lambda: _ready(home), timeout=90, what="a third worker ready")  # reads nothing twice
    assert _texts(home) == ["before the kill", "while the worker was dead"]


def test_worker_killed_after_opening_a_chat_reads_it_again(home: Home, sim: Simulator) -> None:
    """The chat was opened (read receipts sent, badge gone) but the worker died before storing: its note makes the
    next worker read that chat again, and each message is stored once."""
    session = linked_session(home, sim)
    sim.receive(PHONE, "one")
    sim.receive(PHONE, "two")
    title = "+" + PHONE
    try:
        page = session.page
        assert page is not None
        drive(session, lambda: incoming.scan(page).unread, timeout=30, what="an unread badge")
        with Inbox.open(home) as inbox:
            inbox.begin_reading(title, unread=2)  # what the watcher writes before it opens the chat
        assert incoming.open_row(page, title, min_bubbles=2) is not None  # read receipts go out now
        assert sim.receipts()
        drive(session, lambda: not incoming.scan(page).unread, timeout=10, what="the badge gone")
    finally:
        session.close()  # "killed" before storing
    write_worker_config(home, sim.url)
    run_worker_until(home, lambda: len(_texts(home)) >= 2, timeout=90, what="both messages stored")
    assert _texts(home) == ["one", "two"]
    with Inbox.open(home) as inbox:
        assert inbox.readings() == []


class _Receiver(BaseHTTPRequestHandler):
    """Answers 500 to the first POST, 200 after; keeps each request's body and headers."""

    requests: ClassVar[list[tuple[bytes, dict[str, str]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.requests.append((body, dict(self.headers.items())))
        status = 500 if len(self.requests) == 1 else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[bytes, dict[str, str]]]]]:
    _Receiver.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.requests
    server.shutdown()
    server.server_close()


def test_webhook_answering_500_once_is_retried_then_recorded_delivered(
    home: Home, sim: Simulator, receiver: tuple[str, list[tuple[bytes, dict[str, str]]]]
) -> None:
    """The receiver answers 500, then 200: two signed POSTs of the same message; the inbox records delivered."""
    url, requests = receiver
    linked_session(home, sim).close()
    write_worker_config(home, sim.url)
    with home.config_file.open("a", encoding="utf-8") as config:
        config.write(f'[inbox]\nwebhook_url = "{url}"\nwebhook_secret = "s3cret"\nwebhook_backoff = [0.3, 2.0]\n')
    sim.receive(PHONE, "hook me")

    def delivered() -> bool:
        with Inbox.open(home) as inbox:
            return any((m.get("webhook") or {}).get("state") == "delivered" for m in inbox.messages())

    run_worker_until(home, delivered, timeout=90, what="webhook delivered")
    assert len(requests) == 2
    for body, headers in requests:
        expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        assert headers["X-Continuity-Signature"] == expected
        assert json.loads(body)["message"]["text"] == "hook me"
    assert requests[0][0] == requests[1][0]  # the same message, byte for byte
    with Inbox.open(home) as inbox:
        hook = inbox.messages()[0]["webhook"]
    assert hook["state"] == "delivered" and hook["attempts"] == 2 and hook["last_status"] == 200


def test_message_arriving_in_a_chat_left_open_is_stored(home: Home, sim: Simulator) -> None:
    """A chat the sender left open shows new messages read at once (no badge): they are stored from the open chat,
    the old ones are not, and the chat is closed so the next message is a badge again."""
    session = linked_session(home, sim)
    inbox = Inbox.open(home)
    watcher = InboxWatcher(
        session, inbox, scan_interval_s=0.3, events=EventLog(home.events_file, source="t"), webhook=False, jobs=False
    )
    try:
        page = session.page
        assert page is not None
        sim.receive(PHONE, "old, read on the phone")
        sim._sim._incoming.open(f"{PHONE}@c.us")  # read elsewhere: not for the inbox
        page.open_chat(PHONE)  # what the sender does
        drive(session, lambda: incoming.scan(page).open_title == "+" + PHONE, timeout=30, what="chat open")
        sim.receive(PHONE, "new while open")
        drive(session, lambda: inbox.counts()["messages"] == 1, timeout=30, what="stored", extra=lambda: watcher())
        assert [m["text"] for m in inbox.messages()] == ["new while open"]
        drive(session, lambda: incoming.scan(page).open_title is None, timeout=10, what="chat closed")
        sim.receive(PHONE, "after closing")
        drive(session, lambda: inbox.counts()["messages"] == 2, timeout=30, what="stored", extra=lambda: watcher())
    finally:
        session.close()
        inbox.close()


def test_send_to_a_chat_with_unread_messages_loses_none(home: Home, sim: Simulator) -> None:
    """A message waits to be sent to a person who just wrote: the unread message is stored (the watcher runs
    before the sender) and the outgoing one is delivered once."""
    from continuity.worker.store import Outbox

    linked_session(home, sim).close()
    write_worker_config(home, sim.url)
    sim.receive(PHONE, "are you there?")
    with Outbox.open(home) as outbox:
        outbox.enqueue(PHONE, "yes, here")

    def both() -> bool:
        return "are you there?" in _texts(home) and [d["text"] for d in sim.delivered()] == ["yes, here"]

    run_worker_until(home, both, timeout=90, what="stored and sent")
    assert _texts(home) == ["are you there?"]


def test_track_command_in_a_group_becomes_a_tracked_token(home: Home, sim: Simulator) -> None:
    """A worker with the README's `on = "message"` job: "/track ADDRESS" posted in a group is tracked."""
    from continuity.worker.store import TokenStore

    linked_session(home, sim).close()
    write_worker_config(home, sim.url)
    with home.config_file.open("a", encoding="utf-8") as config:
        config.write('[[jobs]]\ncallable = "tests._inbox_job:on_message"\non = "message"\n')
    sim.receive("group:Token Alerts", "/track So1anaAddr", sender="15551112222", name="Bob")

    def tracked() -> dict[str, Any] | None:
        with TokenStore.open(home) as store:
            return store.get("So1anaAddr")

    def handled() -> bool:
        with Inbox.open(home) as inbox:
            return [m["jobs"]["state"] for m in inbox.messages()] == ["done"]

    run_worker_until(home, lambda: tracked() and handled(), timeout=90, what="the token tracked, the job done")
    token = tracked()
    assert token is not None and token["requested_by"] == "Bob" and token["chat"] == "Token Alerts"


def test_message_read_at_once_in_the_chat_a_send_left_open_is_stored(home: Home, sim: Simulator) -> None:
    """After a send the chat stays open; a reply shown there is read at once (no badge ever seen by the inbox): it
    is stored because it follows our outgoing bubble; an older message read on the phone is not."""
    from continuity.worker.delivery import OutboxSender
    from continuity.worker.store import Outbox

    session = linked_session(home, sim)
    inbox, outbox = Inbox.open(home), Outbox.open(home)
    events = EventLog(home.events_file, source="t")
    watcher = InboxWatcher(session, inbox, scan_interval_s=0.3, events=events, webhook=False, jobs=False)
    sender = OutboxSender(outbox, session, min_interval_s=0.0, events=events)
    try:
        page = session.page
        assert page is not None
        sim.receive(PHONE, "old, read on the phone")
        sim._sim._incoming.open(f"{PHONE}@c.us")
        outbox.enqueue(PHONE, "our alert")
        drive(session, lambda: outbox.counts()["sent"] == 1, timeout=30, what="sent", extra=lambda: sender(None))
        sim.receive(PHONE, "reply while open")

        def shown_and_read() -> bool:
            seen = incoming.scan(page)
            return not seen.unread and any(b.text == "reply while open" for b in seen.bubbles)

        drive(session, shown_and_read, timeout=15, what="the reply shown, read, no badge")
        drive(session, lambda: inbox.counts()["messages"] == 1, timeout=15, what="stored", extra=lambda: watcher())
        assert [m["text"] for m in inbox.messages()] == ["reply while open"]
    finally:
        session.close()
        inbox.close()
        outbox.close()
