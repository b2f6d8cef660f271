"""Find the real Chromium binary and chromedriver, and read their major versions (no selenium import)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("continuity.browser")

_VERSION_TIMEOUT_S = 15.0
_VERSION_RE = re.compile(r"(\d+)\.(\d+)\.(\d+)\.(\d+)")

# Names searched on PATH, most specific first.
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_DRIVER_NAMES = ("chromedriver",)

# Where a shell-script launcher's real binary lives (Debian/Ubuntu packages, snap-less installs).
_REAL_BINARY_CANDIDATES = (
    "/usr/lib/chromium/chromium",
    "/usr/lib/chromium-browser/chromium-browser",
    "/usr/lib64/chromium-browser/chromium-browser",
    "/opt/google/chrome/chrome",
)


class BrowserNotFound(FileNotFoundError):
    """No usable Chromium/Chrome binary or chromedriver was found (the message names the fix)."""


@dataclass(frozen=True)
class Executable:
    """One found executable and its version as printed by `--version`."""

    path: Path
    version: str  # "156.0.8078.79"

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def _platform_browser_paths() -> list[Path]:
    if sys.platform == "win32":
        roots = [os.environ.get(k, "") for k in ("PROGRAMFILES", "PROGRAMFILES(X86)", "LOCALAPPDATA")]
        subpaths = ("Google/Chrome/Application/chrome.exe", "Chromium/Application/chrome.exe")
        return [Path(root) / sub for root in roots if root for sub in subpaths]
    if sys.platform == "darwin":
        return [
            Path("/Applications/Chromium.app/Contents/MacOS/Chromium"),
            Path("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"),
            Path.home() / "Applications/Chromium.app/Contents/MacOS/Chromium",
        ]
    return [Path(p) for p in _REAL_BINARY_CANDIDATES]


def _is_script(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(2) == b"#!"
    except OSError:
        return False


def real_browser_binary(path: Path) -> Path:
    """The ELF/PE binary behind `path`: symlinks resolved, a shell-script wrapper replaced by the real binary.

    The Debian /usr/bin/chromium wrapper dies on SIGPIPE under undetected-chromedriver; the binary does not.
    """
    resolved = path.resolve()
    if not _is_script(resolved):
        return resolved
    text = resolved.read_text(encoding="utf-8", errors="replace")
    reals: list[Path] = []
    libdir = re.search(r"^LIBDIR=(\S+)", text, re.MULTILINE)
    appname = re.search(r"^APPNAME=(\S+)", text, re.MULTILINE)
    if libdir and appname:  # Debian: LIBDIR=/usr/lib/$APPNAME, APPNAME=chromium
        reals.append(Path(libdir.group(1).replace("$APPNAME", appname.group(1))) / appname.group(1))
    reals += [Path(candidate) for candidate in _REAL_BINARY_CANDIDATES if candidate in text]
    for real in reals:
        if real.is_file() and not _is_script(real):
            return real
    raise BrowserNotFound(
        f"{path} is a shell-script launcher and its real binary was not found; "
        "set whatsapp.browser_path in continuity.toml to the Chromium binary itself"
    )


def read_version(path: Path) -> str:
    """The version printed by `path --version` (e.g. "156.0.8078.79"); OSError/ValueError when unreadable."""
    if sys.platform == "win32" and path.name.lower() == "chrome.exe":
        return _windows_chrome_version(path)
    completed = subprocess.run(
        [str(path), "--version"],
        capture_output=True,
        text=True,
        timeout=_VERSION_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    match = _VERSION_RE.search(completed.stdout + completed.stderr)
    if not match:
        raise ValueError(f"{path} --version printed no version: {(completed.stdout + completed.stderr).strip()!r}")
    return match.group(0)


def _windows_chrome_version(path: Path) -> str:  # pragma: no cover - Windows only
    # chrome.exe --version prints nothing on Windows; the version is the name of a folder beside it.
    versions = sorted((p.name for p in path.parent.iterdir() if _VERSION_RE.fullmatch(p.name)), reverse=True)
    if not versions:
        raise ValueError(f"no version folder beside {path}")
    return versions[0]


def _configured(raw: str, key: str) -> Path | None:
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_file():
        raise BrowserNotFound(f"whatsapp.{key} = {raw!r} does not exist; fix or empty it in continuity.toml")
    if not os.access(path, os.X_OK):
        raise BrowserNotFound(f"whatsapp.{key} = {raw!r} is not executable; chmod +x it or fix continuity.toml")
    return path


def find_browser(browser_path: str = "") -> Executable:
    """The real Chromium/Chrome binary: `browser_path` when set, else PATH and the platform's usual places."""
    configured = _configured(browser_path, "browser_path")
    candidates: list[Path] = [configured] if configured else []
    if not configured:
        candidates += [Path(found) for name in _BROWSER_NAMES if (found := shutil.which(name))]
        candidates += [p for p in _platform_browser_paths() if p.is_file()]
    usable = _first_usable(candidates, real_browser_binary, key="browser_path", configured=browser_path)
    if usable is None:
        raise BrowserNotFound(
            "Chromium not found; install it (Debian/Ubuntu: apt-get install chromium chromium-driver) "
            "or set whatsapp.browser_path in continuity.toml"
        )
    return usable


def find_driver(driver_path: str = "") -> Executable:
    """The system chromedriver: `driver_path` when set, else PATH and the usual places."""
    configured = _configured(driver_path, "driver_path")
    candidates: list[Path] = [configured] if configured else []
    if not configured:
        exe = "chromedriver.exe" if sys.platform == "win32" else "chromedriver"
        candidates += [Path(found) for name in _DRIVER_NAMES if (found := shutil.which(name))]
        candidates += [p for p in (Path("/usr/lib/chromium") / exe, Path("/usr/local/bin") / exe) if p.is_file()]
    usable = _first_usable(candidates, Path.resolve, key="driver_path", configured=driver_path)
    if usable is None:
        raise BrowserNotFound(
            "chromedriver not found; install it (Debian/Ubuntu: apt-get install chromium-driver) "
            "or set whatsapp.driver_path in continuity.toml"
        )
    return usable


def _first_usable(
    candidates: list[Path], real_path: Callable[[Path], Path], *, key: str, configured: str
) -> Executable | None:
    """The first candidate whose real path answers --version; a configured one (`whatsapp.<key>`) that does not
    is an error, not a reason to look elsewhere."""
    for candidate in candidates:
        try:
            real = real_path(candidate)
            return Executable(real, read_version(real))
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            if configured:
                raise BrowserNotFound(f"whatsapp.{key} = {configured!r} is not usable: {exc}") from exc
            logger.debug("%s candidate %s not usable: %s", key, candidate, exc)
    return None


def env_flag(name: str, environ: dict[str, str] | None = None) -> bool:
    """True when the environment variable `name` is "1", "true" or "yes" (any case)."""
    env = os.environ if environ is None else environ
    return env.get(name, "").strip().lower() in ("1", "true", "yes")


def missing_display(environ: dict[str, str] | None = None, platform: str = sys.platform) -> str | None:
    """Why a windowed Chromium cannot start here (Linux/BSD with neither DISPLAY nor WAYLAND_DISPLAY), or None.

    Without a display Chromium exits at once and chromedriver waits 60 s for it ("chrome not reachable"), so
    the launcher runs it headless instead; the QR is then scanned from `continuity whatsapp qr`."""
    env = os.environ if environ is None else environ
    if platform in ("win32", "cygwin", "darwin"):
        return None
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return None
    return "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
