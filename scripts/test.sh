#!/usr/bin/env bash
# Install wganlab with its test extras into .venv and run the test suite (CPU, minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh test
# Headless Chromium renders report.html in the report test.
command -v chromium >/dev/null 2>&1 || apt_install chromium
# Idle OpenMP threads sleep instead of spinning: subprocess tests share the 2 cores.
export OMP_WAIT_POLICY=PASSIVE
# One worker a core (pytest-xdist), one file a worker so module fixtures are built once,
# the files with the most slow tests handed out first (tests/conftest.py orders them);
# `-n 0` after the script's name runs everything in this process.
exec .venv/bin/python -m pytest -n auto --dist loadfile --no-loadscope-reorder "$@"
