"""Where the browser's private files live inside the home (no selenium import: light for `doctor` and hygiene)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from continuity.watchdog.instance import Home


def private_driver_path(home: Home) -> Path:
    """The private chromedriver copy (uc patches it in place; the system's one stays untouched)."""
    return home.driver_copy_file


# Chromium puts its SingletonSocket at $TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket; a Unix socket
# path must fit in 108 bytes (sun_path, NUL included), or Chromium cannot start
# ("cannot connect to chrome")..
_SOCKET_SUFFIX = "/org.chromium.Chromium.XXXXXX/SingletonSocket"
_SUN_PATH_MAX = 107


def browser_tmp_dir(home: Home) -> Path:
    """TMPDIR given to the browser, so Chromium's org.chromium.Chromium.* folders stay in the home.

    When the home's path is too long for a Unix socket path, a short per-home folder in the system temp dir
    (or /tmp) is used instead.
    """
    inside = home.session_dir / "tmp"
    if os.name != "posix" or len(os.fsencode(str(inside) + _SOCKET_SUFFIX)) <= _SUN_PATH_MAX:
        return inside
    tag = hashlib.sha256(os.fsencode(str(home.root))).hexdigest()[:12]
    for base in (tempfile.gettempdir(), "/tmp"):
        short = Path(base) / f"continuity-{tag}"
        if len(os.fsencode(str(short) + _SOCKET_SUFFIX)) <= _SUN_PATH_MAX:
            return short
    return Path("/tmp") / f"c-{tag}"  # pragma: no cover - /tmp is always short
