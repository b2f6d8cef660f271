"""Browser launcher benchmark: cold start to WhatsApp Web's main screen, and relaunch after kill -9.

Runs real headless Chromium against the local simulator (127.0.0.1 only) and prints medians over a few rounds:

- cold start with a reused, logged-in profile: launch() -> page -> #pane-side shown      (goal <= 3 s)
- relaunch after kill -9 of the process that launched the browser (orphans sweep included)  (goal <= 5 s)

Usage: python scripts/bench/browser.py [--rounds 5] [--driver undetected|selenium] [--headed]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import Home, WhatsAppConfig, read_events
from continuity.worker.browser import Browser, find_profile_holders, launch, private_driver_path

GOAL_COLD_S = 3.0
GOAL_RELAUNCH_S = 5.0
CHILD = """
import json, sys, time
from pathlib import Path
from continuity.watchdog.instance import WhatsAppConfig
from continuity.watchdog.instance import Home
from continuity.worker.browser import launch
config = WhatsAppConfig(headless=sys.argv[3] == "1", driver=sys.argv[4])
browser = launch(Home(Path(sys.argv[1])), config)
browser.driver.get(sys.argv[2])
print(json.dumps({"browser": browser.browser_pid}), flush=True)
time.sleep(600)
"""


def _main_screen(browser: Browser, url: str) -> None:
    browser.driver.get(url)
    WebDriverWait(browser.driver, 30, 0.02).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#pane-side"))


def _pair(home: Home, config: WhatsAppConfig, sim: Simulator) -> None:
    browser = launch(home, config)
    try:
        browser.driver.get(sim.url)
        WebDriverWait(browser.driver, 30, 0.05).until(lambda d: d.find_elements(By.CSS_SELECTOR, "div[data-ref]"))
        sim.scan()
        WebDriverWait(browser.driver, 30, 0.05).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#pane-side"))
    finally:
        browser.close()  # a clean stop makes the fresh login durable


def _cold_start(home: Home, config: WhatsAppConfig, sim: Simulator) -> tuple[float, float]:
    start = time.monotonic()
    browser = launch(home, config)
    try:
        _main_screen(browser, sim.url)
        return time.monotonic() - start, browser.started_s
    finally:
        browser.close()


def _relaunch_after_kill9(home: Home, config: WhatsAppConfig, sim: Simulator) -> tuple[float, int]:
    args = [str(home.root), sim.url, "1" if config.headless else "0", config.driver]
    child = subprocess.Popen([sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        json.loads(child.stdout.readline())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    orphans = len(find_profile_holders(home.profile_dir, driver_exe=private_driver_path(home)))
    start = time.monotonic()
    browser = launch(home, config)
    try:
        _main_screen(browser, sim.url)
        return time.monotonic() - start, orphans
    finally:
        browser.close()


def _row(name: str, samples: list[float], goal: float) -> str:
    median = statistics.median(samples)
    verdict = "OK" if median <= goal else "OVER GOAL"
    return (
        f"{name:<44} median {median:5.2f} s  min {min(samples):5.2f}  max {max(samples):5.2f}  "
        f"(goal <= {goal:.0f} s: {verdict})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--driver", choices=("undetected", "selenium"), default="undetected")
    parser.add_argument("--headed", action="store_true", help="show the window (needs a display)")
    options = parser.parse_args()
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    config = WhatsAppConfig(headless=not options.headed, driver=options.driver)
    root = Path(tempfile.mkdtemp(prefix="cbench-", dir="/tmp"))
    home = Home(root)
    home.ensure()
    try:
        with Simulator(port=0, poll_s=0.2) as sim:
            _pair(home, config, sim)
            cold, launch_only = [], []
            for _ in range(options.rounds):
                total, started = _cold_start(home, config, sim)
                cold.append(total)
                launch_only.append(started)
            relaunch, orphans = [], []
            for _ in range(options.rounds):
                seconds, count = _relaunch_after_kill9(home, config, sim)
                relaunch.append(seconds)
                orphans.append(count)
        sweeps = [e for e in read_events(home.events_file) if e["event"] == "browser_orphans_swept"]
        print(f"browser benchmark: driver={options.driver} headless={config.headless} rounds={options.rounds}")
        print(_row("cold start to main screen (logged-in profile)", cold, GOAL_COLD_S))
        print(f"{'  of which launch() (hygiene + Chromium up)':<44} median {statistics.median(launch_only):5.2f} s")
        print(_row("relaunch to main screen after kill -9", relaunch, GOAL_RELAUNCH_S))
        sweep_s = [float(e["seconds"]) for e in sweeps] or [0.0]
        print(
            f"{'  orphans left by each kill -9':<44} median {statistics.median(orphans):5.0f}    "
            f"sweep median {statistics.median(sweep_s):.2f} s"
        )
        ok = statistics.median(cold) <= GOAL_COLD_S and statistics.median(relaunch) <= GOAL_RELAUNCH_S
        return 0 if ok else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
