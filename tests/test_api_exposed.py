"""The API in a container: $CONTINUITY_API_* overrides checked like the config keys, the token on every GET but
/healthz and /metrics when listening beyond loopback, and the Host allow-list. Real HTTP on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from continuity.watchdog.instance import ConfigError, Home, parse_config
from continuity.watchdog.status import api_status_lines
from tests._watchdog_harness import FAST, stop_watchdog, wait_for
from tests.test_api import FAKE_WORKER, free_port, request

TOKEN = "env-token-0123456789abcdefghij"


def start_with_env(home: Home, env: dict[str, str]) -> subprocess.Popen[str]:
    """`continuity start` with `env` added to the environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "start"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "CONTINUITY_DETACHED": "1", **env},
    )  # fmt: skip


def fake_worker_config(home: Home, api: str = "") -> None:
    settings = {**FAST, "startup_grace": 5.0, "worker_command": [sys.executable, "-c", FAKE_WORKER]}
    body = "[watchdog]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    home.config_file.write_text(body + f"[api]\naction_wait = 2.0\n{api}\n", encoding="utf-8")


def test_environment_sets_port_token_and_allowed_hosts(home: Home) -> None:
    """The variables win over continuity.toml: the API listens on $CONTINUITY_API_PORT, takes $CONTINUITY_API_TOKEN
    (no run/api_token is made; the file's token is refused) and accepts the Host names listed."""
    port, file_port = free_port(), free_port()
    fake_worker_config(home, f'port = {file_port}\ntoken = "file-token-0123456789abcdef"')
    env = {"CONTINUITY_API_PORT": str(port), "CONTINUITY_API_TOKEN": TOKEN,
           "CONTINUITY_API_ALLOWED_HOSTS": "Box.LAN, 10.1.2.3", "CONTINUITY_API_HOST": "127.0.0.1"}  # fmt: skip
    proc = start_with_env(home, env)
    try:
        wait_for(lambda: (home.run_dir / "api.json").exists(), timeout=15, what="the API")
        assert json.loads((home.run_dir / "api.json").read_text())["url"] == f"http://127.0.0.1:{port}/"
        assert not (home.run_dir / "api_token").exists()
        assert "$CONTINUITY_API_TOKEN" in api_status_lines(home.root)[0]
        post = {"body": {"action": "reconnect"}}
        assert request(port, "POST", "/api/whatsapp/persistent-connection", token=TOKEN, **post)[0] in (200, 202)
        bad = request(port, "POST", "/api/whatsapp/persistent-connection", token="file-token-0123456789abcdef", **post)
        assert bad[0] == 401
        for host in (f"box.lan:{port}", "10.1.2.3", "localhost"):
            assert request(port, "GET", "/metrics", host=host)[0] == 200, host
        assert request(port, "GET", "/metrics", host="evil.example")[0] == 403
        assert request(port, "GET", "/metrics", host=f"box.lan:{port + 1}")[0] == 403
    finally:
        stop_watchdog(proc)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("CONTINUITY_API_PORT", "99999", "TCP port"),
        ("CONTINUITY_API_PORT", "80a", "TCP port"),
        ("CONTINUITY_API_HOST", "0.0.0.0; rm -rf /", "IP address"),
        ("CONTINUITY_API_TOKEN", "short", "16-4096"),
        ("CONTINUITY_API_TOKEN", "has a space in the middle of it", "no spaces"),
        ("CONTINUITY_API_ALLOWED_HOSTS", "ok.lan,*.lan", "not a host name"),
        ("CONTINUITY_API_ALLOWED_HOSTS", "http://box.lan", "not a host name"),
    ],
)
def test_a_bad_variable_is_refused_by_start_and_worker(home: Home, variable: str, value: str, said: str) -> None:
    """`continuity start` exits 1 and the worker 78, each naming the variable and its rule."""
    env = {**os.environ, variable: value}
    started = subprocess.run([sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "start"],
                             capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert started.returncode == 1, started.stdout + started.stderr
    assert variable in started.stdout + started.stderr and said in started.stdout + started.stderr
    worker = subprocess.run([sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "worker"],
                            capture_output=True, text=True, timeout=60, env=env)  # fmt: skip
    assert worker.returncode == 78, worker.stdout + worker.stderr
    assert variable in worker.stderr


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ('host = "0.0.0.0 x"', "api.host must be an IP address"),
        ('allowed_hosts = ["box.lan:8765"]', "api.allowed_hosts"),
        ('token = "tiny"', "api.token must be 16-4096"),
    ],
)
def test_the_config_keys_have_the_same_rules(toml: str, said: str) -> None:
    """[api] host, allowed_hosts and token are refused in continuity.toml by the rule the variables follow."""
    import tomllib

    with pytest.raises(ConfigError, match=said):
        parse_config(tomllib.loads(f"[api]\n{toml}\n"), source=Path("continuity.toml"))


