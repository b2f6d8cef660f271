"""Watchdog states and the transitions allowed between them (a leaf module: imports nothing of ours)."""

from __future__ import annotations

from enum import Enum


class WatchdogState(Enum):
    """What the watchdog is doing; `value` is what run/watchdog.json and the API show."""

    STARTING = "starting"  # spawning a worker
    RUNNING = "running"  # a worker is up and supervised
    BACKOFF = "backoff"  # the worker died or hung; waiting `restart_delay` before the next spawn
    BUDGET_SPENT = "budget_spent"  # restart_limit reached within restart_window; waiting for the window to free
    STOPPING = "stopping"  # a stop was requested; killing the worker's tree
    STOPPED = "stopped"  # stopped on request (exit 0)
    FATAL = "fatal"  # gave up: configuration error (worker exit 78), unstartable command, or budget spent with "exit"


# Each allowed transition, labelled with why it happens. `Supervisor.transition` is the one place that moves.
TRANSITIONS: dict[tuple[WatchdogState, WatchdogState], str] = {
    (WatchdogState.STOPPED, WatchdogState.STARTING): "watchdog started",
    (WatchdogState.STARTING, WatchdogState.RUNNING): "worker spawned",
    (WatchdogState.STARTING, WatchdogState.FATAL): "worker command cannot be started",
    (WatchdogState.RUNNING, WatchdogState.BACKOFF): "worker exited or hung; restart scheduled",
    (WatchdogState.RUNNING, WatchdogState.FATAL): "worker reported a configuration error (exit 78)",
    (WatchdogState.BACKOFF, WatchdogState.STARTING): "restart delay over",
    (WatchdogState.BACKOFF, WatchdogState.BUDGET_SPENT): "restart budget spent; waiting for the window",
    (WatchdogState.BACKOFF, WatchdogState.FATAL): "restart budget spent and on_restart_limit = exit",
    (WatchdogState.BUDGET_SPENT, WatchdogState.STARTING): "restart window freed",
    (WatchdogState.STARTING, WatchdogState.STOPPING): "stop requested",
    (WatchdogState.RUNNING, WatchdogState.STOPPING): "stop requested",
    (WatchdogState.BACKOFF, WatchdogState.STOPPING): "stop requested",
    (WatchdogState.BUDGET_SPENT, WatchdogState.STOPPING): "stop requested",
    (WatchdogState.STOPPING, WatchdogState.STOPPED): "worker tree stopped",
}

FINAL_STATES = frozenset({WatchdogState.STOPPED, WatchdogState.FATAL})


class InvalidTransition(RuntimeError):
    """A transition not listed in TRANSITIONS was attempted (a bug in the watchdog)."""


def transition_label(current: WatchdogState, new: WatchdogState) -> str:
    """Why `current -> new` happens; raises InvalidTransition when it is not allowed."""
    try:
        return TRANSITIONS[(current, new)]
    except KeyError:
        raise InvalidTransition(f"{current.value} -> {new.value} is not an allowed transition") from None
