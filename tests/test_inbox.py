"""The inbox's pure logic and store: dedupe, reading notes, handler bookkeeping, parsing, signing, config, CLI."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from continuity.watchdog.cli import cli as cli_main
from continuity.watchdog.cli.inbox import parse_since
from continuity.watchdog.instance import ConfigError, EventLog, Home, backoff_delay, parse_config
from continuity.worker.inbox_handlers import MessageJobs, WebhookSender, sign
from continuity.worker.jobs import JobContext, JobRunner
from continuity.worker.session.incoming import (
    Bubble,
    first_sight_baseline,
    parse_data_id,
    parse_pre,
    select_new,
    to_message,
)
from continuity.worker.store._inbox import Inbox


def _msg(ident: str, chat: str = "15557654321@c.us", text: str = "hi") -> dict[str, Any]:
    return {"id": ident, "chat_jid": chat, "chat": chat.split("@")[0], "text": text}


def test_add_many_stores_each_message_once_in_order(home: Home) -> None:
    """The same WhatsApp message id given twice (also in one call) is stored once; seq follows the order given."""
    with Inbox.open(home) as inbox:
        fresh = inbox.add_many([_msg("a"), _msg("b"), _msg("a")], webhook=True, jobs=False)
        assert [m["id"] for m in fresh] == ["a", "b"]
        assert inbox.add_many([_msg("b"), _msg("c")], webhook=True, jobs=False)[0]["id"] == "c"
        assert [(m["id"], m["seq"]) for m in inbox.messages()] == [("a", 1), ("b", 2), ("c", 3)]
        assert inbox.counts() == {"messages": 3, "jobs_pending": 0, "webhook_pending": 3, "reading": 0}
    with Inbox.open(home) as again:  # durable: another open (a restarted worker) sees the same
        assert [m["id"] for m in again.messages()] == ["a", "b", "c"]
        assert again.add_many([_msg("d")], webhook=False, jobs=False)[0]["seq"] == 4


def test_reading_note_survives_until_the_messages_are_stored(home: Home) -> None:
    """begin_reading is durable on its own; end_reading stores the messages and drops the note together."""
    with Inbox.open(home) as inbox:
        inbox.begin_reading("+15557654321", unread=2)
    with Inbox.open(home) as after_kill:
        notes = after_kill.readings()
        assert [(n["title"], n["unread"], n["attempts"]) for n in notes] == [("+15557654321", 2, 1)]
        after_kill.begin_reading("+15557654321", unread=1)  # a second attempt keeps the larger count
        assert after_kill.readings()[0]["unread"] == 2 and after_kill.readings()[0]["attempts"] == 2
        after_kill.end_reading("+15557654321", [_msg("x"), _msg("y")], webhook=False, jobs=True)
        assert after_kill.readings() == []
        assert [m["id"] for m in after_kill.messages()] == ["x", "y"]
        assert after_kill.counts()["jobs_pending"] == 2 and after_kill.counts()["reading"] == 0


def test_handler_outcomes_are_recorded_and_leave_the_queue(home: Home) -> None:
    """open_messages lists pending work oldest first; a recorded outcome takes a message out of it."""
    with Inbox.open(home) as inbox:
        inbox.add_many([_msg("a"), _msg("b")], webhook=True, jobs=True)
        assert [m["id"] for m in inbox.open_messages("webhook")] == ["a", "b"]
        inbox.record_handler("a", "webhook", state="delivered", attempts=2, last_status=200)
        assert [m["id"] for m in inbox.open_messages("webhook")] == ["b"]
        assert [m["id"] for m in inbox.open_messages("jobs")] == ["a", "b"]
    with Inbox.open(home) as again:
        record = again.messages()[0]
        assert record["webhook"] == {"state": "delivered", "attempts": 2, "last_status": 200}


def test_data_id_and_header_parsing() -> None:
    """Person and group data-ids give chat, message id and sender; the header gives time and name."""
    assert parse_data_id("false_15551234567@c.us_3A1B") == {
        "chat_jid": "15551234567@c.us",
        "wa_id": "3A1B",
        "sender_jid": "15551234567@c.us",
    }
    assert parse_data_id("false_1203630123@g.us_3A1B_15559876543@c.us") == {
        "chat_jid": "1203630123@g.us",
        "wa_id": "3A1B",
        "sender_jid": "15559876543@c.us",
    }
    assert parse_data_id("true_15551234567@c.us_3EB0") is None and parse_data_id("false_nojid") is None
    assert parse_pre("[10:31, 11/30/2026] Alice Smith: ") == ("10:31, 11/30/2026", "Alice Smith")
    assert parse_pre("garbage") == ("", "")
    group = to_message(Bubble("false_1203630123@g.us_3A1B_15559876543@c.us", "/track X", "[1:00, 1/1/2026] Bob: "),
                       chat_title="Token Alerts")  # fmt: skip
    assert group is not None
    assert (group["chat"], group["group"], group["sender"], group["sender_phone"]) == (
        "Token Alerts", True, "Bob", "15559876543"
    )  # fmt: skip
    person = to_message(Bubble("false_15551234567@c.us_3A1C", "hi", ""), chat_title="+15551234567")
    assert person is not None and person["chat"] == "15551234567" and person["sender"] == "+15551234567"


def test_select_new_takes_unread_and_what_follows_the_newest_stored() -> None:
    """The last `unread` bubbles, those after the newest stored one, and those outside a baseline; never a stored
    one."""
    bubbles = [Bubble(f"false_1@c.us_{i}", str(i), "") for i in range(6)]
    ids = [b.data_id for b in bubbles]
    assert [b.text for b in select_new(bubbles, set(), unread=2, baseline=None)] == ["4", "5"]
    assert [b.text for b in select_new(bubbles, {ids[2]}, unread=0, baseline=None)] == ["3", "4", "5"]
    assert [b.text for b in select_new(bubbles, {ids[5]}, unread=2, baseline=None)] == ["4"]
    assert [b.text for b in select_new(bubbles, set(), unread=0, baseline=set(ids[:5]))] == ["5"]
    assert select_new(bubbles, set(), unread=0, baseline=None) == []


def test_signature_and_backoff() -> None:
    """The signature is HMAC-SHA256 of the exact body, hex, prefixed sha256=; backoff doubles up to its cap."""
    body = b'{"event": "message"}'
    assert sign("k", body) == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert [backoff_delay(attempt=n, first_s=1.0, cap_s=5.0) for n in (1, 2, 3, 4, 10)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_parse_since() -> None:
    """--since takes durations ago, epoch seconds and ISO dates; anything else is refused."""
    assert parse_since("15m", now=10_000.0) == 10_000.0 - 900
    assert parse_since("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_since("1700000000") == 1_700_000_000.0
    assert parse_since("2026-11-30T00:00:00+00:00") == 1795996800.0
    with pytest.raises(ValueError):
        parse_since("yesterday")


def test_config_inbox_and_message_jobs() -> None:
    """[inbox] keys and jobs' `on` are checked at load; message jobs are not scheduled as interval jobs."""
    config = parse_config(
        {
            "inbox": {"webhook_url": "http://127.0.0.1:9/x", "webhook_secret": "s", "webhook_backoff": [0.5, 10]},
            "jobs": [{"callable": "json:dumps", "on": "message"}, {"callable": "json:loads"}],
        }
    )
    assert config.inbox.webhook_backoff == (0.5, 10.0) and config.jobs[0].on == "message"
    context = JobContext(None, None, None, None, threading.Event(), None, None)  # type: ignore[arg-type]
    runner = JobRunner.from_config(config.jobs, context, events=EventLog(Path("/dev/null"), source="t"))
    assert [j.name for j in runner.jobs] == ["json:loads"]
    with pytest.raises(ConfigError, match=r"jobs\[0\]\.on"):
        parse_config({"jobs": [{"callable": "json:dumps", "on": "sometimes"}]})
    with pytest.raises(ConfigError, match=r"inbox\.webhook_url"):
        parse_config({"inbox": {"webhook_url": "ftp://x"}})