def test_allowed_hosts_are_normalized() -> None:
    """Names are lower-cased; an IPv6 address gets its brackets, as it appears in a Host header."""
    config = parse_config({"api": {"allowed_hosts": ["Box.LAN", "::1", "[FE80::1]", "10.0.0.5"]}})
    assert config.api.allowed_hosts == ("box.lan", "[::1]", "[fe80::1]", "10.0.0.5")


@pytest.fixture
def exposed(home: Home) -> Iterator[int]:
    """An ApiApp that believes it listens on 0.0.0.0 (as in a container), served on 127.0.0.1 only."""
    from continuity.watchdog._http import HttpServer
    from continuity.watchdog.api import ApiApp
    from continuity.watchdog.instance import ApiConfig, Config, EventLog
    from continuity.watchdog.states import WatchdogState

    monitor = SimpleNamespace(last_change=1.0, is_stale=lambda: False)
    supervisor: Any = SimpleNamespace(state=WatchdogState.RUNNING, monitor=monitor, restarts_total=2)
    port = free_port()
    config = Config(api=ApiConfig(host="0.0.0.0", port=port))
    app = ApiApp(home, config, supervisor=supervisor, events=EventLog(home.events_file, source="t"), token=TOKEN,
                 bound=("0.0.0.0", port))  # fmt: skip
    assert app.exposed
    server = HttpServer("127.0.0.1", port, app)
    server.start()
    yield port
    server.stop()


PRIVATE = ["/api/status", "/api/events?since=0", "/api/whatsapp/persistent-connection", "/api/whatsapp/qr.png",
           "/api/timeline", "/api/outbox"]  # fmt: skip


@pytest.mark.parametrize("path", PRIVATE)
def test_beyond_loopback_every_get_needs_the_token(exposed: int, path: str) -> None:
    """Listening on 0.0.0.0, a GET of the API without the token (or with a wrong one) is 401, with it not 401."""
    assert request(exposed, "GET", path)[0] == 401
    assert request(exposed, "GET", path, token="wrong-token-0123456789")[0] == 401
    assert request(exposed, "GET", path, token=TOKEN)[0] != 401


@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/", "/static/dashboard.js", "/static/panels.js"])
def test_beyond_loopback_probes_and_the_page_need_no_token(exposed: int, path: str) -> None:
    """/healthz, /metrics and the dashboard's files answer without a token (the page then asks for it)."""
    status, _headers, _body = request(exposed, "GET", path)
    assert status in (200, 503) and (status == 200 or path == "/healthz")


def test_beyond_loopback_the_host_guard_still_holds(exposed: int) -> None:
    """Even /healthz and /metrics refuse a Host that is neither localhost, the bound address nor allowed."""
    assert request(exposed, "GET", "/metrics", host="attacker.example")[0] == 403
    assert request(exposed, "GET", "/healthz", host="attacker.example")[0] == 403
