"""Assembling the worker process: store, outbox, ledger, jobs, notify, actions, the WhatsApp session, the loop."""

from __future__ import annotations

import logging
import sys
from typing import Any

from continuity.watchdog.instance import EX_CONFIG, Config, ConfigError, ContinuityError, Home, load_config
from continuity.watchdog.logsetup import configure_worker_logging

from .control_requests import ActionDispatcher
from .jobs import Job, JobContext, JobRunner
from .loop import WorkerLoop
from .notify import NotifyJob
from .outbox_view import OutboxViewWriter, register_outbox_actions
from .retention import INTERVAL_S as RETENTION_INTERVAL_S, OutboxRetention

NOTIFY_INTERVAL_S = 2.0

logger = logging.getLogger("continuity.worker")


def build_worker(home: Home, config: Config, *, session: Any = None) -> WorkerLoop:
    """The worker loop with every turn wired; `session` (a WhatsApp session) adds probing and sending."""
    from .store import Ledger, Outbox, TokenStore  # after the first heartbeat: filelock is a heavy import

    loop = WorkerLoop(home, config)
    wc = config.worker
    # background: compactions and backups write their big files in a thread, never in the loop's way
    store = TokenStore.open(
        home, backup_interval=wc.backup_interval, max_backups=wc.max_backups, source="worker", background=True
    )
    outbox = Outbox.open(
        home, backup_interval=wc.backup_interval, max_backups=wc.max_backups, source="worker", background=True
    )
    ledger = Ledger(home)
    context = JobContext(store, outbox, ledger, logging.getLogger("continuity.job"), loop.stop_requested, home, config)
    runner = JobRunner.from_config(config.jobs, context, events=loop.events)
    notify = NotifyJob(config.notify, events=loop.events)
    runner.add(Job(name="notify", function=notify, interval_s=NOTIFY_INTERVAL_S))
    retention = OutboxRetention(config.outbox.keep_sent_days, events=loop.events)
    runner.add(Job(name="outbox_retention", function=retention, interval_s=RETENTION_INTERVAL_S))
    actions = ActionDispatcher(home.control_dir, events=loop.events)
    loop.turns.append(actions)
    if session is not None:
        session.attach(loop, outbox=outbox, actions=actions)
    loop.turns.append(runner)

    def backups(_loop: WorkerLoop) -> None:
        store.maybe_backup()
        outbox.maybe_backup()

    loop.turns.append(backups)
    outbox_view = OutboxViewWriter(outbox, home.run_dir)  # run/outbox_view.json for the dashboard's outbox panel
    register_outbox_actions(actions, outbox, outbox_view)
    loop.turns.append(outbox_view)
    loop.status_providers.append(
        lambda: {
            "tokens": {"active": store.count(), "preview": store.preview()},  # the dashboard's token list
            "outbox": outbox.counts(),  # one key per state, "pending" included
            "jobs": runner.status(),  # consecutive_errors per job: health degraded when one keeps failing
            "notify": notify.status(),  # tokens skipped because no message can be made of them
        }
    )
    loop.news_sources.append(lambda: (store.count(), outbox.counts().get("pending", 0)))
    loop.resources = [store, outbox]  # closed when the loop ends
    from .inbox import attach_inbox

    attach_inbox(loop, config, context, session)  # data/inbox.*, the page turn before the sender's, the handlers
    return loop


def run_worker(home: Home, config: Config) -> int:
    """Run the worker until it is asked to stop; returns its exit code."""
    from .store import limit_malloc_arenas

    limit_malloc_arenas()  # before any thread starts
    configure_worker_logging()
    session = None
    if config.whatsapp.enabled:
        from .session import WhatsAppSession  # selenium is imported only by the session's browser launcher

        session = WhatsAppSession(home, config)
    loop = build_worker(home, config, session=session)
    loop.install_signal_handlers()
    try:
        return loop.run()
    finally:
        if session is not None:
            session.close()
        for resource in loop.resources:
            resource.close()


def main(home: Home | None = None) -> int:
    """Load the config of `home` (default: $CONTINUITY_HOME or the current directory) and run; 78 on bad config."""
    home = home or Home.resolve(None)
    try:
        config = load_config(home.config_file)
        return run_worker(home, config)
    except ConfigError as exc:
        print(f"continuity worker: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    except ContinuityError as exc:  # the store or the home unusable (a path in the way, a read-only disk): one line
        print(f"continuity worker: {exc}", file=sys.stderr)
        return 1
