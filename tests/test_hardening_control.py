"""Control actions that never outlive their caller, results that are cleaned up, and the supervisor's races.

The worker side runs as a real child process (`python -c DISPATCH`: the real ActionDispatcher, one pass, with
handlers that only leave a marker file), the CLI through click's runner or as a real child killed with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from click.testing import CliRunner

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import Home, control
from tests._watchdog_harness import events, wait_for

# One pass of the real dispatcher, as the next worker would run it; argv: home, [seconds to add to the wall clock],
# [loop until this many requests were answered].
DISPATCH = r"""
import sys, time
from pathlib import Path
from continuity.watchdog.instance import EventLog
from continuity.worker.control_requests import ActionDispatcher
home, skew = Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
until = int(sys.argv[3]) if len(sys.argv) > 3 else 0
clock = {"wall_clock": lambda: time.time() + skew} if skew else {}
events = EventLog(home / "logs" / "events.jsonl", source="worker")
dispatcher = ActionDispatcher(home / "run" / "control", events=events, **clock)
def marker(action):
    def handler(params):
        (home / f"ran-{action}").touch()
        return True, f"{action} done", {}
    return handler
for action in ("clear-session", "restore-session", "reconnect"):
    dispatcher.register(action, marker(action))
deadline = time.monotonic() + 20
while True:
    dispatcher(None)
    if sum(1 for p in home.glob("ran-*")) >= until or time.monotonic() > deadline:
        break
    time.sleep(0.05)
"""


def _next_worker(home: Home, *, skew_s: float = 0.0, until: int = 0) -> subprocess.CompletedProcess[str]:
    """Run the dispatcher in a real child process, as the next worker's first turn."""
    argv = [sys.executable, "-c", DISPATCH, str(home.root), str(skew_s), str(until)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def _cli(home: Home, *args: str) -> Any:
    return CliRunner().invoke(cli, ["--home", str(home.root), "whatsapp", *args])


def test_timed_out_clear_session_is_withdrawn_and_never_runs_later(home: Home) -> None:
    """clear-session with no worker: exit 1 saying nothing was done, and the next worker does not clear anything."""
    result = _cli(home, "clear-session", "--yes", "--timeout", "1")
    assert result.exit_code == 1
    assert "nothing was done" in result.output and "stays queued" not in result.output
    assert "Traceback" not in result.output
    assert control.pending(home.control_dir) == []
    _next_worker(home)
    assert not (home.root / "ran-clear-session").exists(), "the withdrawn clear-session ran in the next worker"


def test_destructive_request_of_a_killed_caller_is_refused_after_its_deadline(home: Home) -> None:
    """A caller killed by SIGKILL cannot withdraw; the worker still refuses the request once its deadline passed."""
    argv = [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root)]
    caller = subprocess.Popen([*argv, "whatsapp", "clear-session", "--yes", "--timeout", "1"])
    try:
        wait_for(lambda: control.pending(home.control_dir), timeout=20, what="the clear-session request")
    finally:
        os.kill(caller.pid, signal.SIGKILL)
        caller.wait(10)
    (request,) = control.pending(home.control_dir)
    assert request["expires_at"] <= request["requested_at"] + 1.0 + 1e-6
    wait_for(lambda: time.time() > request["expires_at"] + 0.05, timeout=5, what="the deadline to pass")
    _next_worker(home)
    assert not (home.root / "ran-clear-session").exists(), "clear-session ran after its caller had given up"
    (expired,) = events(home, "action_expired")
    assert expired["action"] == "clear-session" and expired["id"] == request["id"]
    assert control.pending(home.control_dir) == []


