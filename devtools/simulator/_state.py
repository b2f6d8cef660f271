"""The fake account behind the simulator: the phone, its linked devices, pages showing a QR, chats, faults,
and the markup variant pages are served.

Thread-safe: every public method takes one lock. Times are seconds; `clock` (monotonic) drives QR rotation and
page freshness, `wall` (epoch seconds) stamps messages and devices.

Over 300 lines on purpose: every public method is one step of the fake account under its one lock (the chats,
groups, incoming messages and linking are modules of their own); splitting the rest would split the lock's users.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._chats import Chats, check_message
from ._groups import Groups, is_group
from ._incoming import Incoming
from ._linking import CODE_ROTATE_S, LinkingMixin
from ._modes import MODES, check_mode, valid_phone
from ._variants import DEFAULT_VARIANT, check_variant

# A page that has not polled for this long no longer counts as showing its QR.
CLIENT_FRESH_S = 10.0
# A page that has not polled for this long is forgotten.
CLIENT_FORGET_S = 300.0


class NoQrShown(LookupError):
    """The phone was asked to scan, but no page currently shows a (matching) QR code."""


@dataclass
class _Client:
    """One loaded page (a browser tab), known by the random id its script made up."""

    id: str
    last_seen: float
    status: str = "qr"  # qr | idle | phone_entry | code | paired | ready | logged_out
    qr: str | None = None
    qr_since: float = 0.0
    rotations: int = 0
    token: str | None = None
    link_phone: str | None = None  # linking by phone number (_linking.py): the number typed, the code shown
    link_code: str | None = None
    link_since: float = 0.0
    link_codes: int = 0


@dataclass
class _Device:
    """A linked device: what a browser profile's stored session token stands for."""

    id: int
    token: str
    paired_at: float
    last_seen: float


@dataclass
class _Counts:
    scans: int = 0
    logouts: int = 0
    qr_shown: int = 0


def _qr_payload() -> str:
    """A payload shaped like the real one: "2@<ref>,<noise key>,<identity key>,<adv secret>"."""
    parts = [base64.b64encode(secrets.token_bytes(n)).decode() for n in (60, 32, 32, 32)]
    return "2@" + ",".join(parts)


