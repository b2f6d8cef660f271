"""Config values the runtime would refuse (or choke on) are refused at load, with the key, the file and the bound."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import typing
from pathlib import Path
from typing import Annotated, Any

import pytest
from click.testing import CliRunner

from continuity.watchdog.cli import cli
from continuity.watchdog.instance import ConfigError, Home, _config as config_module, load_config

PHONES = [
    "15551234567",
    "+1 555-123-4567",
    "(44) 20.7946.0958",
    "١٥٥٥١٢٣٤٥٦٧",  # Arabic-Indic digits: str.isdigit() says yes, the outbox says no
    "\uff11\uff15\uff15\uff15\uff11\uff12\uff13\uff14\uff15\uff16\uff17",  # fullwidth digits
    "155512345\uff167",
    "²⁵⁵⁵¹²³⁴⁵⁶⁷",  # superscripts
    "015551234567",
    "1555",
    "1234567890123456",
    "+",
    "",
    "1555123456\u00a0",
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "continuity.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string (\uXXXX escapes) is a TOML basic string


@pytest.mark.parametrize("raw", PHONES)
def test_recipients_are_checked_with_the_outboxs_own_rule(tmp_path: Path, raw: str) -> None:
    """A recipient loads exactly when the outbox would accept it, and loads as the digits the outbox would use."""
    from continuity.worker.store import InvalidPhone, normalize_phone

    path = _write(tmp_path, f"[notify]\nrecipients = [{_toml_string(raw)}]\n")
    try:
        expected = normalize_phone(raw)
    except InvalidPhone:
        with pytest.raises(ConfigError, match=r"notify\.recipients\[0\]: .* is not a phone number") as info:
            load_config(path)
        assert str(path) in str(info.value)
    else:
        assert load_config(path).notify.recipients == (expected,)


def test_arabic_indic_recipient_is_refused_by_start(home: Home) -> None:
    """`continuity start` with an Arabic-Indic recipient exits 1 at once, naming the key; no watchdog is left."""
    home.config_file.write_text('[notify]\nrecipients = ["١٥٥٥١٢٣٤٥٦٧"]\n', encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "start"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "CONTINUITY_DETACHED": "1"},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "notify.recipients[0]" in done.stderr and "Traceback" not in done.stderr
    assert not (home.run_dir / "watchdog.json").exists()


def test_checking_recipients_imports_nothing_heavy(tmp_path: Path) -> None:
    """Loading a config with recipients in a fresh interpreter imports neither the store nor filelock."""
    path = _write(tmp_path, '[notify]\nrecipients = ["+1 555 123 4567"]\n')
    code = (
        "import sys; from continuity.watchdog.instance import load_config; "
        f"assert load_config({str(path)!r}).notify.recipients == ('15551234567',); "
        "print(sorted(m for m in sys.modules if m.startswith(('continuity.worker', 'filelock'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _numeric_keys() -> list[tuple[str, str, Any]]:
    """Every number in the config: (section, key, the type hint without its rule)."""
    sections = dict(config_module._SECTIONS, jobs=config_module.JobConfig)
    found = []
    for section, cls in sections.items():
        for key, hint in typing.get_type_hints(cls, include_extras=True).items():
            if typing.get_origin(hint) is Annotated:
                hint = typing.get_args(hint)[0]
            item = typing.get_args(hint)[0] if typing.get_origin(hint) is tuple else hint
            if item in (int, float):
                found.append((section, key, hint))
    return found


def _line(section: str, key: str, hint: Any, value: str) -> str:
    value = f"[{value}, {value}]" if typing.get_origin(hint) is tuple else value
    head = "[[jobs]]\ncallable = 'm:f'\n" if section == "jobs" else f"[{section}]\n"
    return f"{head}{key} = {value}\n"


NUMERIC = _numeric_keys()


def test_every_number_in_the_config_is_found() -> None:
    """The sweep below covers the keys this issue named (and every other number)."""
    names = {f"{s}.{k}" for s, k, _h in NUMERIC}
    assert {"watchdog.restart_delay", "watchdog.check_interval", "watchdog.stop_timeout", "api.port"} <= names
    assert len(names) >= 30


@pytest.mark.parametrize(("section", "key", "hint"), NUMERIC, ids=[f"{s}.{k}" for s, k, _h in NUMERIC])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308", "9223372036854775807"])
def test_no_number_is_unbounded(tmp_path: Path, section: str, key: str, hint: Any, value: str) -> None:
    """nan, inf and absurdly large values are refused for every numeric key, naming the key and its bound."""
    path = _write(tmp_path, _line(section, key, hint, value))
    name = f"jobs[0].{key}" if section == "jobs" else f"{section}.{key}"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message and name in message, message
    assert "finite" in message or "at most" in message or "must be int" in message or "TCP port" in message, message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[watchdog]\nrestart_delay = nan\n", "watchdog.restart_delay must be a finite number, got nan"),
        ("[watchdog]\ncheck_interval = 1e308\n", "watchdog.check_interval must be at most 604800 s (1 week), got"),
        ("[watchdog]\nstop_timeout = 1e308\n", "watchdog.stop_timeout must be at most 604800 s (1 week)"),
        ("[whatsapp]\nreconnect_backoff = [1, inf]\n", "whatsapp.reconnect_backoff[1] must be a finite number"),
        ("[whatsapp]\nsession_max_mb = 1e12\n", "whatsapp.session_max_mb must be at most 1048576 MiB"),
        ("[watchdog]\nrestart_limit = 10000000\n", "watchdog.restart_limit must be at most 1000000"),
    ],
)
def test_bound_messages_say_the_bound(tmp_path: Path, text: str, message: str) -> None:
    """The refusal says what is allowed, in the key's unit."""
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    assert message in str(info.value)