def test_answered_action_leaves_no_result_file_behind(home: Home) -> None:
    """A destructive action answered in time runs once; the waiting caller deletes the result once it has read it."""
    argv = [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root)]
    caller = subprocess.Popen([*argv, "whatsapp", "clear-session", "--yes", "--timeout", "30"], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    worker = subprocess.Popen([sys.executable, "-c", DISPATCH, str(home.root), "0", "1"])
    out, _ = caller.communicate(timeout=60)
    assert worker.wait(30) == 0
    assert caller.returncode == 0 and "clear-session: ok - clear-session done" in out
    assert (home.root / "ran-clear-session").exists()
    assert sorted(os.listdir(home.control_dir)) == [], "the read result (or the request) was left in run/control/"


def test_harmless_action_says_until_when_it_stays_queued_and_expires_later(home: Home) -> None:
    """reconnect with no worker: the CLI says until when it stays queued; a later worker drops it, with an event."""
    result = _cli(home, "reconnect", "--timeout", "0.5")
    assert result.exit_code == 1 and "stays queued until " in result.output, result.output
    (request,) = control.pending(home.control_dir)
    until = time.strftime("%H:%M:%S", time.localtime(request["expires_at"]))
    assert until in result.output and request["expires_at"] - request["requested_at"] == control.QUEUE_TTL_S
    _next_worker(home, skew_s=control.QUEUE_TTL_S + 1)
    assert not (home.root / "ran-reconnect").exists()
    assert [e["action"] for e in events(home, "action_expired")] == ["reconnect"]
    assert control.pending(home.control_dir) == []


def test_harmless_action_within_its_queue_time_runs_for_the_next_worker(home: Home) -> None:
    """A queued reconnect the CLI stopped waiting for is still done by a worker that comes within its queue time."""
    assert _cli(home, "reconnect", "--timeout", "0").exit_code == 1
    _next_worker(home, skew_s=control.QUEUE_TTL_S - 60)
    assert (home.root / "ran-reconnect").exists()


def test_stale_results_and_taken_requests_are_pruned(home: Home) -> None:
    """Results nobody read and requests a dead worker took are deleted once stale; fresh ones are kept."""
    control_dir = home.control_dir
    control_dir.mkdir(parents=True, exist_ok=True)
    old = time.time() - 2 * 86400
    for name in ("1-old.result.json", "2-old.taken", "3-fresh.result.json"):
        (control_dir / name).write_text(json.dumps({"id": name.split(".")[0], "done_at": old}))
    for name in ("1-old.result.json", "2-old.taken"):
        os.utime(control_dir / name, (old, old))
    _next_worker(home)
    assert sorted(os.listdir(control_dir)) == ["3-fresh.result.json"]


def _late_worker(home: Home, *, answer_after_s: float | None) -> threading.Thread:
    """A worker that takes the first request it sees at once but answers only after `answer_after_s` (or never)."""

    def serve() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for request in control.pending(home.control_dir):
                assert control.take(home.control_dir, request)
                if answer_after_s is not None:
                    time.sleep(answer_after_s)
                    control.answer(home.control_dir, request, ok=True, message="cleared, late")
                return
            time.sleep(0.01)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_destructive_action_taken_before_its_deadline_is_reported_not_withdrawn(home: Home) -> None:
    """A worker took clear-session in time but answers after the deadline: the caller waits for it and says so."""
    worker = _late_worker(home, answer_after_s=0.8)
    result = control.ask(home.control_dir, "clear-session", timeout_s=0.3, taken_grace_s=5)
    worker.join(5)
    assert result["ok"] and result["message"] == "cleared, late"
    assert os.listdir(home.control_dir) == []


def test_destructive_action_taken_and_never_answered_is_said_so(home: Home) -> None:
    """A worker took clear-session and never answered: the caller does not claim it was withdrawn."""
    worker = _late_worker(home, answer_after_s=None)
    with pytest.raises(control.ActionUnanswered, match="a worker began clear-session") as info:
        control.ask(home.control_dir, "clear-session", timeout_s=0.3, taken_grace_s=0.3)
    worker.join(5)
    assert "nothing was done" not in str(info.value)


def test_api_withdraws_an_unanswered_clear_session(home: Home) -> None:
    """POST clear-session with no worker: 504 withdrawn ("nothing was done"), and nothing stays queued."""
    from continuity.watchdog._http import Request
    from continuity.watchdog.api import ApiApp
    from continuity.watchdog.instance import ApiConfig, Config, EventLog

    config = Config(api=ApiConfig(action_wait=0.3))
    events_log = EventLog(home.events_file, source="watchdog")
    app = ApiApp(home, config, supervisor=None, events=events_log, token="t", bound=("127.0.0.1", 1))  # type: ignore[arg-type]
    headers = {"host": "127.0.0.1", "authorization": "Bearer t"}
    for action, status in (("clear-session", 504), ("reconnect", 202)):
        body = json.dumps({"action": action}).encode()
        response = app(Request("POST", "/api/whatsapp/persistent-connection", {}, headers, body, "test"))
        answer = json.loads(response.body)
        assert response.status == status, answer
        if action == "clear-session":
            assert answer["withdrawn"] is True and answer["ok"] is False and "nothing was done" in answer["message"]
        else:
            assert answer["queued"] is True and "stays queued until" in answer["message"]
    assert [r["action"] for r in control.pending(home.control_dir)] == ["reconnect"]


def test_status_lists_queued_actions_and_the_profile_in_mib(home: Home) -> None:
    """`status` shows each action still waiting for a worker (until when) and the profile's size in MiB."""
    assert _cli(home, "reconnect", "--timeout", "0").exit_code == 1
    (request,) = control.pending(home.control_dir)
    home.heartbeat_file.write_text(json.dumps({"pid": 1, "whatsapp": {"state": "ready", "profile_mib": 486.4,
                                                                      "session_max_mb": 500.0}}))  # fmt: skip
    shown = CliRunner().invoke(cli, ["--home", str(home.root), "status"])
    until = time.strftime("%H:%M:%S", time.localtime(request["expires_at"]))
    assert f"queued:    reconnect from cli, for a worker until {until}" in shown.output, shown.output
    assert "profile:   486 MiB of 500 MiB" in shown.output
    report = json.loads(CliRunner().invoke(cli, ["--home", str(home.root), "status", "--json"]).output)
    assert [q["action"] for q in report["queued_actions"]] == ["reconnect"]


@pytest.mark.parametrize("bad", ["nan", "inf", "-1", "1e308"])
def test_unbounded_timeouts_are_refused(home: Home, bad: str) -> None:
    """--timeout and qr --wait refuse nan, inf and absurd values with one line (exit 2), instead of hanging."""
    commands = (["health-check", "--timeout", bad], ["clear-session", "--yes", "--timeout", bad], ["qr", "--wait", bad])
    for args in commands:
        started = time.monotonic()
        result = _cli(home, *args)
        assert result.exit_code == 2 and "Invalid value" in result.output, (args, result.output)
        assert time.monotonic() - started < 5
    assert control.pending(home.control_dir) == []


# -- races in the watchdog ------------------------------------------------------------------------------------


def test_budget_snapshot_does_not_lose_a_restart_recorded_meanwhile() -> None:
    """An API thread reading the budget while the supervisor records a restart never drops that restart."""
    from continuity.watchdog.policy import RestartBudget

    budget = RestartBudget(limit=10, window_s=300.0)
    budget.record(100.0)
    recorder_done = threading.Event()

    window = budget.window
    count = window.count

    def interleaving_count(now: float, **kwargs: Any) -> int:
        """The budget's window: while the reader counts it, the supervisor thread records a restart."""
        if recorder.ident is None:  # not started yet: the first count, by the reader
            recorder.start()
            recorder_done.wait(0.5)  # a lock held by the reader makes the recorder wait: that is fine
        return count(now, **kwargs)

    recorder = threading.Thread(target=lambda: (budget.record(101.0), recorder_done.set()))
    window.count = interleaving_count  # type: ignore[method-assign]
    assert budget.used(101.5) in (1, 2)  # the API thread's snapshot (either answer is true at that instant)
    recorder.join(5)
    assert recorder_done.is_set()
    assert budget.used(101.5) == 2, "the restart recorded during the snapshot was lost"


@pytest.fixture
def supervisor(home: Home) -> Any:
    """A supervisor driven tick by tick in this process, over a real toy worker process."""
    from continuity.watchdog.instance import load_config
    from continuity.watchdog.states import WatchdogState
    from continuity.watchdog.supervisor import Supervisor
    from tests._watchdog_harness import write_config

    write_config(home, toy="normal")
    sup = Supervisor(home, load_config(home.config_file))
    sup.transition(WatchdogState.STARTING)
    sup._spawn()
    yield sup
    sup.request_stop("test over")
    sup.tick()


def test_api_restart_that_races_a_crash_spares_the_next_worker(supervisor: Any) -> None:
    """restart-worker asked for a worker that crashed meanwhile is dropped: the fresh worker is not killed."""
    from continuity.watchdog.api import ApiApp
    from continuity.watchdog.instance import Config
    from continuity.watchdog.states import WatchdogState

    sup = supervisor
    first = sup.worker.pid
    original = sup.request_restart

    def crash_lands_first(*args: Any, **kwargs: Any) -> None:
        """The worker crashes after the API's snapshot and before its request: the supervisor restarts it."""
        os.kill(first, signal.SIGKILL)
        wait_for(sup.worker.exited.is_set, timeout=10, what="the crash to be seen")
        sup.tick()  # exit -> backoff (restart_delay 0)
        sup.tick()  # backoff -> a fresh worker
        assert sup.state is WatchdogState.RUNNING and sup.worker.pid != first
        original(*args, **kwargs)

    sup.request_restart = crash_lands_first
    app = ApiApp(sup.home, Config(), supervisor=sup, events=sup.events, token="t", bound=("127.0.0.1", 1))
    response = app._restart_worker()
    assert response.status == 200 and json.loads(response.body)["old_pid"] == first
    fresh = sup.worker.pid
    sup.tick()
    assert sup.worker.pid == fresh and not sup.worker.exited.is_set(), "the fresh worker was killed"
    assert sup.state is WatchdogState.RUNNING
    (dropped,) = events(sup.home, "restart_request_dropped")
    assert dropped["pid"] == first and dropped["current_pid"] == fresh


def test_api_restart_for_the_running_worker_still_restarts_it(supervisor: Any) -> None:
    """restart-worker for the worker that runs kills its tree and starts a new one."""
    from continuity.watchdog.api import ApiApp
    from continuity.watchdog.instance import Config

    sup = supervisor
    first = sup.worker.pid
    app = ApiApp(sup.home, Config(), supervisor=sup, events=sup.events, token="t", bound=("127.0.0.1", 1))
    assert app._restart_worker().status == 200
    sup.tick()  # kill the tree, schedule now
    sup.tick()  # start the new worker
    assert sup.worker.pid != first and not sup.worker.exited.is_set()
    assert [e["pid"] for e in events(sup.home, "restart_requested")] == [first]


# -- selenium's HTTP timeout ----------------------------------------------------------------------------------


class _PublicOnly:
    """A command executor as newer selenium may ship it: the public `client_config` only."""

    def __init__(self) -> None:
        self._config = type("ClientConfig", (), {"timeout": 120.0})()

    @property
    def client_config(self) -> Any:
        return self._config


class _PrivateOnly:
    """A command executor of an older selenium: the private `_client_config` only."""

    def __init__(self) -> None:
        self._client_config = type("ClientConfig", (), {"timeout": 120.0})()


@pytest.mark.parametrize("executor", [_PublicOnly, _PrivateOnly])
def test_bounded_sets_the_http_timeout_through_the_public_client_config(executor: type[Any]) -> None:
    """Page._bounded sets selenium's HTTP timeout through client_config, or _client_config on older selenium."""
    from continuity.worker.session.page import Page

    driver = type("Driver", (), {"command_executor": executor()})()
    page = Page(driver, base_url="http://127.0.0.1:1/")
    assert page._bounded(3.5, lambda: "done") == "done"
    config = getattr(driver.command_executor, "client_config", None) or driver.command_executor._client_config
    assert config.timeout == 3.5


def test_bounded_sets_the_timeout_of_the_installed_selenium() -> None:
    """With the installed selenium's real RemoteConnection, the bound lands in its public client_config."""
    from selenium.webdriver.remote.client_config import ClientConfig
    from selenium.webdriver.remote.remote_connection import RemoteConnection

    from continuity.worker.session.page import Page

    executor = RemoteConnection(client_config=ClientConfig(remote_server_addr="http://127.0.0.1:1"))
    driver = type("Driver", (), {"command_executor": executor})()
    Page(driver, base_url="http://127.0.0.1:1/")._bounded(4.25, lambda: None)
    assert driver.command_executor.client_config.timeout == 4.25
