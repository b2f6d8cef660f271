"""The simulator over plain HTTP (urllib, no browser): control/state endpoints, page API, CLI command."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from continuity.devtools.simulator import VARIANTS, NoQrShown, Simulator
from continuity.watchdog.cli import cli
from tests._watchdog_harness import ignore_sigint


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A running simulator on a free port."""
    with Simulator(qr_rotate_s=20, qr_max_rotations=5) as simulator:
        yield simulator


def call(url: str, body: Any = None, *, raw: bytes | None = None) -> tuple[int, Any]:
    """GET (body None) or POST JSON; returns (HTTP status, decoded JSON)."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_control_api_drives_login_modes_and_logout(sim: Simulator) -> None:
    """POST /__sim__/control scans, sets modes and logs out; GET /__sim__/state reports each change."""
    control, state_url = sim.control_url, sim.url + "__sim__/state"
    status, state = call(state_url)
    assert status == 200 and state["logged_in"] is False and state["qr"] is None and state["url"] == sim.url
    assert call(control, {"action": "scan"})[0] == 409, "no page shows a QR yet"

    status, page = call(sim.url + "__sim__/api/hello", {"client": "tab1", "token": None})
    assert status == 200 and page["status"] == "qr" and page["locale"] == "en"
    assert call(state_url)[1]["qr"] == page["qr"]
    status, scanned = call(control, {"action": "scan", "payload": page["qr"]})
    assert status == 200 and scanned["ok"] and scanned["client"] == "tab1"
    token = call(sim.url + "__sim__/api/poll", {"client": "tab1"})[1]["token"]
    assert call(state_url)[1]["logged_in"] is True

    status, result = call(control, {"action": "set_mode", "mode": "slow", "on": True, "seconds": 0.3})
    assert status == 200 and result["modes"] == {"slow": {"seconds": 0.3}}
    status, result = call(control, {"action": "set_mode", "mode": "locale", "params": {"lang": "pt"}})
    assert status == 200 and result["modes"]["locale"] == {"lang": "pt"}
    call(control, {"action": "set_mode", "mode": "slow", "on": False})

    sent = call(sim.url + "__sim__/api/send", {"token": token, "phone": "15551234567", "text": "oi", "id": "3EB0FF01"})
    assert sent == (200, {"status": "sent"})
    status, delivered = call(control, {"action": "delivered"})
    assert status == 200 and [d["text"] for d in delivered] == ["oi"] == [d["text"] for d in sim.delivered()]
    assert call(sim.url + "__sim__/delivered")[1] == delivered

    assert call(control, {"action": "logout"}) == (200, {"ok": True, "removed": 1})
    assert call(sim.url + "__sim__/api/poll", {"client": "tab1", "token": token})[1]["status"] == "logged_out"
    assert call(state_url)[1]["counts"]["logouts"] == 1


@pytest.mark.parametrize(
    ("body", "raw", "message"),
    [
        (None, b"{not json", "not valid JSON"),
        (None, b"[1, 2]", "must be a JSON object"),
        ({"action": "dance"}, None, "unknown action 'dance'"),
        ({"action": "set_mode"}, None, "'mode' must be a string"),
        ({"action": "set_mode", "mode": "warp"}, None, "unknown mode 'warp'"),
        ({"action": "set_mode", "mode": "slow", "on": "yes"}, None, "'on' must be true or false"),
        ({"action": "set_mode", "mode": "slow", "params": [1]}, None, "'params' must be a JSON object"),
        ({"action": "set_mode", "mode": "slow", "seconds": -1}, None, "seconds must be a number"),
        ({"action": "scan", "payload": 5}, None, "'payload' must be a string"),
    ],
)
def test_bad_control_requests_get_400_and_change_nothing(
    sim: Simulator, body: Any, raw: bytes | None, message: str
) -> None:
    """Each malformed control request is a 400 with a message saying why; state and modes are untouched."""
    sim.set_mode("offline")
    before = sim.state()
    status, result = call(sim.control_url, body, raw=raw)
    assert status == 400 and result["ok"] is False and message in result["error"]
    after = sim.state()
    assert after["modes"] == before["modes"] == {"offline": {}} and after["counts"] == before["counts"]


def test_bad_page_calls_are_refused(sim: Simulator) -> None:
    """Page calls with a bad client id, a bad message or an unknown name are 400s; unknown paths are 404s."""
    assert call(sim.url + "__sim__/api/hello", {"client": "../etc"})[0] == 400
    assert call(sim.url + "__sim__/api/send", {"phone": "15551234567", "text": "x", "id": "bad"})[0] == 400
    assert call(sim.url + "__sim__/api/teleport", {})[0] == 400
    assert call(sim.url + "__sim__/api/use_here", {"mode": "slow"})[0] == 400
    assert call(sim.url + "nope")[0] == 404
    assert call(sim.url + "nope", {})[0] == 404
    assert sim.state()["counts"]["sends"] == 0


def test_page_files_are_local_and_slow_mode_delays_them(sim: Simulator) -> None:
    """/, /send, app.js, app.css are served with a same-origin-only CSP; 'slow' delays the page, not control."""
    for path in ("", "send?phone=1&text=x", "app.js", "app.css"):
        with urllib.request.urlopen(sim.url + path, timeout=10) as response:
            body = response.read()
            assert response.status == 200 and body
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
            assert b"http://" not in body and b"https://" not in body, f"{path}: no external resources"
    sim.set_mode("slow", seconds=0.5)
    started = time.monotonic()
    urllib.request.urlopen(sim.url + "app.css", timeout=10).read()
    assert time.monotonic() - started >= 0.5
    started = time.monotonic()
    call(sim.url + "__sim__/state")
    assert time.monotonic() - started < 0.4, "the control side is never slowed"


def test_binds_loopback_only_and_stops_cleanly() -> None:
    """The server listens on 127.0.0.1 only; after stop() the port is closed; scan() without a page raises."""
    simulator = Simulator().start()
    port = simulator.port
    assert simulator.url == f"http://127.0.0.1:{port}/"
    with pytest.raises(NoQrShown):
        simulator.scan()
    assert simulator._server is not None and simulator._server.server_address[0] == "127.0.0.1"
    simulator.stop()
    simulator.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_constructor_and_port_errors() -> None:
    """Bad ports and poll intervals are ValueErrors; a taken port is an OSError from start()."""
    with pytest.raises(ValueError, match="port"):
        Simulator(port=70000)
    with pytest.raises(ValueError, match="poll_s"):
        Simulator(poll_s=0)
    with Simulator() as first, pytest.raises(OSError):
        Simulator(port=first.port).start()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_runs_until_interrupted(stop_signal: signal.Signals) -> None:
    """`continuity simulator --port 0` prints its URL and control endpoint, serves, and exits 0 on Ctrl+C or
    SIGTERM, even when started with SIGINT ignored."""
    code = "from continuity.watchdog.cli import main; main()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "simulator",
            "--port",
            "0",
            "--qr-rotate",
            "5",
            "--mode",
            "conflict",
            "--mode",
            "slow:seconds=0.2",
            "--mode",
            "invalid_numbers:numbers=15550001111,15550002222",
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ignore_sigint,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("WhatsApp Web simulator: http://127.0.0.1:")
        url = first.split(": ", 1)[1].strip()
        assert "control: POST " + url + "__sim__/control" in proc.stdout.readline()
        status, state = call(url + "__sim__/state")
        assert status == 200 and state["qr_rotate_s"] == 5.0
        assert state["modes"] == {
            "conflict": {},
            "slow": {"seconds": 0.2},
            "invalid_numbers": {"numbers": ["15550001111", "15550002222"]},
        }
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "70000 is not in the range"),
        (["--qr-rotate", "0"], "0.0 is not in the range"),
        (["--host", "0.0.0.0"], "'0.0.0.0' is not '127.0.0.1'"),
        (["--mode", "warp"], "unknown mode 'warp'"),
        (["--mode", "invalid_numbers"], "needs numbers"),
        (["--mode", "slow:seconds=fast"], "seconds must be a number"),
        (["--mode", "slow:seconds"], "expected NAME or NAME:KEY=VALUE"),
        (["--mode", "locale:lang=fr"], "lang must be one of"),
        (["--variant", "nope"], "'nope' is not one of 'default', 'compose_tab_11'"),
    ],
)
def test_cli_rejects_bad_options(tmp_path: Any, args: list[str], message: str) -> None:
    """Bad --port, --qr-rotate, --host, --mode or --variant values exit 2 with a message saying why."""
    result = CliRunner().invoke(cli, ["--home", str(tmp_path), "simulator", *args])
    assert result.exit_code == 2 and message in result.output


def test_cli_reports_a_taken_port(tmp_path: Any) -> None:
    """A port already in use is a clear error (exit 1), not a traceback."""
    with Simulator() as taken:
        port = taken.port
        result = CliRunner().invoke(cli, ["--home", str(tmp_path), "simulator", "--port", str(port)])
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output


def test_wait_qr_returns_the_shown_payload_or_times_out(sim: Simulator) -> None:
    """wait_qr() raises NoQrShown after its timeout when no page shows a QR, and returns the payload once one does."""
    started = time.monotonic()
    with pytest.raises(NoQrShown, match=r"within 0\.2 s"):
        sim.wait_qr(timeout_s=0.2)
    assert 0.2 <= time.monotonic() - started < 2
    shown = call(sim.url + "__sim__/api/hello", {"client": "tab1"})[1]["qr"]
    assert sim.wait_qr(timeout_s=1) == shown


def test_set_variant_changes_state_and_the_pages_hello(sim: Simulator) -> None:
    """set_variant over the control API is reported by /__sim__/state and handed to pages in hello and poll."""
    state_url = sim.url + "__sim__/state"
    assert call(state_url)[1]["variant"] == "default" == sim.variant
    assert call(sim.url + "__sim__/api/hello", {"client": "tab1"})[1]["variant"] == "default"
    status, result = call(sim.control_url, {"action": "set_variant", "variant": "side_ids_renamed"})
    assert (status, result) == (200, {"ok": True, "variant": "side_ids_renamed"})
    assert call(state_url)[1]["variant"] == "side_ids_renamed" == sim.variant
    assert call(sim.url + "__sim__/api/hello", {"client": "tab2"})[1]["variant"] == "side_ids_renamed"
    assert call(sim.url + "__sim__/api/poll", {"client": "tab1"})[1]["variant"] == "side_ids_renamed"
    assert sim.set_variant("default") == "default" and call(state_url)[1]["variant"] == "default"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"action": "set_variant", "variant": "nope"}, "unknown variant 'nope'; known variants: default, "),
        ({"action": "set_variant"}, "'variant' must be a string"),
        ({"action": "set_variant", "variant": ["default"]}, "'variant' must be a string"),
    ],
)
def test_bad_set_variant_gets_400_and_changes_nothing(sim: Simulator, body: Any, message: str) -> None:
    """An unknown or missing variant is a 400 naming the problem (and the known variants); the variant stays."""
    sim.set_variant("ticks_renamed")
    status, result = call(sim.control_url, body)
    assert status == 400 and result["ok"] is False and message in result["error"]
    if "unknown" in message:
        assert all(name in result["error"] for name in VARIANTS)
    assert sim.state()["variant"] == "ticks_renamed"


def test_constructor_rejects_an_unknown_variant() -> None:
    """Simulator(variant=...) refuses an unknown name with a ValueError before binding anything."""
    with pytest.raises(ValueError, match="unknown variant 'warp'"):
        Simulator(variant="warp")
    with Simulator(variant="compose_tab_11") as sim:
        assert sim.state()["variant"] == "compose_tab_11"


def test_cli_variant_option_is_served_and_listed_in_help(tmp_path: Any) -> None:
    """`--variant NAME` starts the simulator with that variant (with a locale); --help lists every variant."""
    help_text = CliRunner().invoke(cli, ["--home", str(tmp_path), "simulator", "--help"], terminal_width=200).output
    for name, meaning in VARIANTS.items():
        assert f"{name:<18} {meaning}" in help_text
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from continuity.watchdog.cli import main; main()",
            "simulator",
            "--port",
            "0",
            "--variant",
            "unrecognized_main",
            "--mode",
            "locale:lang=de",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split(": ", 1)[1].strip()
        status, state = call(url + "__sim__/state")
        assert status == 200 and state["variant"] == "unrecognized_main"
        assert state["modes"] == {"locale": {"lang": "de"}}
        hello = call(url + "__sim__/api/hello", {"client": "tab1"})[1]
        assert (hello["variant"], hello["locale"]) == ("unrecognized_main", "de")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