class SimState(LinkingMixin):
    """The account model; the HTTP server and the `Simulator` API both act on it."""

    def __init__(
        self,
        *,
        qr_rotate_s: float,
        qr_max_rotations: int,
        phone: str = "15550001234",
        variant: str = DEFAULT_VARIANT,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if not qr_rotate_s > 0:
            raise ValueError(f"qr_rotate_s must be > 0 seconds, got {qr_rotate_s!r}")
        if qr_max_rotations < 0:
            raise ValueError(f"qr_max_rotations must be >= 0, got {qr_max_rotations!r}")
        self.qr_rotate_s = float(qr_rotate_s)
        self.qr_max_rotations = int(qr_max_rotations)
        self.phone = phone
        self._variant = check_variant(variant)
        self._clock = clock
        self._wall = wall
        self._lock = threading.Lock()
        self._clients: dict[str, _Client] = {}
        self._devices: dict[str, _Device] = {}
        self._next_device = 1
        self._modes: dict[str, dict[str, Any]] = {}
        self._chats = Chats(wall=wall)
        self._groups = Groups(wall=wall)  # groups by title (_groups.py): chat list rows, sendable chats
        self.code_rotate_s = CODE_ROTATE_S  # s a phone-linking code is shown before it is refreshed
        self.fresh_s = CLIENT_FRESH_S
        self._incoming = Incoming(wall=wall)  # messages people send to the account
        self._counts = _Counts()

    # ----- modes -----------------------------------------------------------------------------------
    def set_mode(self, name: str, on: bool = True, **params: Any) -> dict[str, dict[str, Any]]:
        """Switch a mode on (with its params) or off; returns all active modes. ValueError for bad input."""
        if not on and params:
            raise ValueError(f"switching mode {name!r} off takes no parameters")
        normalized = check_mode(name, params) if on else {}
        if not on and name not in MODES:
            check_mode(name, {})  # the unknown-mode error
        with self._lock:
            if on:
                self._modes[name] = normalized
            else:
                self._modes.pop(name, None)
            return {k: dict(v) for k, v in self._modes.items()}

    def mode(self, name: str) -> dict[str, Any] | None:
        """The params of an active mode, or None when it is off."""
        with self._lock:
            found = self._modes.get(name)
            return dict(found) if found is not None else None

    # ----- markup variant --------------------------------------------------------------------------
    def set_variant(self, name: str) -> str:
        """Serve markup variant `name` (see VARIANTS) from each page's next load; ValueError for an unknown one."""
        check_variant(name)
        with self._lock:
            self._variant = name
            return name

    def variant(self) -> str:
        """The markup variant a page gets when it loads now."""
        with self._lock:
            return self._variant

    # ----- QR and pairing --------------------------------------------------------------------------
    def _new_qr(self, client: _Client, now: float) -> None:
        client.status, client.qr, client.qr_since, client.rotations = "qr", _qr_payload(), now, 0
        self._counts.qr_shown += 1

    def _advance(self, client: _Client, now: float) -> None:
        """Rotate the client's QR for the time that passed; idle after qr_max_rotations rotations."""
        while client.status == "qr" and now - client.qr_since >= self.qr_rotate_s:
            if client.rotations >= self.qr_max_rotations:
                client.status, client.qr = "idle", None
                break
            client.qr, client.qr_since = _qr_payload(), client.qr_since + self.qr_rotate_s
            client.rotations += 1
            self._counts.qr_shown += 1

    def _forget_old(self, now: float) -> None:
        for cid in [c.id for c in self._clients.values() if now - c.last_seen > CLIENT_FORGET_S]:
            del self._clients[cid]

    def _client(self, client_id: str, now: float) -> _Client:
        client = self._clients.get(client_id)
        if client is None:
            self._forget_old(now)
            client = _Client(id=client_id, last_seen=now, status="new")
            self._clients[client_id] = client
        client.last_seen = now
        return client

    def _page_status(self, client: _Client, token: str | None, now: float) -> dict[str, Any]:
        """What the page should show now; the heart of hello/poll."""
        if client.status == "new":
            device = self._devices.get(token or "")
            if device is not None:
                client.status, client.token = "ready", device.token
            else:
                self._new_qr(client, now)
        if client.status == "paired":
            client.status = "ready"
            return {"status": "syncing", "token": client.token}
        if client.status in ("ready", "logged_out"):
            device = self._devices.get(client.token or "")
            if device is None:
                client.status = "logged_out"
                return {"status": "logged_out"}
            device.last_seen = self._wall()
            return {
                "status": "ready",
                "chats": self._groups.listing(self._chats.listing()),
                "pending": self._chats.pending(),
                "incoming": self._incoming.listing(),
            }
        if client.status in ("phone_entry", "code"):
            return self._link_status(client, now)
        self._advance(client, now)
        if client.status == "idle":
            return {"status": "idle"}
        return {
            "status": "qr",
            "qr": client.qr,
            "qr_expires_in_s": self.qr_rotate_s - (now - client.qr_since),
        }

    def page(self, client_id: str, token: str | None) -> dict[str, Any]:
        """A page's hello or poll: its status plus the modes it must render."""
        with self._lock:
            now = self._clock()
            result = self._page_status(self._client(client_id, now), token, now)
            result["modes"] = {k: dict(v) for k, v in self._modes.items()}
            return result

    def reload_qr(self, client_id: str) -> dict[str, Any]:
        """The page's "Click to reload QR code": a fresh QR and a fresh rotation budget."""
        with self._lock:
            now = self._clock()
            client = self._client(client_id, now)
            if client.status in ("idle", "qr"):
                self._new_qr(client, now)
            return self._page_status(client, None, now)

    # ----- linking by phone number: LinkingMixin (_linking.py) --------------------------------------
    def _pair(self, client: _Client) -> dict[str, Any]:
        """Link `client` to a new device (the phone entered its code)."""
        token = secrets.token_urlsafe(24)
        device = _Device(self._next_device, token, self._wall(), self._wall())
        self._next_device += 1
        self._devices[token] = device
        client.status, client.token = "paired", token
        return {"ok": True, "device": device.id, "client": client.id}

    def _showing_qr(self, now: float) -> list[_Client]:
        shown = []
        for client in self._clients.values():
            self._advance(client, now)
            if client.status == "qr" and now - client.last_seen <= CLIENT_FRESH_S:
                shown.append(client)
        return sorted(shown, key=lambda c: c.last_seen, reverse=True)

    def scan(self, payload: str | None = None) -> dict[str, Any]:
        """The phone scans the QR a page shows now (the newest page, or the one showing `payload`)."""
        with self._lock:
            now = self._clock()
            shown = self._showing_qr(now)
            if payload is not None:
                shown = [c for c in shown if c.qr == payload]
            if not shown:
                which = "this QR payload" if payload is not None else "a QR code"
                raise NoQrShown(f"no page currently shows {which}; open the simulator page in a logged-out browser")
            client = shown[0]
            token = secrets.token_urlsafe(24)
            device = _Device(self._next_device, token, self._wall(), self._wall())
            self._next_device += 1
            self._devices[token] = device
            client.status, client.token, client.qr = "paired", token, None
            self._counts.scans += 1
            return {"ok": True, "device": device.id, "client": client.id}

    def logout(self, token: str | None = None) -> int:
        """Unlink one device (its token), or every device (the phone's "Log out from all devices")."""
        with self._lock:
            if token is None:
                removed = len(self._devices)
                self._devices.clear()
            else:
                removed = 1 if self._devices.pop(token, None) is not None else 0
            self._counts.logouts += removed
            return removed

    def logged_in(self, token: str | None) -> bool:
        """True when `token` belongs to a linked device."""
        with self._lock:
            return bool(token) and token in self._devices

    # ----- chats and sending -----------------------------------------------------------------------
    def _phone_ok(self, phone: str) -> bool:
        if is_group(phone):  # a group's jid: one made with add_group, or one a message came from
            return self._groups.exists(phone) or any(row["jid"] == phone for row in self._incoming.listing())
        invalid = self._modes.get("invalid_numbers", {}).get("numbers", [])
        return valid_phone(phone) and phone not in invalid

    def open_chat(self, phone: str) -> dict[str, Any]:
        """What /send shows for `phone`: valid or not, and the chat's earlier messages."""
        with self._lock:
            if not self._phone_ok(phone):
                return {"valid": False}
            jid = phone if is_group(phone) else f"{phone}@c.us"
            return {"valid": True, "messages": self._chats.history(phone), "incoming": self._incoming.open(jid)}

    def send(self, token: str | None, phone: str, text: str, msg_id: str) -> dict[str, Any]:
        """A page sends (or re-sends) message `msg_id`; status: sent|pending|failed|logged_out|invalid."""
        check_message(text, msg_id)
        with self._lock:
            if not token or token not in self._devices:
                return {"status": "logged_out"}
            if not self._phone_ok(phone):
                return {"status": "invalid"}
            return {"status": self._chats.send(phone, text, msg_id, modes=set(self._modes))}

    def add_group(self, title: str) -> str:
        """Make a group the account is in, titled `title` (exact); returns its jid (the existing one's if any)."""
        with self._lock:
            return self._groups.add(title)

    def group_jid(self, title: str) -> str | None:
        """The jid of the group titled exactly `title`, or None."""
        with self._lock:
            return self._groups.jid(title)

    # ----- incoming messages (devtools/simulator/_incoming.py) ---------------------------------------------
    def receive(self, chat: str, text: str, *, sender: str | None = None, name: str | None = None) -> dict[str, Any]:
        """A message arrives for the account in `chat` (digits, or "group:NAME"); unread until a page opens it."""
        with self._lock:
            return self._incoming.receive(chat, text, sender=sender, name=name)

    def open_incoming(self, token: str | None, jid: str) -> dict[str, Any]:
        """A page opens chat `jid` from the chat list: its incoming bubbles, now read (receipts sent)."""
        with self._lock:
            if not token or token not in self._devices:
                return {"status": "logged_out"}
            return {"status": "ok", "incoming": self._incoming.open(jid)}

    def receipts(self) -> list[dict[str, Any]]:
        """Read receipts the page sent, oldest first: {"jid", "ids", "ts"}."""
        with self._lock:
            return [dict(r) for r in self._incoming.receipts]

    def delivered(self) -> list[dict[str, Any]]:
        """Every message the server accepted (msg-check), once each, oldest first."""
        with self._lock:
            return [dict(d) for d in self._chats.delivered]

    def history(self, phone: str) -> list[dict[str, Any]]:
        """Every message of one chat as the server keeps it."""
        with self._lock:
            return self._chats.history(phone)

    # ----- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """A JSON-able snapshot: login, the QR shown now, devices, pages, modes, variant, counts."""
        with self._lock:
            now = self._clock()
            shown = self._showing_qr(now)
            idle = [c for c in self._clients.values() if c.status == "idle" and now - c.last_seen <= CLIENT_FRESH_S]
            c = self._counts
            return {
                "logged_in": bool(self._devices),
                "account": {"phone": self.phone},
                "qr": shown[0].qr if shown else None,
                "qr_rotations": shown[0].rotations if shown else None,
                "qr_idle": bool(idle) and not shown,
                "qr_rotate_s": self.qr_rotate_s,
                "qr_max_rotations": self.qr_max_rotations,
                "devices": [
                    {"id": d.id, "token": d.token, "paired_at": d.paired_at, "last_seen": d.last_seen}
                    for d in self._devices.values()
                ],
                "pages": [
                    {"client": cl.id, "status": cl.status, "seen_s_ago": round(now - cl.last_seen, 3)}
                    for cl in self._clients.values()
                ],
                "modes": {k: dict(v) for k, v in self._modes.items()},
                "variant": self._variant,
                "counts": {
                    "delivered": len(self._chats.delivered),
                    "sends": self._chats.sends,
                    "failed": self._chats.failed,
                    "scans": c.scans,
                    "logouts": c.logouts,
                    "qr_shown": c.qr_shown,
                    "chats": len(self._chats),
                    "unread_incoming": self._incoming.unread(),
                },
            }
