"""The inbox turn: incoming WhatsApp messages into the durable inbox (data/inbox.*), stored before they are read.

The unread badges of the chat list are the cursor: what arrived while the worker, the browser or the machine was
down still shows a badge at the next start. For a chat with a badge the turn first notes durably that it is
reading that chat (opening a chat sends read receipts and clears the badge), then opens it, stores its unread
messages (deduplicated by WhatsApp's message key), drops the note in the same journal record, and closes the chat
(Escape) so later messages show as badges again. A worker killed between the note and the store finds the note at
its next start and reads that chat again. Messages arriving in a chat that is open (the sender opened it) are
read from the open chat. One chat per pass: the sender's turn runs in between."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from continuity.watchdog.instance import EventLog

logger = logging.getLogger("continuity.inbox")

SEND_SCAN_S = 0.25  # while messages wait to be sent, the badges are looked at this often (before each send)
MAX_READING_ATTEMPTS = 10  # a noted chat that cannot be opened this often is given up (event inbox_reading_dropped)


class InboxWatcher:
    """A worker-loop turn: scan the page every `scan_interval_s` seconds while WhatsApp is ready."""

    def __init__(
        self,
        session: Any,
        inbox: Any,
        *,
        scan_interval_s: float,
        events: EventLog,
        webhook: bool,
        jobs: bool,
        on_stored: Callable[[list[dict[str, Any]]], None] = lambda _m: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.inbox = inbox
        self.scan_interval_s = scan_interval_s
        self.events = events
        self.webhook, self.jobs = webhook, jobs
        self.on_stored = on_stored
        self._clock = clock
        self._next_scan = 0.0
        self._last_scan = -1e9
        self._last_unread: dict[str, int] = {}  # title -> unread count at the last scan
        self.stored = 0
        self.scans = 0
        self.failures = 0
        self.last_error: str | None = None

    def __call__(self, _loop: Any = None) -> float | None:
        if not self.session.ready() or self.session.page is None:
            return None
        now = self._clock()
        if now < self._next_scan and not self._send_due(now):
            return self._next_scan - now
        self._last_scan = now
        from .session import incoming

        page = self.session.page
        try:
            more = self._pass(page, incoming)
        except Exception as exc:  # the page changed under us, a hung call: the notes keep the cursor
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            logger.warning("inbox: reading the page failed: %s", self.last_error)
            self.events.emit("inbox_read_failed", error=self.last_error)
            more = False
        self._next_scan = self._clock() + (0.0 if more else self.scan_interval_s)
        return 0.0 if more else self.scan_interval_s

    def _send_due(self, now: float) -> bool:
        """Messages wait in the outbox: the sender may open a chat (sending its read receipts) in this very pass,
        so look at the badges first (at most every SEND_SCAN_S seconds)."""
        if now - self._last_scan < SEND_SCAN_S:
            return False
        sender = getattr(self.session, "sender", None)
        outbox = getattr(sender, "outbox", None)
        return bool(outbox is not None and outbox.open_count())

    # -- one pass ---------------------------------------------------------------------------------------------
    def _pass(self, page: Any, incoming: Any) -> bool:
        """Read at most one chat; True when there is more to read at once."""
        self.scans += 1
        notes = self.inbox.readings()
        if notes:
            self._recover(page, incoming, notes[0])
            return True
        found = incoming.scan(page)
        if found.open_title is not None:
            self._watch_open(page, incoming, found)
        self._last_unread = dict(found.unread)
        if not found.unread:
            return False
        title, unread = found.unread[0]
        self.inbox.begin_reading(title, unread=unread)
        self._read_chat(page, incoming, title, unread)
        return len(found.unread) > 1

    def _read_chat(self, page: Any, incoming: Any, title: str, unread: int) -> None:
        """Open chat `title` (noted as being read), store its unread messages, drop the note, close it."""
        opened = incoming.open_row(page, title, min_bubbles=unread)
        if opened is None:
            raise LookupError(f"chat row {title!r} could not be opened")
        known = self.inbox.known(b.data_id for b in opened.bubbles)
        fresh = incoming.select_new(opened.bubbles, known, unread=unread, baseline=None)
        self._store(incoming, fresh, title, reading=title)
        incoming.close_chat(page)

    def _recover(self, page: Any, incoming: Any, note: dict[str, Any]) -> None:
        """A chat noted as being read when a worker died: read it again (what was stored is known)."""
        title = str(note.get("title") or "")
        if int(note.get("attempts") or 0) >= MAX_READING_ATTEMPTS:
            logger.error("inbox: giving up on chat %r after %s attempts", title, note.get("attempts"))
            self.events.emit("inbox_reading_dropped", attempts=note.get("attempts"))
            self.inbox.end_reading(title, webhook=self.webhook, jobs=self.jobs)
            return
        self.events.emit("inbox_reading_resumed", unread=note.get("unread"))
        self.inbox.begin_reading(title, unread=int(note.get("unread") or 0))  # counts the attempt
        self._read_chat(page, incoming, title, int(note.get("unread") or 0))

    def _watch_open(self, page: Any, incoming: Any, found: Any) -> None:
        """A chat left open (by the sender): store what arrived in it, then close it."""
        title = found.open_title
        baseline = incoming.first_sight_baseline(found.bubbles, unread=self._last_unread.get(title, 0))
        known = self.inbox.known(b.data_id for b in found.bubbles)
        fresh = incoming.select_new(found.bubbles, known, unread=0, baseline=baseline)
        if fresh:
            self._store(incoming, fresh, title, reading=None)
        incoming.close_chat(page)

    def _store(self, incoming: Any, bubbles: list[Any], title: str, *, reading: str | None) -> None:
        records = [m for m in (incoming.to_message(b, chat_title=title) for b in bubbles) if m is not None]
        if reading is not None:
            fresh = self.inbox.end_reading(reading, records, webhook=self.webhook, jobs=self.jobs)
        else:
            fresh = self.inbox.add_many(records, webhook=self.webhook, jobs=self.jobs)
        if not fresh:
            return
        self.stored += len(fresh)
        for record in fresh:
            self.events.emit("message_received", id=record["id"], chat=record["chat"], seq=record["seq"])
        self.on_stored(fresh)

    def status(self) -> dict[str, Any]:
        """The heartbeat's "inbox" section (with the store's counts)."""
        return {
            **self.inbox.counts(),
            "stored": self.stored,
            "read_failures": self.failures,
            "last_error": self.last_error,
        }


class InboxWiring:
    """The inbox of one worker: its store, the page turn, the handler threads; closed with the loop."""

    def __init__(self, inbox: Any, watcher: InboxWatcher | None, threads: list[Any]) -> None:
        self.inbox, self.watcher, self.threads = inbox, watcher, threads

    def wake(self, _messages: list[dict[str, Any]]) -> None:
        for thread in self.threads:
            thread.wake()

    def status(self) -> dict[str, Any]:
        section = self.watcher.status() if self.watcher is not None else self.inbox.counts()
        for thread in self.threads:
            section[thread.name.removeprefix("inbox-")] = thread.status()
        return section

    def close(self) -> None:
        for thread in self.threads:
            thread.wake()
        for thread in self.threads:
            thread.join(timeout=5.0)
        self.inbox.close()


def attach_inbox(loop: Any, config: Any, context: Any, session: Any) -> InboxWiring | None:
    """Open data/inbox.*, add the page turn (before the sender's, so unread chats are stored before a send can
    open them), start the handler threads, and add the heartbeat's "inbox" section; None when [inbox] is off."""
    from .inbox_handlers import MessageJobs, WebhookSender
    from .jobs import load_callable
    from .store._inbox import Inbox

    ic = config.inbox
    if not ic.enabled:
        return None
    wc = config.worker
    inbox = Inbox.open(loop.home, backup_interval=wc.backup_interval, max_backups=wc.max_backups, source="worker")
    message_jobs: list[tuple[str, Any]] = [
        (c.callable, load_callable(c.callable)) for c in config.jobs if c.on == "message"
    ]
    threads: list[Any] = []
    if message_jobs:
        threads.append(MessageJobs(inbox, message_jobs, context, events=loop.events))
    if ic.webhook_url:
        threads.append(
            WebhookSender(
                inbox,
                url=ic.webhook_url,
                secret=ic.webhook_secret,
                timeout_s=ic.webhook_timeout,
                backoff_s=(ic.webhook_backoff[0], ic.webhook_backoff[1]),
                stop=loop.stop_requested,
                events=loop.events,
            )
        )
    wiring = InboxWiring(inbox, None, threads)
    if session is not None:
        watcher = InboxWatcher(
            session,
            inbox,
            scan_interval_s=ic.scan_interval,
            events=loop.events,
            webhook=bool(ic.webhook_url),
            jobs=bool(message_jobs),
            on_stored=wiring.wake,
        )
        wiring.watcher = watcher
        sender = getattr(session, "sender", None)
        at = loop.turns.index(sender) if sender in loop.turns else len(loop.turns)
        loop.turns.insert(at, watcher)

    def backup(_loop: Any) -> None:
        inbox.maybe_backup()

    loop.turns.append(backup)
    loop.status_providers.append(lambda: {"inbox": wiring.status()})
    loop.resources.insert(0, wiring)  # closed first: its threads stop before the stores they use close
    for thread in threads:
        thread.start()
    return wiring
