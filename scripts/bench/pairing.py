"""Benchmark linking by phone-number code against the simulator, with a real worker process and real headless
Chromium (default settings but the URL).

Prints, per round and as medians: worker start -> `continuity whatsapp link --phone` prints the code (cold: a new
profile, the browser launched, the QR screen reached, the number typed); the same with the worker already on the
QR screen (warm: only the code flow); the code entered on the phone -> the command says linked.
Usage: python scripts/bench/pairing.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import Home
from tests._session_harness import WORKER


def _link(home: Home, phone: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "whatsapp", "link"]
    return subprocess.Popen(
        [*command, "--phone", phone, "--wait", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _until_code(cli: subprocess.Popen[str], started: float) -> tuple[str, float]:
    assert cli.stdout is not None
    for line in cli.stdout:
        if line.startswith("code: "):
            return line.split()[1], time.monotonic() - started
    raise RuntimeError(f"no code printed: {cli.stderr.read() if cli.stderr else ''}")


def _round(sim: Simulator, *, warm: bool) -> tuple[float, float]:
    """(seconds to the printed code, seconds from entering it to "linked")."""
    with tempfile.TemporaryDirectory(prefix="cb-pair-") as tmp:
        home = Home(Path(tmp))
        home.ensure()
        home.config_file.write_text(f'[whatsapp]\nurl = "{sim.url}"\nheadless = true\n', encoding="utf-8")
        phone = sim.state()["account"]["phone"]
        log = open(Path(tmp) / "worker.out", "w+")  # noqa: SIM115  (read back if the round fails)
        started = time.monotonic()
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(home.root)], start_new_session=True, stdout=log, stderr=log
        )
        try:
            if warm:
                sim.wait_qr(timeout_s=120)
                started = time.monotonic()
            cli = _link(home, phone)
            code, to_code = _until_code(cli, started)
            entered = time.monotonic()
            sim.enter_code(code)
            out, err = cli.communicate(timeout=120)
            if cli.returncode != 0 or "linked" not in out:
                raise RuntimeError(f"link did not end linked: {out} {err}")
            return to_code, time.monotonic() - entered
        except Exception:
            log.seek(0)
            print("worker output:\n" + log.read()[-3000:], file=sys.stderr)
            raise
        finally:
            log.close()
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
            sim.logout()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with Simulator(port=0) as sim:
        cold = [_round(sim, warm=False) for _ in range(args.rounds)]
        warm = [_round(sim, warm=True) for _ in range(args.rounds)]
    for name, rounds in (("cold (worker start)", cold), ("warm (QR shown)", warm)):
        codes = [c for c, _ in rounds]
        linked = [x for _, x in rounds]
        print(
            f"{name:<20} -> printed code: median {statistics.median(codes):.2f} s "
            f"(runs {', '.join(f'{c:.2f}' for c in codes)}); code entered -> linked: median "
            f"{statistics.median(linked):.2f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
