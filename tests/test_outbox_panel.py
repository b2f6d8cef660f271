"""The dashboard's outbox panel: Outbox.retry / cancel, run/outbox_view.json, and the API through a real worker."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

from continuity.watchdog.instance import Home
from continuity.worker.outbox_view import VIEW_FILE, OutboxViewWriter, outbox_view
from continuity.worker.store import InvalidRecord, Outbox, TokenNotFound
from tests._watchdog_harness import FAST, start_watchdog, stop_watchdog, wait_for
from tests.test_api import free_port, request

PHONE = "15551234567"


def fail_for_good(outbox: Outbox, reason: str) -> str:
    """Queue a message and fail it permanently; returns its id."""
    record, _created = outbox.enqueue(PHONE, f"doomed: {reason}")
    claimed = outbox.claim("test")
    assert claimed is not None and claimed["id"] == record["id"]
    outbox.mark_failed(record["id"], reason, permanent=True)
    return str(record["id"])


def test_cancel_and_retry_change_only_what_they_may(home: Home) -> None:
    """cancel: pending -> failed for good with a reason; retry: failed -> pending; anything else is refused."""
    with Outbox.open(home) as outbox:
        failed = fail_for_good(outbox, "invalid number")
        pending = outbox.enqueue(PHONE, "hello")[0]["id"]
        cancelled = outbox.cancel(pending)
        assert cancelled["state"] == "failed" and cancelled["cancelled"] and "cancelled" in cancelled["last_error"]
        with pytest.raises(InvalidRecord, match="only pending"):
            outbox.cancel(pending)
        again = outbox.retry(failed)
        assert again["state"] == "pending" and again["failed_at"] is None and again["retry_at"] is None
        assert outbox.claim("test")["id"] == failed  # type: ignore[index]
        outbox.mark_sent(failed)
        with pytest.raises(InvalidRecord, match="is sent"):
            outbox.retry(failed)
        with pytest.raises(TokenNotFound):
            outbox.retry("no-such-message")
    with Outbox.open(home) as reopened:  # durable
        assert reopened.get(pending)["state"] == "failed"  # type: ignore[index]
        assert reopened.counts()["sent"] == 1


def test_the_view_file_is_private_short_and_rewritten_on_change(home: Home) -> None:
    """run/outbox_view.json is 0600, lists pending oldest first and failed with reasons, cuts long texts, and is
    written again only after the outbox changed."""
    now = [100.0]
    with Outbox.open(home) as outbox:
        fail_for_good(outbox, "not on WhatsApp")
        outbox.enqueue(PHONE, "x" * 5000)
        writer = OutboxViewWriter(outbox, home.run_dir, clock=lambda: now[0])
        writer(None)
        path = home.run_dir / VIEW_FILE
        if os.name == "posix":
            assert path.stat().st_mode & 0o777 == 0o600
        view = json.loads(path.read_text())
        assert [m["state"] for m in view["pending"]] == ["pending"] and len(view["pending"][0]["text"]) == 120
        assert view["failed"][0]["reason"] == "not on WhatsApp" and view["counts"]["failed"] == 1
        path.unlink()
        now[0] += 10
        writer(None)
        assert not path.exists(), "rewritten with nothing changed"
        outbox.enqueue(PHONE, "second")
        writer(None)
        assert len(json.loads(path.read_text())["pending"]) == 2


def test_view_limits_each_list() -> None:
    """At most `limit` messages of each kind, and how many more there are."""

    class Fake:
        def list(self, *, state: str | None = None) -> list[dict[str, Any]]:
            rows = [{"id": f"p{i}", "state": "pending", "created_at": i} for i in range(5)]
            rows += [{"id": f"f{i}", "state": "failed", "failed_at": i} for i in range(3)]
            return [r for r in rows if state is None or r["state"] == state]

        def counts(self) -> dict[str, int]:
            return {"pending": 5, "failed": 3}

    view = outbox_view(Fake(), now=1.0, limit=2)
    assert [m["id"] for m in view["pending"]] == ["p0", "p1"] and view["more_pending"] == 3
    assert [m["id"] for m in view["failed"]] == ["f2", "f1"] and view["more_failed"] == 1


def real_worker_config(home: Home, port: int) -> None:
    """A real worker without a browser (messages wait in the outbox), the API on `port`."""
    settings = {**FAST, "startup_grace": 20.0, "heartbeat_timeout": 20.0}
    body = "[watchdog]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in settings.items())
    body += f"[worker]\nheartbeat_interval = 0.5\n[whatsapp]\nenabled = false\n[api]\nport = {port}\naction_wait = 15\n"
    home.config_file.write_text(body, encoding="utf-8")


def outbox_api(port: int, token: str | None) -> tuple[int, dict[str, Any]]:
    status, _headers, body = request(port, "GET", "/api/outbox", token=token)
    return status, json.loads(body)


def test_the_api_lists_retries_and_cancels_through_the_worker(home: Home) -> None:
    """/api/outbox needs the token even on loopback; retry and cancel go to the real worker as control actions and
    the listing shows their effect; a message that cannot be cancelled is a 409 with the reason."""
    assert sys.platform != "win32" or pytest.skip("POSIX process handling in the harness")
    port = free_port()
    real_worker_config(home, port)
    with Outbox.open(home) as outbox:
        failed = fail_for_good(outbox, "the number is not on WhatsApp")
        pending = outbox.enqueue(PHONE, "<b>hi</b>")[0]["id"]
    proc = start_watchdog(home)
    try:
        wait_for(lambda: (home.run_dir / "api_token").exists() and (home.run_dir / VIEW_FILE).exists(),
                 timeout=30, what="the API and the outbox view")  # fmt: skip
        token = (home.run_dir / "api_token").read_text().strip()
        assert outbox_api(port, None)[0] == 401
        status, view = outbox_api(port, token)
        assert status == 200 and view["available"]
        assert [m["id"] for m in view["pending"]] == [pending] and [m["id"] for m in view["failed"]] == [failed]
        assert view["failed"][0]["reason"] == "the number is not on WhatsApp"
        assert request(port, "POST", "/api/outbox/cancel", body={"id": pending})[0] == 401
        status, _h, body = request(port, "POST", "/api/outbox/cancel", body={"id": pending}, token=token)
        assert status == 200 and json.loads(body)["ok"] is True, body
        status, _h, body = request(port, "POST", "/api/outbox/retry", body={"id": failed}, token=token)
        assert status == 200 and json.loads(body)["ok"] is True, body
        view = outbox_api(port, token)[1]
        assert [m["id"] for m in view["pending"]] == [failed]
        assert [(m["id"], m["cancelled"]) for m in view["failed"]] == [(pending, True)]
        status, _h, body = request(port, "POST", "/api/outbox/cancel", body={"id": pending}, token=token)
        assert status == 409 and "only pending" in json.loads(body)["message"]
        assert request(port, "POST", "/api/outbox/retry", body={"nope": 1}, token=token)[0] == 400
        assert request(port, "GET", "/api/outbox/retry", token=token)[0] == 405
    finally:
        stop_watchdog(proc)
    with Outbox.open(home) as outbox:
        assert outbox.get(pending)["state"] == "failed" and outbox.get(failed)["state"] == "pending"  # type: ignore[index]