def test_message_jobs_run_in_order_per_chat_and_retry(home: Home) -> None:
    """A job failing on a chat's first message holds that chat's later messages (not other chats') until it
    succeeds; each message ends done, called at least once."""
    calls: list[str] = []
    fail_once = {"a1"}

    def job(_ctx: JobContext, message: dict[str, Any]) -> None:
        calls.append(message["id"])
        if message["id"] in fail_once:
            fail_once.discard(message["id"])
            raise RuntimeError("boom")

    with Inbox.open(home) as inbox:
        inbox.add_many([_msg("a1", "1@c.us"), _msg("b1", "2@c.us"), _msg("a2", "1@c.us")], webhook=False, jobs=True)
        context = JobContext(None, None, None, None, threading.Event(), home, None)  # type: ignore[arg-type]
        runner = MessageJobs(inbox, [("t:job", job)], context, events=EventLog(home.events_file, source="t"))
        runner.step()
        assert calls == ["a1", "b1"]  # a2 waits behind a1's retry
        time.sleep(1.05)
        runner.step()
        assert calls == ["a1", "b1", "a1", "a2"]
        assert inbox.counts()["jobs_pending"] == 0
        assert inbox.messages()[0]["jobs"]["attempts"] == 2


def test_webhook_refused_connection_is_recorded_for_retry(home: Home) -> None:
    """A receiver that is not there: the attempt, its error and the next time are recorded; nothing is lost."""
    with Inbox.open(home) as inbox:
        inbox.add_many([_msg("a")], webhook=True, jobs=False)
        sender = WebhookSender(
            inbox, url="http://127.0.0.1:9/none", secret="s", timeout_s=2.0, backoff_s=(5.0, 60.0),
            stop=threading.Event(), events=EventLog(home.events_file, source="t"),
        )  # fmt: skip
        assert sender.step() == 5.0
        hook = inbox.messages()[0]["webhook"]
        assert hook["state"] == "pending" and hook["attempts"] == 1 and hook["last_error"]
        assert hook["next_at"] > time.time() + 4


