#!/usr/bin/env bash
# Install wganlab with its test extras into .venv and run the test suite (CPU, minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh test
# Headless Chromium renders report.html in the report test.
command -v chromium >/dev/null 2>&1 || apt_install chromium
# Idle OpenMP threads sleep instead of spinning: subprocess tests share the 2 cores.
export OMP_WAIT_POLICY=PASSIVE
exec .venv/bin/python -m pytest "$@"
