"""Crash safety with real processes: SIGKILL at random moments, then every reported commit is there."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from continuity.worker.store import Outbox, TokenStore

CHILD = Path(__file__).with_name("_store_child.py")
KILLS = 100  # per store kind: 200 in all


@pytest.fixture
def zygote() -> Iterator[subprocess.Popen[str]]:
    """A process that imported the store once and forks a committing child per request (fast re-spawns)."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), "zygote"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=10)


def _run_and_kill(zygote: subprocess.Popen[str], mode: str, data_dir: Path, run: int, rng: random.Random) -> list[str]:
    """Start one child, SIGKILL it after a random 1-40 ms, return what it printed."""
    assert zygote.stdin is not None and zygote.stdout is not None
    zygote.stdin.write(f"{mode} {data_dir} r{run} {rng.randrange(1 << 30)}\n")
    zygote.stdin.flush()
    out: IO[str] = zygote.stdout
    first = out.readline().split()
    assert first[0] == "pid", first
    time.sleep(rng.uniform(0.001, 0.04))
    os.kill(int(first[1]), signal.SIGKILL)
    lines = []
    for line in out:
        if line.startswith("exited "):
            return lines
        lines.append(line.rstrip("\n"))
    raise AssertionError("zygote died")


def _ops(lines: list[str]) -> tuple[list[tuple[list[str], str]], list[str] | None]:
    """(committed ops with their result, the op that was in flight when killed or None)."""
    done, pending = [], None
    for line in lines:
        if line.startswith("B "):
            pending = line.split()[1:]
        else:
            assert pending is not None and line.startswith("C"), lines
            done.append((pending, line[2:]))
            pending = None
    return done, pending


def _apply_token_op(model: dict[str, int], op: list[str]) -> None:
    kind, ident, n = op[0], op[1], int(op[2])
    if kind == "add" or kind == "upd":
        model[ident] = n
    elif kind == "tx":
        for k in range(3):
            model[f"{ident}.{k}"] = n
        model[op[3]] = n
    elif kind == "del":
        model.pop(ident)


def test_store_survives_100_sigkills(tmp_path: Path, zygote: subprocess.Popen[str]) -> None:
    """After each of 100 SIGKILLs the store equals the reported commits (+ maybe the one in flight)."""
    rng = random.Random(1)
    data_dir = tmp_path / "data"
    model: dict[str, int] = {}
    in_flight_landed = commits = 0
    for run in range(KILLS):
        done, pending = _ops(_run_and_kill(zygote, "store", data_dir, run, rng))
        for op, _ in done:
            _apply_token_op(model, op)
        commits += len(done)
        with TokenStore.open(data_dir, backup_interval=3600) as store:
            actual = {record["id"]: record["n"] for record in store.list()}
        if actual != model:
            assert pending is not None, f"run {run}: store differs from the reported commits"
            with_pending = dict(model)
            _apply_token_op(with_pending, pending)
            assert actual == with_pending, f"run {run}: partial or lost change around {pending}"
            model, in_flight_landed = with_pending, in_flight_landed + 1
    assert commits > KILLS  # the children really committed between kills
    assert list((data_dir / "backups").glob("tracked_tokens.*.json.gz")), "backups were taken during the runs"


def _outbox_state(box: Outbox) -> dict[str, str]:
    messages = box.list()
    states = {m["dedupe_key"]: m["state"] for m in messages}
    assert len(states) == len(messages), "a dedupe key was queued twice"
    return states


def _apply_outbox_op(model: dict[str, str], op: list[str], result: str | None) -> None:
    kind = op[0]
    if kind in ("enq", "dup"):
        model.setdefault(op[1], "pending")
    elif kind == "sent":
        model[op[1]] = "sent"
    elif kind == "retry":
        model[op[1]] = "pending"
    elif kind == "claim" and result not in (None, "-"):
        assert result is not None
        assert model[result] == "pending", f"claimed {result} which was {model[result]}"
        model[result] = "claimed"


def test_outbox_survives_100_sigkills(tmp_path: Path, zygote: subprocess.Popen[str]) -> None:
    """After each of 100 SIGKILLs the outbox holds every reported enqueue/claim/outcome, each key once."""
    rng = random.Random(2)
    data_dir = tmp_path / "data"
    model: dict[str, str] = {}
    commits = 0
    for run in range(KILLS):
        done, pending = _ops(_run_and_kill(zygote, "outbox", data_dir, run, rng))
        for op, result in done:
            _apply_outbox_op(model, op, result)
        commits += len(done)
        with Outbox.open(data_dir, backup_interval=3600) as box:
            actual = _outbox_state(box)
        if actual == model:
            continue
        assert pending is not None, f"run {run}: outbox differs from the reported commits"
        if pending[0] == "claim":
            changed: dict[str, Any] = {k: (model.get(k), actual.get(k)) for k in actual.keys() | model.keys()}
            diff = {k: v for k, v in changed.items() if v[0] != v[1]}
            assert len(diff) == 1 and next(iter(diff.values())) == ("pending", "claimed"), diff
        else:
            with_pending = dict(model)
            _apply_outbox_op(with_pending, pending, None)
            assert actual == with_pending, f"run {run}: partial or lost change around {pending}"
        model = actual
    assert commits > KILLS
    assert set(model.values()) >= {"pending", "sent"}