def test_inbox_list_cli(home: Home) -> None:
    """`continuity inbox list --json` prints the stored messages; the table says chat, sender and text."""
    with Inbox.open(home) as inbox:
        inbox.add_many([{**_msg("a", text="/track ABC"), "sender": "Bob"}], webhook=False, jobs=False)
    runner = CliRunner()
    out = runner.invoke(cli_main, ["--home", str(home.root), "inbox", "list", "--json"])
    assert out.exit_code == 0, out.output
    assert [m["text"] for m in json.loads(out.output)] == ["/track ABC"]
    table = runner.invoke(cli_main, ["--home", str(home.root), "inbox", "list", "--since", "1h"])
    assert table.exit_code == 0 and "Bob" in table.output and "/track ABC" in table.output
    future = runner.invoke(cli_main, ["--home", str(home.root), "inbox", "list", "--json", "--since", "4000000000"])
    assert json.loads(future.output) == []
    bad = runner.invoke(cli_main, ["--home", str(home.root), "inbox", "list", "--since", "soon"])
    assert bad.exit_code == 2


def test_simulator_incoming_badges_and_receipts() -> None:
    """A received message is unread (a badge count) until its chat is opened, which sends one read receipt."""
    from continuity.devtools.simulator._incoming import Incoming, group_jid

    incoming = Incoming(wall=lambda: 1000.0)
    first = incoming.receive("15557654321", "hi")
    incoming.receive("15557654321", "again")
    group = incoming.receive("group:Token Alerts", "/track X", sender="15551112222", name="Bob")
    assert first["data_id"] == f"false_15557654321@c.us_{first['id']}"
    assert group["data_id"].endswith("_15551112222@c.us") and group["jid"] == group_jid("Token Alerts")
    rows = {r["title"]: r["unread"] for r in incoming.listing()}
    assert rows == {"+15557654321": 2, "Token Alerts": 1}
    opened = incoming.open("15557654321@c.us")
    assert [m["text"] for m in opened] == ["hi", "again"]
    assert incoming.receipts == [{"jid": "15557654321@c.us", "ids": [m["id"] for m in opened], "ts": 1000.0}]
    incoming.open("15557654321@c.us")  # nothing unread any more: no second receipt
    assert len(incoming.receipts) == 1 and incoming.unread() == 1
    with pytest.raises(ValueError):
        incoming.receive("not-a-phone", "x")


