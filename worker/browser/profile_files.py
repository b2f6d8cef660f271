"""Profile files: cache trim (never the login storage), corrupt JSON repair, private temp and folder modes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

from continuity.watchdog.instance import EventLog, directory_size

logger = logging.getLogger("continuity.browser")

# Caches Chromium rebuilds by itself, relative to a profile folder ("Default", "Profile 1") or user-data-dir.
CACHE_DIRS = (
    "Cache",
    "Code Cache",
    "GPUCache",
    "DawnCache",
    "DawnGraphiteCache",
    "DawnWebGPUCache",
    "GrShaderCache",
    "GraphiteDawnCache",
    "ShaderCache",
    "GPUPersistentCache",
    "component_crx_cache",
    "Service Worker/CacheStorage",
    "Service Worker/ScriptCache",
)
# The login lives here (IndexedDB with its blobs, Local Storage, cookies, service worker registrations in
# "Service Worker/Database"): no path with one of these parts is ever removed, whatever the size.
PROTECTED_NAMES = frozenset({"IndexedDB", "blob_storage", "Local Storage", "Session Storage", "Cookies", "Database"})
_JSON_FILES_TOP = ("Local State",)
_JSON_FILES_PROFILE = ("Preferences", "Secure Preferences")


def record(events: EventLog | None, kind: str, **fields: object) -> None:
    """Log one hygiene action and record it as an event (when an EventLog is given)."""
    logger.info("%s %s", kind, " ".join(f"{k}={v}" for k, v in fields.items()))
    if events is not None:
        events.emit(kind, **fields)


def _profile_folders(profile_dir: Path) -> list[Path]:
    folders = [profile_dir]
    with contextlib.suppress(OSError):
        for entry in profile_dir.iterdir():
            named = entry.name in ("Default", "Guest Profile", "System Profile") or entry.name.startswith("Profile ")
            if named and entry.is_dir() and not entry.is_symlink():
                folders.append(entry)
    return folders


def trim_profile(profile_dir: Path, max_mb: float, *, events: EventLog | None = None) -> int:
    """When the profile is over `max_mb` MiB, clear the caches Chromium rebuilds; never the login storage.

    Returns the bytes freed (0 when under the limit).
    """
    limit = int(max_mb * 1024 * 1024)
    before = directory_size(profile_dir)
    if before <= limit:
        return 0
    cleared: list[str] = []
    for folder in _profile_folders(profile_dir):
        for rel in CACHE_DIRS:
            target = folder / rel
            if any(part in PROTECTED_NAMES for part in Path(rel).parts) or not target.is_dir() or target.is_symlink():
                continue
            shutil.rmtree(target, ignore_errors=True)
            cleared.append(str(target.relative_to(profile_dir)))
    after = directory_size(profile_dir)
    record(
        events,
        "profile_trimmed",
        before_mb=round(before / 2**20, 1),
        after_mb=round(after / 2**20, 1),
        cleared=cleared,
    )
    if after > limit:
        record(
            events,
            "profile_over_limit",
            size_mb=round(after / 2**20, 1),
            max_mb=max_mb,
            hint="login storage is never trimmed; raise whatsapp.session_max_mb or clear the session",
        )
    return max(0, before - after)


def _is_valid_json_object(path: Path) -> bool:
    try:
        return isinstance(json.loads(path.read_bytes().decode("utf-8")), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def repair_profile_files(profile_dir: Path, *, events: EventLog | None = None) -> list[str]:
    """Move corrupt `Local State` / `Preferences` JSON aside (`<name>.corrupt-<unix time>`) so Chromium
    recreates them; nothing is deleted. Returns the profile-relative paths moved."""
    candidates = [profile_dir / name for name in _JSON_FILES_TOP]
    candidates += [folder / name for folder in _profile_folders(profile_dir)[1:] for name in _JSON_FILES_PROFILE]
    moved = []
    for path in candidates:
        if not path.is_file() or _is_valid_json_object(path):
            continue
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        os.replace(path, aside)
        moved.append(str(path.relative_to(profile_dir)))
        record(events, "profile_file_repaired", file=str(path.relative_to(profile_dir)), moved_to=aside.name)
    return moved


def clear_browser_temp(tmp_dir: Path, *, events: EventLog | None = None) -> int:
    """Remove Chromium's `org.chromium.Chromium.*` / `.com.google.Chrome.*` folders from the browser's private
    TMPDIR; call only when no browser of this home runs. Returns the number removed."""
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in tmp_dir.iterdir():
            if entry.name.startswith(("org.chromium.Chromium.", ".org.chromium.Chromium.", ".com.google.Chrome.")):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
    if removed:
        record(events, "browser_temp_cleared", count=removed)
    return removed


def ensure_private_dir(path: Path) -> None:
    """Create `path` (and parents) and make it 0700 on POSIX: the profile holds the login."""
    path.mkdir(parents=True, exist_ok=True)
    if os.name == "posix":
        os.chmod(path, 0o700)
