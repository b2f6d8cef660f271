"""Finding the real Chromium binary and chromedriver, and their versions (runs the real executables)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from continuity.worker.browser import (
    BrowserNotFound,
    find_browser,
    find_driver,
    read_version,
    real_browser_binary,
)

pytestmark = pytest.mark.browser

DEBIAN_WRAPPER = Path("/usr/bin/chromium")
debian_only = pytest.mark.skipif(not DEBIAN_WRAPPER.is_file(), reason="Debian chromium package not installed")


@debian_only
def test_debian_wrapper_resolves_to_the_real_binary() -> None:
    """/usr/bin/chromium is a shell script; the launcher uses /usr/lib/chromium/chromium behind it."""
    assert DEBIAN_WRAPPER.read_bytes()[:2] == b"#!"
    assert real_browser_binary(DEBIAN_WRAPPER) == Path("/usr/lib/chromium/chromium")


@debian_only
def test_find_browser_and_driver_read_matching_versions() -> None:
    """Discovery finds the real Chromium and chromedriver and reads the same major version from both."""
    browser, driver = find_browser(), find_driver()
    assert browser.path.read_bytes()[:4] == b"\x7fELF"
    assert browser.major == driver.major >= 100
    assert read_version(browser.path) == browser.version


def test_configured_browser_path_that_does_not_exist_names_the_key(tmp_path: Path) -> None:
    """whatsapp.browser_path pointing nowhere raises BrowserNotFound naming the config key."""
    with pytest.raises(BrowserNotFound, match=r"whatsapp\.browser_path .* does not exist"):
        find_browser(str(tmp_path / "missing"))


def test_configured_driver_path_that_is_not_executable_names_the_fix(tmp_path: Path) -> None:
    """A driver_path that is a plain file (not executable) is refused with the chmod fix."""
    plain = tmp_path / "chromedriver"
    plain.write_text("not a program")
    plain.chmod(0o644)
    with pytest.raises(BrowserNotFound, match=r"whatsapp\.driver_path .* not executable"):
        find_driver(str(plain))


def test_configured_program_without_a_version_is_refused(tmp_path: Path) -> None:
    """An executable that prints no version (e.g. the wrong program) is refused, not guessed."""
    fake = tmp_path / "chromedriver"
    fake.write_text("#!/bin/sh\necho hello\n")
    fake.chmod(0o755)
    with pytest.raises(BrowserNotFound, match="printed no version"):
        find_driver(str(fake))


def test_wrapper_script_without_a_real_binary_is_refused(tmp_path: Path) -> None:
    """A shell-script launcher whose real binary cannot be found is refused with the fix named."""
    wrapper = tmp_path / "chromium"
    wrapper.write_text('#!/bin/sh\nLIBDIR=/nonexistent/$APPNAME\nAPPNAME=nothing\nexec $LIBDIR/x "$@"\n')
    wrapper.chmod(0o755)
    with pytest.raises(BrowserNotFound, match=r"whatsapp\.browser_path"):
        real_browser_binary(wrapper)


@pytest.mark.skipif(shutil.which("chromedriver") is None, reason="chromedriver not installed")
def test_symlinked_driver_is_resolved(tmp_path: Path) -> None:
    """A driver_path that is a symlink resolves to the file it points at (the one to copy)."""
    link = tmp_path / "cd"
    target = Path(str(shutil.which("chromedriver"))).resolve()
    link.symlink_to(target)
    assert find_driver(str(link)).path == target
