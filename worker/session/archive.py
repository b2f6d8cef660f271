"""The plaintext inside a session backup: a gzip'd tar of the profile's login storage plus a small manifest.

Only `LOGIN_PATHS` are ever packed or unpacked (never caches); unpacking refuses any other entry, even from an
authenticated file.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from .crypto import BackupRejected, Writable

# Profile-relative paths of the login storage. Measured with the simulator (delete the profile, put back only
# these, relaunch -> logged in): Local Storage alone or IndexedDB alone suffices there; real WhatsApp Web keeps
# its keys in IndexedDB and Local Storage together, cookies are encrypted with a key from "Local State".
LOGIN_PATHS = (
    "Local State",
    "Default/Preferences",
    "Default/Local Storage",
    "Default/IndexedDB",
    "Default/Session Storage",
    "Default/Cookies",
    "Default/Cookies-journal",
    "Default/Network/Cookies",
    "Default/Network/Cookies-journal",
)
MANIFEST = "continuity-backup.json"
_SKIP_NAMES = frozenset({"LOCK"})  # LevelDB lock files: Chromium recreates them


def entry_allowed(name: str) -> bool:
    """True for the manifest and for paths inside the login storage (no absolute paths, no "..")."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or ".." in parts:
        return False
    if name == MANIFEST:
        return True
    return any(name == root or name.startswith(root + "/") for root in LOGIN_PATHS)


def pack(dst: Writable, profile: Path, manifest: dict[str, Any], *, mtime: float) -> list[str]:
    """Write the tar.gz of `profile`'s login storage to `dst` (a stream); returns the profile-relative names."""
    files: list[str] = []
    with tarfile.open(fileobj=dst, mode="w|gz") as tar:  # type: ignore[call-overload]
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size, info.mtime = len(data), int(mtime)
        tar.addfile(info, io.BytesIO(data))
        for rel in LOGIN_PATHS:
            files += _add_tree(tar, profile, rel)
    return files


def _add_tree(tar: tarfile.TarFile, profile: Path, rel: str) -> list[str]:
    """Add profile/rel (a file or a folder, recursively, regular files only) to `tar`; returns the names added."""
    top = profile / rel
    if top.is_symlink() or not top.exists():
        return []
    paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file() and not p.is_symlink())
    added = []
    for path in paths:
        if path.name in _SKIP_NAMES:
            continue
        name = path.relative_to(profile).as_posix()
        tar.add(str(path), arcname=name, recursive=False)
        added.append(name)
    return added


def unpack(plain: Any, folder: Path, source: Path) -> dict[str, Any]:
    """Unpack the authenticated tar.gz in `plain` into `folder`; returns the manifest. Raises BackupRejected."""
    manifest: dict[str, Any] | None = None
    try:
        with tarfile.open(fileobj=plain, mode="r:gz") as tar:
            for member in tar:
                if not entry_allowed(member.name) or not (member.isfile() or member.isdir()):
                    raise BackupRejected(source, f"unexpected entry {member.name!r} in the archive")
                if member.name == MANIFEST:
                    handle = tar.extractfile(member)
                    manifest = json.loads(handle.read()) if handle is not None else None
                    continue
                tar.extract(member, folder, filter="data")
    except BackupRejected:
        raise
    except (tarfile.TarError, ValueError, EOFError, OSError) as exc:
        raise BackupRejected(source, f"the archive inside is damaged: {exc}") from exc
    if not isinstance(manifest, dict):
        raise BackupRejected(source, "no manifest in the archive")
    return manifest
