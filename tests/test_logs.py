"""`continuity logs`: the end of both logs, events pretty-printed, and -f following appended lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import EventLog, Home
from continuity.watchdog.logtail import tail_lines
from tests._watchdog_harness import ignore_sigint, wait_for


def run_logs(home: Home, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--home", str(home.root), "logs", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_tail_of_both_logs(home: Home) -> None:
    """-n N shows the last N lines of watchdog.log and worker.log, each under its name."""
    (home.logs_dir / "watchdog.log").write_text("".join(f"wd {i}\n" for i in range(100)))
    (home.logs_dir / "worker.log").write_text("wk only\n")
    code, output = run_logs(home, "-n", "3")
    assert code == 0
    assert output.splitlines() == [
        f"==> {home.watchdog_log_file} <==", "wd 97", "wd 98", "wd 99",
        f"==> {home.worker_log_file} <==", "wk only",
    ]  # fmt: skip


def test_tail_lines_reads_from_the_end_of_a_big_file(home: Home) -> None:
    """tail_lines crosses read blocks correctly and handles a missing file."""
    path = home.logs_dir / "big.log"
    path.write_text("".join(f"line {i} " + "x" * 100 + "\n" for i in range(5000)))
    assert [line.split()[1] for line in tail_lines(path, 700, block=4096)] == [str(i) for i in range(4300, 5000)]
    assert tail_lines(home.logs_dir / "missing.log", 5) == []


def test_events_pretty_printed(home: Home) -> None:
    """--events prints time, source, event and the key fields, one event a line."""
    log = EventLog(home.events_file, source="watchdog", clock=lambda: 1763800000.0)
    log.emit("worker_exited", pid=42, code=1, description="exit code 1")
    log.emit("state", old="running", new="backoff", reason="worker exited\nrestart in 5 s")
    code, output = run_logs(home, "--events")
    assert code == 0
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1763800000.0))
    assert output.splitlines() == [
        f"{stamp} watchdog worker_exited  pid=42 code=1 description=exit code 1",
        f"{stamp} watchdog state  old=running new=backoff reason=worker exited | restart in 5 s",
    ]


def test_no_logs_is_a_clear_error(home: Home) -> None:
    """Without any log file the command says where it looked and exits 1."""
    code, output = run_logs(home)
    assert code == 1 and f"no logs yet in {home.logs_dir}" in output


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_follow_prints_new_lines_and_survives_rotation(home: Home, stop_signal: signal.Signals) -> None:
    """-f prints lines appended later (also after the file is rotated) and stops on Ctrl+C or SIGTERM, even when
    started with SIGINT ignored (as under nohup or in a script's background job)."""
    log = home.logs_dir / "watchdog.log"
    log.write_text("before\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "logs", "-f", "-n", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=ignore_sigint,
    )  # fmt: skip
    assert proc.stdout is not None
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()

    def saw(text: str) -> bool:
        return any(text in line for line in list(seen))

    try:
        wait_for(lambda: saw("before"), timeout=15, what="the existing line")
        with open(log, "a") as handle:
            handle.write("appended line\n")
        wait_for(lambda: saw("[watchdog] appended line"), timeout=10, what="the appended line")
        os.replace(log, str(log) + ".1")
        log.write_text("after rotation\n")
        (home.logs_dir / "worker.log").write_text("worker appeared\n")
        wait_for(lambda: saw("[watchdog] after rotation"), timeout=10, what="the line after rotation")
        wait_for(lambda: saw("[worker] worker appeared"), timeout=10, what="the new worker log")
    finally:
        proc.send_signal(stop_signal)
        code = proc.wait(timeout=10)
    reader.join(5)
    assert code == 0
    assert "".join(seen).count("appended line") == 1
