#!/usr/bin/env bash
# Set up Continuity in ./.venv (Linux). With --dev, also the test and lint tools.
# On Debian/Ubuntu it installs Chromium and ChromeDriver with apt-get when they are missing (sudo when not root).
set -euo pipefail
cd "$(dirname "$0")/.."

# Users get a regular install; --dev an editable one (its import hook costs each process ~15 ms and ~1 MB).
install_args=(.)
[ "${1:-}" = "--dev" ] && install_args=(--editable ".[dev]")
python=${PYTHON:-python3}

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: Continuity needs Python 3.11 or newer (found: $("$python" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
    exit 1
fi

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo_cmd="sudo"
apt_install() {
    if command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing $* with apt-get"
        $sudo_cmd apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
    else
        echo "setup: please install $* with your package manager" >&2
        return 1
    fi
}

if ! command -v chromedriver >/dev/null 2>&1 || ! { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; }; then
    apt_install chromium chromium-driver || echo "setup: continuing without a browser (the watchdog works; WhatsApp needs Chromium)" >&2
fi

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv 2>/dev/null || { apt_install python3-venv && rm -rf .venv && "$python" -m venv .venv; }
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "${install_args[@]}"
echo "setup: done. Run: .venv/bin/continuity --help"
