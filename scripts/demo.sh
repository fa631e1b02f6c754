#!/usr/bin/env bash
# Install wganlab into .venv and train the cpu-demo preset on Fashion-MNIST (8 minutes on
# 2 CPU cores), offline. Extra arguments go to `wganlab train`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh ""  # no extras (and not this script's arguments)
exec .venv/bin/wganlab train --preset cpu-demo --dataset fashion-mnist "$@"