def test_health_warns_about_a_webhook_failing_for_long() -> None:
    """A webhook failing for 5 minutes is a status warning (not a worse health); a shorter failure is not."""
    from continuity.watchdog.health import assess

    def warnings(failing_for_s: float | None) -> list[str]:
        beat = {
            "whatsapp": {"state": "ready", "connected": True},
            "inbox": {"webhook_pending": 3, "webhook": {"failing_for_s": failing_for_s, "last_error": "HTTP 500"}},
        }
        verdict = assess(watchdog_state="running", heartbeat=beat, heartbeat_age_s=1.0, heartbeat_timeout_s=60.0)
        return [w for w in verdict["warnings"] if "webhook" in w]

    assert warnings(301.0) == ["inbox webhook failing for 301 s (3 waiting): HTTP 500"]
    assert warnings(30.0) == [] and warnings(None) == []


def test_readme_example_job_is_the_tested_one_and_tracks_a_token(home: Home) -> None:
    """The README's "/track ADDRESS" job (the same code as tests/_inbox_job.py) upserts the token from a group
    message and ignores a person's."""
    from continuity.worker.store import TokenStore
    from tests import _inbox_job

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("# mybot/commands.py", 1)[1].split("```", 1)[0]
    source = Path(_inbox_job.__file__).read_text(encoding="utf-8")
    body = source.split("# mybot/commands.py", 1)[1].split("\n\n\n", 1)[0]
    assert [line.split("  # type:")[0] for line in body.splitlines()] == snippet.rstrip().splitlines()
    with TokenStore.open(home) as store, Inbox.open(home) as inbox:
        inbox.add_many(
            [
                {**_msg("g1", "1203630@g.us", "/track So1anaAddr"), "group": True, "sender": "Bob", "chat": "Alerts"},
                {**_msg("p1", "15557654321@c.us", "/track Other"), "group": False, "sender": "Eve"},
            ],
            webhook=False,
            jobs=True,
        )
        context = JobContext(store, None, None, None, threading.Event(), home, None)  # type: ignore[arg-type]
        runner = MessageJobs(
            inbox, [("example", _inbox_job.on_message_typed)], context, events=EventLog(home.events_file, source="t")
        )
        runner.step()
        tracked = store.get("So1anaAddr")
        assert tracked is not None and tracked["requested_by"] == "Bob" and tracked["chat"] == "Alerts"
        assert store.get("Other") is None
        assert inbox.counts()["jobs_pending"] == 0


def test_first_sight_of_a_chat_left_open_keeps_what_came_after_our_send() -> None:
    """In a chat the sender opened, bubbles after our last outgoing one and the last `unread` are new; the rest is
    old (already read before): select_new then stores exactly the new ones."""
    bubbles = [Bubble("a", "old", ""), Bubble("b", "badge", ""), Bubble("c", "after send", "", after_out=True)]
    assert first_sight_baseline(bubbles, unread=0) == {"a", "b"}
    assert first_sight_baseline(bubbles, unread=2) == {"a"}
    chosen = select_new(bubbles, set(), unread=0, baseline=first_sight_baseline(bubbles, unread=2))
    assert [b.text for b in chosen] == ["badge", "after send"]
