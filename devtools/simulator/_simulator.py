"""`Simulator`: a local stand-in for WhatsApp Web, served on 127.0.0.1 from a background thread."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

from ._server import SimHTTPServer
from ._state import NoQrShown, SimState
from ._variants import DEFAULT_VARIANT

log = logging.getLogger("continuity.simulator")


class Simulator:
    """A fake WhatsApp Web: the page with the real markup, a fake phone that scans its QR, faults on demand.

    `port=0` picks a free port. `qr_rotate_s`: seconds each QR payload is shown; after `qr_max_rotations`
    rotations the page goes idle ("Click to reload QR code"). `poll_s`: seconds between the page's status
    polls (how fast it notices a scan, a logout or a mode). `variant`: the page markup served (see VARIANTS;
    `set_variant` changes it for each page's next load). Linked devices live in memory for the object's lifetime.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        qr_rotate_s: float = 20.0,
        qr_max_rotations: int = 5,
        poll_s: float = 1.0,
        variant: str = DEFAULT_VARIANT,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be 0..65535, got {port!r}")
        if not 0 < poll_s <= 60:
            raise ValueError(f"poll_s must be in (0, 60] seconds, got {poll_s!r}")
        self._port = port
        self._poll_s = float(poll_s)
        self._sim = SimState(qr_rotate_s=qr_rotate_s, qr_max_rotations=qr_max_rotations, variant=variant)
        self._server: SimHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Simulator:
        """Bind 127.0.0.1:port and serve in a daemon thread; OSError when the port is taken."""
        if self._server is not None:
            raise RuntimeError("simulator already started")
        self._server = SimHTTPServer(self._port, sim=self._sim, poll_s=self._poll_s, url=lambda: self.url)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="wa-simulator", daemon=True
        )
        self._thread.start()
        log.info("simulator serving %s", self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        log.info("simulator stopped")

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (started simulators only)."""
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The WhatsApp Web page, e.g. "http://127.0.0.1:8766/"."""
        return f"http://127.0.0.1:{self.port}/"

    @property
    def control_url(self) -> str:
        """The JSON control endpoint (POST)."""
        return f"{self.url}__sim__/control"

    # ----- the phone and the faults ----------------------------------------------------------------
    def scan(self, payload: str | None = None) -> dict[str, Any]:
        """The phone scans the QR shown now (or the one showing `payload`); NoQrShown if none."""
        return self._sim.scan(payload)

    def wait_qr(self, *, timeout_s: float = 10.0, poll_s: float = 0.05) -> str:
        """The QR payload a page shows, waiting up to `timeout_s` seconds for one; NoQrShown after that."""
        deadline = time.monotonic() + timeout_s
        while True:
            payload = self._sim.state()["qr"]
            if payload:
                return str(payload)
            if time.monotonic() >= deadline:
                raise NoQrShown(f"no page showed a QR code within {timeout_s:g} s")
            time.sleep(poll_s)

    def logout(self) -> int:
        """The phone logs out every linked device; pages go to ?post_logout=1 and a QR. Returns how many."""
        return self._sim.logout()

    def set_mode(self, name: str, on: bool = True, **params: Any) -> dict[str, dict[str, Any]]:
        """Switch a fault/overlay mode on or off (see MODES); ValueError for an unknown mode or bad params."""
        return self._sim.set_mode(name, on, **params)

    def set_variant(self, name: str) -> str:
        """Serve markup variant `name` (see VARIANTS) from each page's next load; ValueError for an unknown one."""
        return self._sim.set_variant(name)

    @property
    def variant(self) -> str:
        """The markup variant a page gets when it loads now."""
        return self._sim.variant()

    def state(self) -> dict[str, Any]:
        """JSON-able snapshot: logged_in, qr (payload shown now), devices, pages, modes, variant, counts."""
        snapshot = self._sim.state()
        if self._server is not None:
            snapshot["url"] = self.url
        return snapshot

    def delivered(self) -> list[dict[str, Any]]:
        """Every message the server accepted, once each: {"id", "phone", "text", "ts"}."""
        return [{k: d[k] for k in ("id", "phone", "text", "ts")} for d in self._sim.delivered()]

    def receive(self, chat: str, text: str, *, sender: str | None = None, name: str | None = None) -> dict[str, Any]:
        """A message arrives for the account in `chat` (a phone's digits, or "group:NAME" with `sender` digits):
        an unread badge on its chat row until a page opens the chat. Returns {"id", "jid", "data_id", "ts"}."""
        return self._sim.receive(chat, text, sender=sender, name=name)

    def receipts(self) -> list[dict[str, Any]]:
        """Read receipts pages sent (a chat opened with unread messages), oldest first: {"jid", "ids", "ts"}."""
        return self._sim.receipts()

    def history(self, phone: str) -> list[dict[str, Any]]:
        """One chat's messages as the server keeps them, with status pending | sent | failed."""
        return self._sim.history(phone)

    # ----- groups and linking by phone number (_groups.py, _linking.py) ----------------------------------------
    def add_group(self, title: str) -> str:
        """A group the account is in, titled exactly `title`: a chat list row; returns its jid (`<id>@g.us`,
        the key of `history` and of `delivered()["phone"]` for it)."""
        return self._sim.add_group(title)

    def group_jid(self, title: str) -> str | None:
        """The jid of the group titled exactly `title`, or None."""
        return self._sim.group_jid(title)

    def set_code_rotate(self, seconds: float) -> None:
        """Seconds a phone-linking code is shown before the page refreshes it (the real one: about 180)."""
        if not seconds > 0:
            raise ValueError(f"seconds must be > 0, got {seconds!r}")
        self._sim.code_rotate_s = float(seconds)

    def link_code(self) -> str | None:
        """The phone-linking code ("XXXX-XXXX") a page shows now, or None."""
        return self._sim.link_code()

    def enter_code(self, code: str | None = None) -> dict[str, Any]:
        """The phone enters the linking code a page shows (or `code`): that page is linked, with no QR scanned.
        LinkRefused (a ValueError) when no page shows it or it was asked for another number than this phone's
        (`state()["account"]["phone"]`)."""
        return self._sim.enter_code(code)
