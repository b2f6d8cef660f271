"""The user's own jobs (`[[jobs]] callable = "package.module:function"`, `interval = 30`), run by the worker loop."""

from __future__ import annotations

import importlib
import logging
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from continuity.watchdog.instance import ConfigError, EventLog, JobConfig

if TYPE_CHECKING:  # typing only: the store (filelock) loads after the worker's first heartbeat (main.build_worker)
    from continuity.watchdog.instance import Config, Home

    from .store import Ledger, Outbox, TokenStore

logger = logging.getLogger("continuity.worker.jobs")

MAX_ERROR_CHARS = 500  # of a job's last error, as kept for the heartbeat and events
# A job that did a slice of a big piece of work returns this: it is called again at the loop's next pass (after the
# other turns and the heartbeat), not after its interval.
MORE_WORK: Final = object()


@dataclass
class JobContext:
    """What a job gets: the token store, outbox and ledger, a logger, a stop flag, the instance's paths and config.

    A job is `function(ctx)`; `ctx.stop` is set when the worker is asked to stop (a long job should return then)."""

    store: TokenStore
    outbox: Outbox
    ledger: Ledger
    logger: logging.Logger
    stop: threading.Event
    home: Home
    config: Config


def load_callable(spec: str) -> Callable[[JobContext], Any]:
    """Import "package.module:function"; raises ConfigError (exit 78) when it cannot be found or called."""
    module_name, _, attribute = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except ImportError as exc:
        raise ConfigError(f"jobs: cannot import {module_name!r} for {spec!r}: {exc}") from exc
    except AttributeError as exc:
        raise ConfigError(f"jobs: {module_name!r} has no {attribute!r} (from {spec!r})") from exc
    if not callable(target):
        raise ConfigError(f"jobs: {spec!r} is not callable")
    return target  # type: ignore[no-any-return]


@dataclass
class Job:
    """One scheduled job and its counters."""

    name: str
    function: Callable[[JobContext], Any]
    interval_s: float
    next_due: float = 0.0
    runs: int = 0
    errors: int = 0
    consecutive_errors: int = 0  # runs in a row that raised (0 after a run that did not)
    overruns: int = 0
    last_duration_s: float = 0.0
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class JobRunner:
    """Runs due jobs in the worker's loop: a failing job is logged and counted, never fatal; overruns reported."""

    def __init__(
        self,
        jobs: list[Job],
        context: JobContext,
        *,
        events: EventLog,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.jobs = jobs
        self.context = context
        self.events = events
        self._clock = clock

    @classmethod
    def from_config(cls, configs: Sequence[JobConfig], context: JobContext, *, events: EventLog) -> JobRunner:
        """Import every configured job now, so a wrong name is a configuration error at start."""
        jobs = [
            Job(name=c.callable, function=load_callable(c.callable), interval_s=c.interval)
            for c in configs
            if getattr(c, "on", "interval") == "interval"  # "message" jobs: worker/inbox_handlers.py
        ]
        return cls(jobs, context, events=events)

    def add(self, job: Job) -> None:
        self.jobs.append(job)

    def __call__(self, _loop: Any) -> float | None:
        """Run every due job once; returns seconds until the next one is due."""
        for job in self.jobs:
            if self.context.stop.is_set():
                break
            if self._clock() >= job.next_due:
                self._run(job)
        if not self.jobs:
            return None
        return max(0.0, min(job.next_due for job in self.jobs) - self._clock())

    def _run(self, job: Job) -> None:
        started = self._clock()
        result: object = None
        try:
            result = job.function(self.context)
        except Exception as exc:
            job.errors += 1
            job.consecutive_errors += 1
            job.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
            logger.error(
                "job %s failed (%d errors so far, %d in a row):\n%s",
                job.name,
                job.errors,
                job.consecutive_errors,
                traceback.format_exc(),
            )
            self.events.emit(
                "job_failed", job=job.name, error=job.last_error, errors=job.errors, in_a_row=job.consecutive_errors
            )
        else:
            job.consecutive_errors = 0
        finally:
            job.runs += 1
            job.last_duration_s = self._clock() - started
            job.next_due = started + job.interval_s
        if result is MORE_WORK:
            job.next_due = self._clock()
        if job.last_duration_s > job.interval_s:
            job.overruns += 1
            job.next_due = self._clock()  # run again next turn, not in a burst
            logger.warning(
                "job %s took %.1f s, longer than its interval %.1f s", job.name, job.last_duration_s, job.interval_s
            )
            self.events.emit(
                "job_overrun", job=job.name, duration_s=round(job.last_duration_s, 3), interval_s=job.interval_s
            )

    def status(self) -> list[dict[str, Any]]:
        """Counters for the heartbeat (its "jobs" section; watchdog/health.py reads consecutive_errors)."""
        return [
            {
                "name": j.name,
                "runs": j.runs,
                "errors": j.errors,
                "consecutive_errors": j.consecutive_errors,
                "overruns": j.overruns,
                "last_error": j.last_error,
            }
            for j in self.jobs
        ]
