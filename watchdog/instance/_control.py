"""Actions queued for the worker in run/control/: one request file each, answered by a result file.

Request `run/control/<id>.json`: {"id", "action", "params", "requested_at", "expires_at", "source"} (Unix s).
A worker takes a request by renaming it to `<id>.taken` (atomic: a request is either taken or withdrawn by its
caller, never both), then answers it in `<id>.result.json`: {"id", "action", "ok", "message", "details", "done_at"}.
The CLI (`continuity whatsapp ...`) and the HTTP API write requests and wait; the worker's loop answers them.

Lifetimes:
- A destructive action (clear-session, restore-session) expires when its caller stops waiting: the caller
  withdraws it then, and a worker refuses it past `expires_at` (for a caller killed before it could withdraw).
- Any other action stays queued for QUEUE_TTL_S (or as long as its caller waits, if longer); a worker drops it
  after that (event `action_expired`).
- A result is deleted by the caller that read it; results nobody read, and requests a worker took but never
  answered (it died), are pruned after RESULT_TTL_S.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._atomicfile import read_json_or_none, write_json_atomic

WORKER_ACTIONS = (
    "initialize",
    "reconnect",
    "restart-browser",
    "clear-session",
    "health-check",
    "inspect",
    "backup-session",
    "restore-session",
    "link-phone",  # params {"phone": DIGITS}: link by phone-number code (worker/session/linking.py)
)
OUTBOX_ACTIONS = ("outbox-retry", "outbox-cancel")  # params {"id": message id}; the API's outbox panel
# Never run once their caller gave up (link-phone too: a code flow nobody waits for would only hide the QR).
DESTRUCTIVE_ACTIONS = frozenset({"clear-session", "restore-session", "link-phone"})
QUEUE_TTL_S = 600.0  # how long any other action waits for a worker to take it
RESULT_TTL_S = 3600.0  # an answer nobody read (or a request taken and never answered) is deleted after this
TAKEN_GRACE_S = 30.0  # a destructive action taken at its deadline: how long its caller still waits for the answer
TAKEN = ".taken"
_counter = itertools.count()


class ActionTimeout(TimeoutError):
    """The worker did not answer an action in time (it may be restarting, or no worker runs)."""


class ActionWithdrawn(ActionTimeout):
    """No worker took a destructive action before its caller stopped waiting: it was withdrawn, nothing was done."""


class ActionQueued(ActionTimeout):
    """No answer in time; the request stays queued for a worker until `expires_at` (Unix s)."""

    def __init__(self, message: str, *, action_id: str, expires_at: float) -> None:
        super().__init__(message)
        self.action_id, self.expires_at = action_id, expires_at


class ActionUnanswered(ActionTimeout):
    """A worker took the request but gave no answer in time (it may still be working on it, or it died)."""


def new_action_id(clock: Callable[[], float] = time.time) -> str:
    """A sortable, unique id: milliseconds, pid, counter."""
    return f"{int(clock() * 1000):013d}-{os.getpid()}-{next(_counter)}"


def submit(
    control_dir: Path,
    action: str,
    *,
    params: dict[str, Any] | None = None,
    source: str = "cli",
    wait_s: float = 60.0,
    clock: Callable[[], float] = time.time,
) -> str:
    """Queue `action` for the worker, for a caller that waits `wait_s` s for the answer; returns its id.

    Raises ValueError for an unknown action."""
    if action not in WORKER_ACTIONS and action not in OUTBOX_ACTIONS:
        raise ValueError(f"unknown action {action!r} (known: {', '.join((*WORKER_ACTIONS, *OUTBOX_ACTIONS))})")
    control_dir.mkdir(parents=True, exist_ok=True)
    now = clock()
    prune(control_dir, now=now)
    action_id = new_action_id(clock)
    lifetime = wait_s if action in DESTRUCTIVE_ACTIONS else max(wait_s, QUEUE_TTL_S)
    request = {
        "id": action_id,
        "action": action,
        "params": params or {},
        "requested_at": now,
        "expires_at": now + lifetime,
        "source": source,
    }
    write_json_atomic(control_dir / f"{action_id}.json", request)
    return action_id


def wait_result(
    control_dir: Path,
    action_id: str,
    *,
    timeout_s: float,
    poll_s: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The worker's answer to `action_id` (its result file is deleted once read); raises ActionTimeout after
    `timeout_s` seconds, leaving the request as it is."""
    path = control_dir / f"{action_id}.result.json"
    deadline = time.monotonic() + timeout_s
    while True:
        result = read_json_or_none(path)
        if isinstance(result, dict):
            path.unlink(missing_ok=True)
            return result
        if time.monotonic() >= deadline:
            raise ActionTimeout(f"no answer from the worker to {action_id} within {timeout_s:g} s")
        sleep(poll_s)


def withdraw(control_dir: Path, action_id: str) -> bool:
    """Take back a request no worker has taken: True when withdrawn (it will never run), False when a worker
    took it first (or it was answered or dropped already)."""
    try:
        os.unlink(control_dir / f"{action_id}.json")
    except FileNotFoundError:
        return False
    return True


