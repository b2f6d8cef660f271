"""Restart policy in simulated time: backoff, stable reset, sliding-window budget."""

from __future__ import annotations

import random

import pytest

from continuity.watchdog.instance import WatchdogConfig, backoff_delay
from continuity.watchdog.policy import RestartBudget, RestartPolicy
from continuity.watchdog.states import TRANSITIONS, InvalidTransition, WatchdogState, transition_label


def test_backoff_doubles_from_base_and_caps() -> None:
    """Delays are base, 2x, 4x ... up to the cap, for consecutive early failures."""
    delays = [backoff_delay(attempt=n, first_s=5, cap_s=60) for n in range(1, 8)]
    assert delays == [5, 10, 20, 40, 60, 60, 60]


def test_backoff_with_zero_base_stays_zero() -> None:
    """restart_delay = 0 (benchmarks, tests) means immediate restarts however often it fails."""
    assert all(backoff_delay(attempt=n, first_s=0, cap_s=60) == 0 for n in range(1, 100))


def test_huge_failure_counts_do_not_overflow() -> None:
    """A worker failing for months keeps the capped delay (no OverflowError)."""
    assert backoff_delay(attempt=10**6, first_s=5, cap_s=60) == 60


def test_stable_run_resets_the_backoff() -> None:
    """After a run of at least stable_after seconds, the next delay is the base again."""
    policy = RestartPolicy.from_config(WatchdogConfig(restart_delay=5, restart_delay_max=60, stable_after=60))
    assert [policy.delay_after_exit(uptime_s=1) for _ in range(4)] == [5, 10, 20, 40]
    assert policy.delay_after_exit(uptime_s=61) == 5
    assert policy.delay_after_exit(uptime_s=2) == 10


def test_budget_is_a_sliding_window() -> None:
    """limit 3 per 10 s: the 4th restart waits until the oldest leaves the window."""
    budget = RestartBudget(limit=3, window_s=10)
    for t in (0.0, 1.0, 2.0):
        assert budget.allows(t)
        budget.record(t)
    assert not budget.allows(5.0)
    assert budget.frees_at(5.0) == 10.0
    assert budget.allows(10.0)
    assert budget.used(10.0) == 2


def test_simulated_crash_loop_never_exceeds_budget() -> None:
    """Random crash times over simulated hours: no window of restart_window s ever holds more than the limit."""
    rng = random.Random(7)
    policy = RestartPolicy.from_config(
        WatchdogConfig(restart_delay=0.5, restart_delay_max=20, restart_limit=10, restart_window=300, stable_after=60)
    )
    now, restarts = 0.0, []
    for _ in range(2000):
        now += rng.choice([0.1, 1.0, 5.0, 90.0])  # the worker runs for a while, then dies
        due = now + policy.delay_after_exit(uptime_s=now - (restarts[-1] if restarts else 0.0))
        start = policy.next_start_at(due_s=due)
        assert start >= due
        policy.budget.record(start)
        restarts.append(start)
        now = start
    for i, t in enumerate(restarts):
        in_window = [r for r in restarts[i:] if r < t + 300]
        assert len(in_window) <= 10


def test_every_transition_is_labelled_and_others_refused() -> None:
    """Allowed transitions have a label; anything else raises InvalidTransition."""
    assert transition_label(WatchdogState.RUNNING, WatchdogState.BACKOFF)
    assert all(label for label in TRANSITIONS.values())
    with pytest.raises(InvalidTransition):
        transition_label(WatchdogState.STOPPED, WatchdogState.RUNNING)
    with pytest.raises(InvalidTransition):
        transition_label(WatchdogState.FATAL, WatchdogState.STARTING)
