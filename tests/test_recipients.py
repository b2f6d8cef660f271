"""Recipients: "group:NAME" works wherever a phone number does ([notify] recipients, the outbox, `continuity send`),
by the one rule `recipient_id`; bad group names are refused with a clear reason. The simulator's groups and code
flow without a browser."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from continuity.devtools.simulator import Simulator
from continuity.watchdog.instance import ConfigError, Home, load_config, recipient_id
from continuity.worker.store import InvalidPhone, Outbox, normalize_phone


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("group:Token Alerts", "group:Token Alerts"),
        ("group:  Token Alerts ", "group:Token Alerts"),
        ("group:Ünïcode 🚀 alerts", "group:Ünïcode 🚀 alerts"),
        ("+1 555-123-4567", "15551234567"),
    ],
)
def test_a_group_or_a_phone_is_stored_as_the_outbox_keeps_it(raw: str, stored: str) -> None:
    """Groups keep their exact title (surrounding spaces dropped); phone numbers become digits, as before."""
    assert recipient_id(raw) == stored == normalize_phone(raw)


@pytest.mark.parametrize("raw", ["group:", "group:   ", "group:a\nb", "group:" + "x" * 101, "Group:Token", "grp"])
def test_a_bad_group_name_is_refused_saying_what_a_recipient_is(raw: str) -> None:
    """An empty, multi-line or over-long title, or a misspelt prefix, is InvalidPhone naming both forms."""
    assert recipient_id(raw) is None
    with pytest.raises(InvalidPhone, match=r"not a phone number or a group: .*country code.*group:NAME"):
        normalize_phone(raw)


def test_notify_recipients_take_groups_and_refuse_bad_ones(tmp_path: Path) -> None:
    """[notify] recipients loads a group beside a number; an empty group title is a ConfigError naming the key."""
    path = tmp_path / "continuity.toml"
    path.write_text('[notify]\nrecipients = ["group:Token Alerts", "+1 555 123 4567"]\n', encoding="utf-8")
    assert load_config(path).notify.recipients == ("group:Token Alerts", "15551234567")
    path.write_text('[notify]\nrecipients = ["group: "]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"notify\.recipients\[0\]: 'group: ' is not a phone number or a group"):
        load_config(path)


def test_send_command_queues_a_group_message(home: Home) -> None:
    """`continuity send "group:Token Alerts" TEXT` queues it for the group; "group:" alone is refused (exit 1)."""
    base = [sys.executable, "-m", "continuity.watchdog", "--home", str(home.root), "send"]
    done = subprocess.run([*base, "group:Token Alerts", "hello group"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "to group:Token Alerts" in done.stdout
    with Outbox.open(home) as box:
        assert [(m["phone"], m["text"]) for m in box.list()] == [("group:Token Alerts", "hello group")]
    bad = subprocess.run([*base, "group:", "x"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "not a phone number or a group" in bad.stderr


def test_simulator_groups_and_code_flow_without_a_browser() -> None:
    """A group gets a @g.us jid and is sendable; the code flow refuses a wrong number, refreshes its code, and the
    phone entering a code for another number is refused."""
    with Simulator(port=0) as sim:
        state = sim._sim
        jid = sim.add_group("Token Alerts")
        assert jid.endswith("@g.us") and sim.group_jid("Token Alerts") == jid and sim.add_group("Token Alerts") == jid
        assert state.open_chat(jid)["valid"] and not state.open_chat("120363000000000000@g.us")["valid"]
        sim.set_code_rotate(0.2)
        state.page("pageA", None)
        assert state.link_start("pageA")["status"] == "phone_entry"
        assert "isn't valid" in state.link_phone("pageA", "12")["error"]
        shown = state.link_phone("pageA", "15557654321")
        assert shown["status"] == "code" and len(shown["code"]) == 9 and shown["code"][4] == "-"
        with pytest.raises(ValueError, match="asked for \\+15557654321, not this phone"):
            sim.enter_code()
        time.sleep(0.25)
        assert state.page("pageA", None)["code"] != shown["code"]  # refreshed


@pytest.mark.parametrize(
    ("token", "recipient"),
    [("tok1", "15551234567"), ("tok:1", "15551234567"), ("tok1", "group:Token Alerts"), ("a:b", "group:x: y")],
)
def test_notify_dedupe_keys_give_back_the_token_for_group_recipients(token: str, recipient: str) -> None:
    """The notify job reads the token id back from a dedupe key, also when the recipient is a group (colons)."""
    from continuity.worker.notify import dedupe_key, token_of

    assert token_of(dedupe_key(token, recipient)) == token
