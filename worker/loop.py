"""The worker's main loop: one turn at a time, each ending with a heartbeat written by this very loop.

A hung call inside a turn (a frozen browser, a stuck job) therefore stops the heartbeat, and the watchdog
replaces the worker. A turn that waits on purpose (for a message's tick, a search's result) beats from inside the
wait (`beat_if_due`, same thread), so a fresh heartbeat means the loop's thread is not stuck in a hung call, not
that each turn ended within the interval.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil

from continuity.watchdog.instance import WATCHDOG_PID_ENV, Config, EventLog, Home, write_heartbeat
from continuity.watchdog.signal_relay import relay_signals

logger = logging.getLogger("continuity.worker")


# A turn does one bounded piece of work and returns the seconds until it wants to run again (None: no wish).
Turn = Callable[["WorkerLoop"], float | None]
StatusProvider = Callable[[], dict[str, Any]]
# A few values (e.g. WhatsApp's state and QR) whose change is written to the heartbeat at once, not at the interval.
NewsSource = Callable[[], object]
MIN_PASS_S = 0.05  # never spin: at most 20 passes a second


class WorkerLoop:
    """Runs `turns` in passes (at least every heartbeat_interval seconds, sooner when a turn asks). After a pass it
    writes run/heartbeat.json when heartbeat_interval has passed or a news source changed: one write per interval
    when nothing happens, so the watchdog (which wakes on each write) and the disk stay quiet."""

    def __init__(
        self,
        home: Home,
        config: Config,
        *,
        turns: list[Turn] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.home = home
        self.config = config
        self.turns = list(turns or [])
        self.events = EventLog(home.events_file, source="worker")
        self._clock = clock
        self._wall = wall_clock
        self.stop_requested = threading.Event()
        self.seq = 0
        self._last_beat = -1e9
        self.started_at = wall_clock()
        self._started_mono = clock()
        self._process = psutil.Process()
        self._watchdog_pid = int(os.environ.get(WATCHDOG_PID_ENV, "0") or 0)
        # Sections that other parts of the worker fill in (tokens, outbox, whatsapp); shown in the heartbeat.
        self.status: dict[str, Any] = {"whatsapp": {"state": "disabled", "connected": False}}
        self.status_providers: list[StatusProvider] = []
        self.news_sources: list[NewsSource] = []
        self._last_news: tuple[object, ...] | None = None
        self.resources: list[Any] = []

    def request_stop(self, reason: str) -> None:
        """Finish the current turn, then exit 0 (from any thread; signal handlers go through a relay thread)."""
        if not self.stop_requested.is_set():
            logger.info("stopping: %s", reason)
        self.stop_requested.set()

    def install_signal_handlers(self) -> None:
        """SIGTERM / SIGINT / Windows CTRL_BREAK ask for a graceful stop, through a relay thread (setting
        `stop_requested` from the handler itself could deadlock on the Event's lock: the watchdog then had to
        SIGKILL the worker, and the browser was not closed cleanly)."""
        relay_signals(
            ("SIGTERM", "SIGINT", "SIGBREAK"),
            lambda signum: self.request_stop(f"received {signal.Signals(signum).name}"),
            thread_name="stop-signals",
        )

    def _news(self) -> tuple[object, ...]:
        values: list[object] = []
        for source in self.news_sources:
            try:
                values.append(source())
            except Exception:  # a broken source must not stop the heartbeat
                logger.exception("heartbeat news source failed")
                values.append(None)
        return tuple(values)

    def seconds_until_beat_due(self) -> float:
        """Seconds until heartbeat_interval has passed since the last heartbeat (0 when it has)."""
        return max(0.0, self._last_beat + self.config.worker.heartbeat_interval - self._clock())

    def beat_if_due(self) -> bool:
        """Write the heartbeat if heartbeat_interval has passed or the news changed; True when written. Also called
        from inside a long turn (same thread, e.g. waiting for a message's tick): a hung call cannot get here."""
        news = self._news()
        if news == self._last_news and self.seconds_until_beat_due() > 0:
            return False
        self.heartbeat(news=news)
        return True

    def heartbeat(self, *, news: tuple[object, ...] | None = None) -> dict[str, Any]:
        """Write run/heartbeat.json now (DESIGN.md fields) and return what was written."""
        self._last_news = self._news() if news is None else news
        self._last_beat = self._clock()
        self.seq += 1
        try:
            rss = int(self._process.memory_info().rss)
        except psutil.Error:
            rss = 0
        payload = {
            "pid": os.getpid(),
            "seq": self.seq,
            "ts": self._wall(),
            "started_at": self.started_at,
            "uptime_s": round(self._clock() - self._started_mono, 3),
            "rss_bytes": rss,
            **self.status,
        }
        for provider in self.status_providers:
            try:
                payload.update(provider())
            except Exception:  # a broken section must not stop the heartbeat
                logger.exception("heartbeat section failed")
        write_heartbeat(self.home.heartbeat_file, payload)
        return payload

    def _watchdog_gone(self) -> bool:
        if not self._watchdog_pid:
            return False
        return os.getppid() != self._watchdog_pid

    def run(self) -> int:
        """Loop until asked to stop (exit 0), or until the watchdog that started this worker is gone."""
        self.home.ensure()
        self.events.emit("worker_started", pid=os.getpid())
        self.heartbeat()
        interval = self.config.worker.heartbeat_interval
        while not self.stop_requested.is_set():
            wait = interval
            for turn in self.turns:
                if self.stop_requested.is_set():
                    break
                hint = turn(self)
                if hint is not None:
                    wait = min(wait, hint)
            self.beat_if_due()
            wait = min(wait, self.seconds_until_beat_due())
            if self._watchdog_gone():
                self.request_stop("the watchdog that started this worker is gone")
                break
            self.stop_requested.wait(max(MIN_PASS_S, wait))
        self.events.emit("worker_stopped", pid=os.getpid())
        return 0
