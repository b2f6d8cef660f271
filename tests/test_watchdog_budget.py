"""The restart budget with a real crash-looping worker: never more restarts than the budget in any window."""

from __future__ import annotations

from continuity.watchdog.instance import Home
from tests._watchdog_harness import events, start_watchdog, stop_watchdog, wait_for_event, write_config


def _max_restarts_in_any_window(times: list[float], window: float) -> int:
    return max((sum(1 for t in times if start <= t < start + window) for start in times), default=0)


def test_crash_loop_respects_budget_and_resumes(home: Home) -> None:
    """With restart_limit 3 per 2 s, a crash loop never restarts more than 3 times in 2 s, and resumes later."""
    write_config(home, toy="crash", restart_limit=3, restart_window=2.0, restart_delay=0, on_restart_limit="wait")
    proc = start_watchdog(home)
    try:
        spent = wait_for_event(home, "budget_spent", timeout=15)[0]
        wait_for_event(home, "worker_spawned", count=6, timeout=20)
        spawns = [e["ts"] for e in events(home, "worker_spawned")]
        restarts = spawns[1:]
        # Event times are wall clock, written a few ms after the monotonic decision: allow no extra restarts.
        assert _max_restarts_in_any_window(restarts, 2.0 - 0.05) <= 3
        assert any(t > spent["ts"] for t in restarts), "restarts did not resume after the window freed"
        states = [e["new"] for e in events(home, "state")]
        assert "budget_spent" in states
    finally:
        stop_watchdog(proc)


def test_budget_spent_with_exit_policy_exits_1(home: Home) -> None:
    """on_restart_limit = "exit": the watchdog gives up with exit code 1 once the budget is spent."""
    write_config(home, toy="crash", restart_limit=2, restart_window=60.0, on_restart_limit="exit")
    proc = start_watchdog(home)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert len(events(home, "worker_spawned")) == 3  # the first start and two restarts
    assert "on_restart_limit = exit" in out


def test_backoff_doubles_between_early_failures(home: Home) -> None:
    """Early failures back off: delays 0.2, 0.4, 0.8 s between consecutive spawns (capped at 0.8)."""
    write_config(home, toy="crash", restart_delay=0.2, restart_delay_max=0.8, stable_after=30.0)
    proc = start_watchdog(home)
    try:
        wait_for_event(home, "restart_scheduled", count=4, timeout=20)
        delays = [e["delay_s"] for e in events(home, "restart_scheduled")][:4]
        assert delays == [0.2, 0.4, 0.8, 0.8]
    finally:
        stop_watchdog(proc)
