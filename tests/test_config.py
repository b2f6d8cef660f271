"""continuity.toml: defaults, and a clear refusal of every kind of bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuity.watchdog.instance import Config, ConfigError, load_config


def _load(tmp_path: Path, text: str | bytes) -> Config:
    path = tmp_path / "continuity.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return load_config(path)


def test_missing_file_gives_design_defaults(tmp_path: Path) -> None:
    """No file: every key has the default DESIGN.md lists."""
    config = load_config(tmp_path / "absent.toml")
    assert config.watchdog.heartbeat_timeout == 120 and config.watchdog.restart_limit == 10
    assert config.watchdog.restart_window == 300 and config.watchdog.on_restart_limit == "wait"
    assert config.api.port == 8765 and config.whatsapp.reconnect_backoff == (1.0, 60.0)


def test_values_are_read_and_ints_accepted_for_seconds(tmp_path: Path) -> None:
    """Integers are fine where seconds are floats; restart_delay may be 0."""
    config = _load(tmp_path, "[watchdog]\nrestart_delay = 0\nheartbeat_timeout = 30\nworker_command = ['x', '-y']\n")
    assert config.watchdog.restart_delay == 0.0 and config.watchdog.heartbeat_timeout == 30.0
    assert config.watchdog.worker_command == ("x", "-y")


def test_selector_overrides_are_read_in_order(tmp_path: Path) -> None:
    """[whatsapp.selectors] role = "CSS": kept as (role, selector) pairs for the page to try first."""
    config = _load(tmp_path, "[whatsapp.selectors]\nmain = \"div[data-panel='chats']\"\ncompose = 'footer p'\n")
    assert config.whatsapp.selectors == (("main", "div[data-panel='chats']"), ("compose", "footer p"))
    assert config.whatsapp.unrecognized_after == 60.0 and config.whatsapp.send_stall_after == 120.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[watchdog]\nheartbeat_timout = 5\n", "unknown key watchdog.heartbeat_timout"),
        ("[watchdgo]\n", "unknown section [watchdgo]"),
        ("[watchdog]\nheartbeat_timeout = '120'\n", "watchdog.heartbeat_timeout must be float, got str"),
        ("[watchdog]\nrestart_limit = 2.5\n", "watchdog.restart_limit must be int"),
        ("[watchdog]\nrestart_limit = true\n", "watchdog.restart_limit must be int, got bool"),
        ("[watchdog]\nstop_timeout = 0\n", "watchdog.stop_timeout must be greater than 0"),
        ("[watchdog]\nheartbeat_timeout = -1\n", "watchdog.heartbeat_timeout must be greater than 0"),
        ("[watchdog]\nrestart_delay = -1\n", "watchdog.restart_delay must not be negative"),
        ("[watchdog]\non_restart_limit = 'panic'\n", "watchdog.on_restart_limit must be one of"),
        ("[watchdog]\nrestart_delay = 10\nrestart_delay_max = 5\n", "restart_delay_max (5) must be >="),
        ("[watchdog]\nworker_command = 'python w.py'\n", "watchdog.worker_command must be a list of str"),
        ("[api]\nport = 70000\n", "api.port must be a TCP port"),
        ("[notify]\nrecipients = ['+1 555']\n", "is not a phone number"),
        ("[[jobs]]\ninterval = 5\n", "jobs[0].callable is required"),
        ("[watchdog\n", "not valid TOML"),
        ("[whatsapp.selectors]\ncomposer = 'div'\n", "whatsapp.selectors.composer: unknown role (known roles: chat,"),
        ("[whatsapp.selectors]\ncompose = 'div[data-x'\n", "'div[data-x' is not a valid CSS selector"),
        ("[whatsapp.selectors]\ncompose = 'footer >'\n", "ends with a combinator"),
        ("[whatsapp.selectors]\ncompose = 3\n", "whatsapp.selectors.compose must be a CSS selector string"),
        ("[whatsapp]\nselectors = ['div']\n", "[whatsapp.selectors] must be a table"),
        ("[notify]\ntemplate = 'New {symbol'\n", "notify.template 'New {symbol' is not a valid template"),
        ("[notify]\ntemplate = 'Token {0}'\n", "notify.template: {0} must name a token field"),
        ("[alerts]\nwebhook_url = 'ftp://hooks.example/x'\n", "[alerts] webhook_url must be an http:// or https://"),
        ("[alerts]\ntelegram_bot_token = 'x'\n", "telegram_bot_token and telegram_chat_id must be set together"),
    ],
)
def test_bad_values_name_the_key_and_file(tmp_path: Path, text: str, message: str) -> None:
    """Each bad config is refused with a message naming the key (or problem) and the file."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert message in str(info.value)
    assert str(tmp_path / "continuity.toml") in str(info.value)


def test_non_utf8_config_is_refused(tmp_path: Path) -> None:
    """A config saved in a legacy encoding gets a clear error, not a traceback."""
    with pytest.raises(ConfigError, match="not UTF-8"):
        _load(tmp_path, b"[notify]\ntemplate = '\xe9'\n")
