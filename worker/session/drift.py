"""What the probes say about the page itself, for when WhatsApp ships a new build: its version, a page showing
none of the known screens (`unrecognized`), a popup nobody knows, and roles found only through a fallback.

An unrecognized page gets one redacted diagnostic (logs/diagnostics/: the DOM outline with every text, title,
label and value replaced by its length; a screenshot only with `diagnostic_screenshots`), an event and an
alert, and slow recovery: at most one browser restart per `UNRECOGNIZED_RESTART_EVERY_S`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from continuity.watchdog.instance import (
    EventLog,
    Home,
    WhatsAppConfig,
    read_json_or_none,
    write_bytes_atomic,
    write_json_atomic,
)

from .selectors import PROBE_ROLES

logger = logging.getLogger("continuity.whatsapp")

UNRECOGNIZED_RESTART_EVERY_S = 600.0
POPUP_PROBES_TO_REPORT = 3  # an unknown popup still there after this many probes is reported
MAX_DIAGNOSTICS = 20

# The DOM as an outline: tag#id.classes [role=..] [data-icon=..] [data-tab=..] and the *names* of the other data-*
# and aria-* attributes with the length of their values; text nodes as their length. Nothing a person wrote.
OUTLINE_SCRIPT = """
const KEEP = new Set(['role', 'data-icon', 'data-tab', 'data-testid', 'data-animate-modal-popup']);
const out = [];
function walk(el, depth) {
  if (out.length >= 4000 || depth > 60) return;
  let line = '  '.repeat(depth) + el.tagName.toLowerCase();
  if (el.id) line += '#' + el.id;
  const cls = typeof el.className === 'string' ? el.className.trim() : '';
  if (cls) line += '.' + cls.split(/\\s+/).join('.');
  for (const a of Array.from(el.attributes)) {
    const n = a.name;
    if (n === 'id' || n === 'class') continue;
    if (KEEP.has(n)) line += ' [' + n + '=' + a.value.slice(0, 60) + ']';
    else if (n.startsWith('data-') || n.startsWith('aria-') || n === 'title' || n === 'value' || n === 'alt'
             || n === 'placeholder' || n === 'contenteditable' || n === 'href' || n === 'src')
      line += ' [' + n + ' <' + a.value.length + ' chars>]';
  }
  if ('value' in el && typeof el.value === 'string' && el.value) line += ' (value <' + el.value.length + ' chars>)';
  let text = 0;
  for (const c of el.childNodes) { if (c.nodeType === 3) text += c.data.trim().length; }
  if (text) line += ' (text <' + text + ' chars>)';
  out.push(line);
  for (const c of el.children) walk(c, depth + 1);
}
walk(document.documentElement, 0);
return out.join('\\n');
"""


class PageWatch:
    """Page-level observations of one session (times: monotonic `clock`, wall-clock `wall_clock`, seconds)."""

    def __init__(
        self,
        home: Home,
        wa: WhatsAppConfig,
        *,
        events: EventLog,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.home, self.wa, self.events = home, wa, events
        self._clock, self._wall = clock, wall_clock
        self.version: str | None = None
        self.unrecognized_since: float | None = None
        self.reported = False  # the current unrecognized episode has its event and diagnostic
        self.last_restart_at: float | None = None
        self.unknown_popup: list[str] | None = None
        self._popup_key: tuple[str, ...] | None = None
        self._popup_seen = 0

    # -- version ------------------------------------------------------------------------------------------
    @property
    def version_file(self) -> Path:
        return self.home.web_version_file

    def observe_version(self, version: Any) -> None:
        """Record WhatsApp Web's version; a change (also across restarts) is an event."""
        if not isinstance(version, str) or not version or version == self.version:
            return
        known = read_json_or_none(self.version_file)
        old = known.get("version") if isinstance(known, dict) else None
        self.version = version
        if old == version:
            return
        with contextlib.suppress(OSError):
            write_json_atomic(self.version_file, {"version": version, "seen_at": self._wall()})
        if old is not None:
            logger.warning("WhatsApp Web changed from version %s to %s", old, version)
            self.events.emit("whatsapp_web_version_changed", old=old, new=version)

    # -- unrecognized pages -------------------------------------------------------------------------------
    def unrecognized_for_long(self) -> bool:
        """Called while the page shows no known screen; True once that lasted `unrecognized_after` seconds."""
        now = self._clock()
        if self.unrecognized_since is None:
            self.unrecognized_since = now
        return now - self.unrecognized_since >= self.wa.unrecognized_after

    def recognized(self) -> None:
        """The page shows a known screen again: the episode is over."""
        if self.reported:
            self.events.emit("page_recognized", after_s=round(self._clock() - (self.unrecognized_since or 0.0), 1))
        self.unrecognized_since, self.reported = None, False

    def report_unrecognized(self, page: Any, markers: dict[str, Any]) -> None:
        """Once per episode: the event (roles matched and not, version), a redacted diagnostic, maybe a screenshot."""
        if self.reported:
            return
        self.reported = True
        seen = {role: page.matches.get(role, -1) for role in PROBE_ROLES} if page is not None else {}
        matched = sorted(role for role, index in seen.items() if index >= 0)
        missing = sorted(role for role in PROBE_ROLES if role not in matched)
        path = self._write_diagnostic(page, markers, matched, missing)
        logger.error(
            "WhatsApp Web shows a page this version does not recognize (version %s); roles found: %s; see %s",
            self.version or "unknown",
            ", ".join(matched) or "none",
            path,
        )
        self.events.emit(
            "page_unrecognized",
            version=self.version,
            roles_matched=matched,
            roles_missing=missing,
            diagnostic=str(path) if path else None,
            url_path=_url_path(markers.get("url")),
        )

    def may_restart(self) -> bool:
        """At most one browser restart per UNRECOGNIZED_RESTART_EVERY_S while the page stays unrecognized."""
        now = self._clock()
        if self.last_restart_at is not None and now - self.last_restart_at < UNRECOGNIZED_RESTART_EVERY_S:
            return False
        self.last_restart_at = now
        return True

    def _write_diagnostic(
        self, page: Any, markers: dict[str, Any], matched: list[str], missing: list[str]
    ) -> Path | None:
        folder = self.home.diagnostics_dir
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self._wall()))
        path = folder / f"unrecognized-{stamp}.txt"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            outline = page.run(OUTLINE_SCRIPT) if page is not None else ""
            head = (
                f"WhatsApp Web page not recognized at {stamp}\nversion: {self.version or 'unknown'}\n"
                f"url path: {_url_path(markers.get('url'))}\nready_state: {markers.get('ready_state')}\n"
                f"roles matched: {', '.join(matched) or 'none'}\nroles missing: {', '.join(missing)}\n"
                "every text, title, label and value below is replaced by its length\n\n"
            )
            write_bytes_atomic(path, (head + str(outline or "")).encode("utf-8"), mode=0o600)
            if self.wa.diagnostic_screenshots and page is not None:
                page.screenshot(path.with_suffix(".png"))
            _prune(folder)
            return path
        except Exception as exc:  # a diagnostic must never stop the session
            logger.warning("cannot write the page diagnostic: %s", exc)
            return None

    # -- popups -------------------------------------------------------------------------------------------
    def observe_popup(self, markers: dict[str, Any], *, known: bool) -> None:
        """A popup with buttons that is none we know (not the conflict) is reported, never clicked."""
        labels = markers.get("popup_labels") or []
        if known or not labels:
            self._popup_key, self._popup_seen, self.unknown_popup = None, 0, None
            return
        key = tuple(str(label) for label in labels)
        self._popup_seen = self._popup_seen + 1 if key == self._popup_key else 1
        self._popup_key = key
        if self._popup_seen == POPUP_PROBES_TO_REPORT:
            self.unknown_popup = list(key)
            logger.warning("an unknown popup is open (buttons %s); not clicking it", list(key))
            self.events.emit("popup_unknown", buttons=list(key), text_chars=len(markers.get("popup_text") or ""))

    def status(self, page: Any) -> dict[str, Any]:
        """For the heartbeat: version, roles working only through a fallback or not at all, an unknown popup."""
        report = page.role_report() if page is not None else {}
        return {
            "web_version": self.version,
            "fallback_roles": {r: d for r, d in report.items() if d.startswith("fallback")},
            "bad_selectors": sorted(page.bad_selectors) if page is not None else [],
            "unknown_popup": self.unknown_popup,
            "unrecognized_for_s": None
            if self.unrecognized_since is None
            else round(self._clock() - self.unrecognized_since, 1),
        }


def _url_path(url: Any) -> str:
    """The URL without its query (a /send?phone=...&text=... holds a number and a message)."""
    return str(url or "").split("?", 1)[0]


def _prune(folder: Path) -> None:
    files = sorted(folder.glob("unrecognized-*"), key=lambda p: p.stat().st_mtime)
    for old in files[: max(0, len(files) - MAX_DIAGNOSTICS * 2)]:
        with contextlib.suppress(OSError):
            os.unlink(old)
