#!/usr/bin/env bash
# ruff (lint + format check) and mypy --strict over watchdog/ and worker/ (run scripts/setup.sh --dev first).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build/typecheck/continuity
ln -sfn ../../../watchdog build/typecheck/continuity/watchdog
ln -sfn ../../../worker build/typecheck/continuity/worker
.venv/bin/ruff check watchdog worker tests scripts
.venv/bin/ruff format --check watchdog worker tests scripts
.venv/bin/mypy -p continuity.watchdog -p continuity.worker
