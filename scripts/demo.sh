#!/usr/bin/env bash
# Install wganlab into .venv and train the `fast` preset on Fashion-MNIST for 8 minutes (2 CPU
# cores), offline, evaluating FID as it goes (evaluation time is not counted as training time).
# Extra arguments go to `wganlab train` and win over these, e.g. --minutes 2.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh ""  # no extras (and not this script's arguments)
exec .venv/bin/wganlab train --preset fast --dataset fashion-mnist --minutes 8 \
    --eval-every 250 --eval-n 2000 "$@"