def test_largest_allowed_seconds_still_load(tmp_path: Path) -> None:
    """One week is accepted where seconds are asked for (the bound is inclusive), so are the defaults."""
    config = load_config(_write(tmp_path, "[watchdog]\ncheck_interval = 604800\nrestart_window = 604800\n"))
    assert config.watchdog.check_interval == 604800.0 and config.watchdog.restart_window == 604800.0


@pytest.mark.parametrize("setting", ["restart_delay = nan", "check_interval = 1e308", "stop_timeout = 1e308"])
def test_start_refuses_unbounded_numbers_with_one_line(home: Home, setting: str) -> None:
    """`start` exits 1 at once with one line naming the key (no spinning, no OverflowError), and nothing runs."""
    home.config_file.write_text(f"[watchdog]\n{setting}\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "start"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "CONTINUITY_DETACHED": "1"},
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"watchdog.{setting.split()[0]}" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (home.run_dir / "watchdog.json").exists()


def test_stop_still_stops_a_watchdog_whose_config_was_edited_into_nonsense(home: Home) -> None:
    """stop_timeout = 1e308 written while a watchdog runs: `stop` warns in one line and stops it anyway."""
    from continuity.watchdog.instance import running_watchdog
    from tests._watchdog_harness import write_config

    write_config(home, toy="normal")
    with open(home.config_file, "a", encoding="utf-8") as config:
        config.write("[api]\nenabled = false\n")
    argv = [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root)]
    started = subprocess.run([*argv, "start", "--detach"], capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    info = running_watchdog(home)
    assert info is not None
    try:
        home.config_file.write_text("[watchdog]\nstop_timeout = 1e308\n", encoding="utf-8")
        done = subprocess.run([*argv, "stop"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "watchdog.stop_timeout must be at most" in done.stderr and "Traceback" not in done.stderr
        assert running_watchdog(home) is None
    finally:
        if running_watchdog(home) is not None:
            os.kill(int(info["pid"]), signal.SIGKILL)


# -- the profile's size: MiB, as the trimmer counts it ------------------------------------------------------


def _profile_of(home: Home, size_bytes: int) -> None:
    folder = home.profile_dir / "Default"
    folder.mkdir(parents=True)
    with open(folder / "big.bin", "wb") as handle:  # sparse: the size without the disk use
        handle.truncate(size_bytes)


@pytest.mark.parametrize(("size_bytes", "critical"), [(510_000_000, False), (530_000_000, True)])
def test_profile_size_is_judged_in_mib_like_the_trimmer(home: Home, size_bytes: int, critical: bool) -> None:
    """A 510 MB profile (486 MiB) is under a 500 MiB limit for the trimmer, the heartbeat and health alike."""
    from continuity.watchdog.health import assess
    from continuity.watchdog.instance import Config
    from continuity.worker.browser.profile_files import trim_profile
    from continuity.worker.session.session import WhatsAppSession

    _profile_of(home, size_bytes)
    trimmed = trim_profile(home.profile_dir, 500.0)
    section = WhatsAppSession(home, Config()).status()
    section["state"] = "ready"
    health = assess(watchdog_state="running", heartbeat={"whatsapp": section}, heartbeat_age_s=1.0,
                    heartbeat_timeout_s=120)  # fmt: skip
    assert section["profile_mib"] == round(size_bytes / 2**20, 1)
    assert (health["session_health"] == "critical") is critical, health
    assert health["recommendations"]["should_clear_session"] is critical
    if critical:
        assert any("MiB" in reason for reason in health["reasons"]), health["reasons"]
    else:
        assert trimmed == 0 and health["session_health"] == "healthy", health


def test_health_reads_an_older_workers_mb_as_mib() -> None:
    """A heartbeat from a worker of the previous version (profile_mb, decimal MB) is converted, not misread."""
    from continuity.watchdog.health import assess

    wa = {"state": "ready", "profile_mb": 510.0, "session_max_mb": 500.0}
    health = assess(watchdog_state="running", heartbeat={"whatsapp": wa}, heartbeat_age_s=1.0, heartbeat_timeout_s=120)
    assert health["session_health"] == "healthy", health


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e308"])
def test_stop_timeout_option_refuses_what_would_never_end(home: Home, value: str) -> None:
    """`stop --timeout nan|inf|-1|1e308` is refused by the option itself (exit 2), before anything is waited for."""
    result = CliRunner().invoke(cli, ["--home", str(home.root), "stop", "--timeout", value])
    assert result.exit_code == 2 and "--timeout" in result.output
