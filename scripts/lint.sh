#!/usr/bin/env bash
# ruff (lint + format check) and mypy --strict over watchdog/, worker/ and devtools/ (run scripts/setup.sh --dev
# first), for Linux and again for Windows (--platform win32): code that touches POSIX-only names (signal.SIGKILL,
# os.killpg, select.poll, ...) must sit behind a `sys.platform` check mypy can see, or it would crash there.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/typecheck/continuity
ln -sfn ../../../watchdog build/typecheck/continuity/watchdog
ln -sfn ../../../worker build/typecheck/continuity/worker
ln -sfn ../../../devtools build/typecheck/continuity/devtools
.venv/bin/ruff check watchdog worker devtools tests scripts
.venv/bin/ruff format --check watchdog worker devtools tests scripts
.venv/bin/mypy -p continuity.watchdog -p continuity.worker -p continuity.devtools
.venv/bin/mypy --platform win32 --cache-dir .mypy_cache/win32 -p continuity.watchdog -p continuity.worker -p continuity.devtools