def ask(
    control_dir: Path,
    action: str,
    *,
    timeout_s: float,
    params: dict[str, Any] | None = None,
    source: str = "cli",
    taken_grace_s: float = TAKEN_GRACE_S,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Submit `action` and wait up to `timeout_s` s for the worker's result. Otherwise raises, saying the truth:
    ActionWithdrawn (a destructive action no worker took: withdrawn, nothing was done), ActionQueued (it waits
    for a worker until a given time) or ActionUnanswered (a worker took it and did not answer)."""
    action_id = submit(control_dir, action, params=params, source=source, wait_s=timeout_s)
    with contextlib.suppress(ActionTimeout):
        return wait_result(control_dir, action_id, timeout_s=timeout_s, sleep=sleep)
    if action in DESTRUCTIVE_ACTIONS:
        if withdraw(control_dir, action_id):
            raise ActionWithdrawn(
                f"no worker took {action} within {timeout_s:g} s; the request was withdrawn: nothing was done"
            )
        try:  # a worker took it at the last moment: it is being done now
            return wait_result(control_dir, action_id, timeout_s=taken_grace_s, sleep=sleep)
        except ActionTimeout:
            raise ActionUnanswered(
                f"a worker began {action} just before the {timeout_s:g} s deadline and gave no answer "
                f"{taken_grace_s:g} s later; see `continuity logs --events` for how it ended"
            ) from None
    queued = read_json_or_none(control_dir / f"{action_id}.json")
    if isinstance(queued, dict) and isinstance(queued.get("expires_at"), int | float):
        until = float(queued["expires_at"])
        raise ActionQueued(
            f"no answer from the worker to {action} within {timeout_s:g} s; the request stays queued until "
            f"{_clock_time(until)} for a worker to take it (then it is dropped)",
            action_id=action_id,
            expires_at=until,
        )
    with contextlib.suppress(ActionTimeout):  # taken (or answered) meanwhile
        return wait_result(control_dir, action_id, timeout_s=0.5, sleep=sleep)
    raise ActionUnanswered(f"the worker took {action} but gave no answer within {timeout_s:g} s; it may still run")


def _clock_time(unix_s: float) -> str:
    """Local time of day, with the date when it is not today."""
    same_day = time.localtime(unix_s)[:3] == time.localtime()[:3]
    return time.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S", time.localtime(unix_s))


def pending(control_dir: Path) -> list[dict[str, Any]]:
    """Requests not taken yet, oldest first (unreadable request files are answered as failed)."""
    found = []
    try:
        names = sorted(p for p in os.listdir(control_dir) if p.endswith(".json") and not p.endswith(".result.json"))
    except FileNotFoundError:
        return []
    for name in names:
        request = read_json_or_none(control_dir / name)
        if not isinstance(request, dict) or "action" not in request:
            request = {"id": name[: -len(".json")], "action": None, "params": {}}
        request.setdefault("id", name[: -len(".json")])
        found.append(request)
    return found


def take(control_dir: Path, request: dict[str, Any]) -> bool:
    """The worker takes `request` (renames it to <id>.taken); False when its caller withdrew it first."""
    action_id = request["id"]
    try:
        os.rename(control_dir / f"{action_id}.json", control_dir / f"{action_id}{TAKEN}")
    except FileNotFoundError:
        return False
    return True


def expires_at(request: dict[str, Any]) -> float:
    """When `request` expires (Unix s); a request without a deadline (an older caller's) gets the usual lifetime."""
    deadline = request.get("expires_at")
    if isinstance(deadline, int | float):
        return float(deadline)
    requested = request.get("requested_at")
    if not isinstance(requested, int | float):  # undated (or unreadable): never trusted with a destructive action
        return float("-inf") if request.get("action") in DESTRUCTIVE_ACTIONS else float("inf")
    return float(requested) + (60.0 if request.get("action") in DESTRUCTIVE_ACTIONS else QUEUE_TTL_S)


def answer(control_dir: Path, request: dict[str, Any], *, ok: bool, message: str, **details: Any) -> dict[str, Any]:
    """Write the result of `request` and remove the request file (taken or not)."""
    result = {
        "id": request["id"],
        "action": request.get("action"),
        "ok": ok,
        "message": message,
        "details": json.loads(json.dumps(details, default=str)),
        "done_at": time.time(),
    }
    write_json_atomic(control_dir / f"{request['id']}.result.json", result)
    (control_dir / f"{request['id']}.json").unlink(missing_ok=True)
    (control_dir / f"{request['id']}{TAKEN}").unlink(missing_ok=True)
    return result


def prune(control_dir: Path, *, now: float, max_age_s: float = RESULT_TTL_S) -> int:
    """Delete results nobody read, requests taken and never answered, and temp files, older than `max_age_s`
    (by modification time); returns how many. Requests waiting for a worker are left to the worker."""
    removed = 0
    try:
        entries = list(os.scandir(control_dir))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not entry.name.endswith((".result.json", TAKEN, ".tmp")):
            continue
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime > max_age_s:
                os.unlink(entry.path)
                removed += 1
        except FileNotFoundError:
            continue
    return removed
