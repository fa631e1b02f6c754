#!/usr/bin/env bash
# Everything a GPU session should measure, in one call (about 5-8 minutes on one H100/H200):
#
#     bash benchmarks/gpu_session.sh OUT          # PYTHON=... to pick the interpreter
#
# 1. gpu_check.py: the CUDA graph against the eager step for every recipe (the "+kernels"
#    recipes with channels_last), and --on-nan skip inside a replayed graph. -> OUT/gpu_check.*
# 2. wganlab bench: seed and wgan-gp, batch 128 and 1024, the plain eager baseline, ours and
#    every variant row (unfused, eager, no cudnn.benchmark, channels_last, bf16).
#                                                                          -> OUT/bench-cuda.*
# 3. wganlab bench --profile: the kernels with the most GPU time in a step at batch 128,
#    ours and ours with every maths-preserving switch on.                  -> OUT/profile-cuda.*
# 4. loop_speed.py: real `wganlab train` runs (600 steps each, stand-in Fashion-MNIST files)
#    against the bench's step: the loop's own cost.                        -> OUT/loop-speed.json
#
# Each part has its own time limit (9 minutes in all at most) and the script goes on when one
# fails; OUT/<part>.log holds each part's output. Needs a CUDA build of PyTorch and this
# package's dependencies; the package itself is taken from src/.
set -u
out=${1:?usage: bash benchmarks/gpu_session.sh OUT}
py=${PYTHON:-python}
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$out"
failed=""

part() {  # part NAME SECONDS COMMAND...: one part under a time limit; log it and go on
    local name=$1 limit=$2 start=$SECONDS rc
    shift 2
    echo "== $name (at most ${limit} s)"
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    echo "   exit $rc after $((SECONDS - start)) s"
    tail -n 30 "$out/$name.log"
    [ "$rc" -eq 0 ] || failed="$failed $name"
}

part env 30 "$py" -c "import torch; print(torch.__version__, torch.version.cuda,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA DEVICE')"
part gpu_check 120 "$py" benchmarks/gpu_check.py --out "$out" --no-bench
part bench 270 "$py" -m wganlab bench --devices cuda --dataset random --variants all \
    --batch-sizes 128 1024 --repeats 3 --steps 10 \
    --json "$out/bench-cuda.json" --markdown "$out/bench-cuda.md"
part profile 60 "$py" -m wganlab bench --profile --devices cuda --dataset random \
    --batch-sizes 128 --steps 3 --variants ours ours+channels-last \
    --json "$out/profile-cuda.json" --markdown "$out/profile-cuda.md"
part loop_speed 90 "$py" benchmarks/loop_speed.py --out "$out" --bench "$out/bench-cuda.json"

if [ -n "$failed" ]; then
    echo "failed or timed out:$failed"
    exit 1
fi
