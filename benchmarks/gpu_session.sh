#!/usr/bin/env bash
# Everything a GPU session should measure, in one call (9 minutes at most on one H100/H200):
#
#     cp /usr/share/datasets/fashion-mnist/* benchmarks/data/fashion-mnist/   # once, here
#     bash benchmarks/gpu_session.sh OUT          # PYTHON=... to pick the interpreter
#     bash benchmarks/gpu_session.sh OUT --quick  # the same parts on the CPU, in seconds
#
# The GPU machine has no internet: the Fashion-MNIST IDX files travel in
# benchmarks/data/fashion-mnist (git-ignored; name it in the device call's carry).
#
# Default parts (PARTS="env ensemble_speed quality" to choose):
# 1. ensemble_speed.py: --ensemble N for N = 1, 2, 4, 8, 16 at batch 128, fast and wgan-gp:
#    ms per step, member-steps per second, peak memory.        -> OUT/ensemble-speed-cuda.*
# 2. quality_run.py: fast and wgan-gp trained 90 s on Fashion-MNIST, then `wganlab
#    evaluate`; and fast as an ensemble of 8 seeds in the same 90 s (FID mean +- std).
#                                                                    -> OUT/quality.jsonl
# Earlier sessions' parts, each still here (PARTS="gpu_check bench profile loop_speed"):
# gpu_check.py (the CUDA graph against the eager step for every recipe, and --on-nan skip
# in a replayed graph), wganlab bench (seed and wgan-gp, batch 128 and 1024, every variant),
# wganlab bench --profile, and loop_speed.py (real `wganlab train` runs against the bench).
#
# Each part has its own time limit and the script goes on when one fails; OUT/<part>.log
# holds each part's output. Needs a CUDA build of PyTorch and this package's dependencies;
# the package itself is taken from src/.
set -u
out=${1:?usage: bash benchmarks/gpu_session.sh OUT [--quick]}
quick=${2:-}
py=${PYTHON:-python}
parts=${PARTS:-env ensemble_speed quality}
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

wanted() { case " $parts " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
data=benchmarks/data/fashion-mnist

if [ "$quick" = "--quick" ]; then  # every default part, tiny and on the CPU
    wanted env && part env 60 "$py" -c "import torch; print(torch.__version__)"
    wanted ensemble_speed && part ensemble_speed 120 "$py" benchmarks/ensemble_speed.py \
        --quick --device cpu --presets fast --out "$out"
    wanted quality && part quality 120 "$py" benchmarks/quality_run.py --quick --device cpu \
        --ensemble 2 --out "$out"
else
    wanted env && part env 20 "$py" -c "import torch; print(torch.__version__, torch.version.cuda,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA DEVICE')"
    wanted ensemble_speed && part ensemble_speed 120 "$py" benchmarks/ensemble_speed.py \
        --device cuda --members 1 2 4 8 16 --batch-size 128 --out "$out"
    if wanted quality; then
        part quality_fast 125 "$py" benchmarks/quality_run.py --preset fast --seconds 90 \
            --data "$data" --device cuda --out "$out"
        part quality_wgan_gp 125 "$py" benchmarks/quality_run.py --preset wgan-gp \
            --seconds 90 --data "$data" --device cuda --out "$out"
        part quality_fast_x8 145 "$py" benchmarks/quality_run.py --preset fast --seconds 90 \
            --ensemble 8 --n 5000 --data "$data" --device cuda --out "$out"
    fi
    wanted gpu_check && part gpu_check 120 "$py" benchmarks/gpu_check.py --out "$out" \
        --no-bench
    wanted bench && part bench 270 "$py" -m wganlab bench --devices cuda --dataset random \
        --variants all --batch-sizes 128 1024 --repeats 3 --steps 10 \
        --json "$out/bench-cuda.json" --markdown "$out/bench-cuda.md"
    wanted profile && part profile 60 "$py" -m wganlab bench --profile --devices cuda \
        --dataset random --batch-sizes 128 --steps 3 --variants ours ours+channels-last \
        --json "$out/profile-cuda.json" --markdown "$out/profile-cuda.md"
    wanted loop_speed && part loop_speed 90 "$py" benchmarks/loop_speed.py --out "$out" \
        --bench "$out/bench-cuda.json"
fi

if [ -n "$failed" ]; then
    echo "failed or timed out:$failed"
    exit 1
fi
