#!/usr/bin/env bash
# What a GPU session should measure, most needed first, in calls of at most 8 minutes on one
# H100/H200 (a session has 15 minutes of device time, machine start included):
#
#     cp /usr/share/datasets/fashion-mnist/* benchmarks/data/fashion-mnist/   # once, here
#     bash benchmarks/gpu_session.sh OUT          # PYTHON=... to pick the interpreter
#     PARTS="ensemble_speed quality" bash benchmarks/gpu_session.sh OUT   # if time is left
#     bash benchmarks/gpu_session.sh OUT --quick  # the default parts on the CPU, tiny
#
# The GPU machine has no internet: the Fashion-MNIST IDX files travel in
# benchmarks/data/fashion-mnist (git-ignored; name it in the device call's carry).
#
# Default parts (PARTS="env augment_check small_data"; 8 minutes at most):
# 1. augment_check: gpu_check.py's "run:" recipes: the CUDA graph of runs built as `wganlab
#    train` builds them (--augment, --xflip, --augment-p auto with p moved between replays, a
#    class-conditional model, an ensemble of 3 with augmentation) against their eager step.
#                                                                  -> OUT/gpu_check.json
# 2. small_data: issue 20's GPU column: Fashion-MNIST with 500 and 2,000 training images,
#    plain against augmented (p = 0.3 at 500; auto with target 0.6 at 2,000), 3 seeds as one
#    ensemble, each for the same SMALL_SECONDS (default 60), then evaluated (10,000 samples
#    per member against the whole test split).                      -> OUT/quality.jsonl
# Second call (PARTS="ensemble_speed quality", 4.5 minutes at most):
# 3. ensemble_speed.py: --ensemble N for N = 1, 2, 4, 8, 16 at batch 128, fast and wgan-gp:
#    ms per step, member-steps per second, peak memory.        -> OUT/ensemble-speed-cuda.*
# 4. quality_run.py: fast trained 90 s on Fashion-MNIST, and fast as an ensemble of 8 seeds
#    in the same 90 s (FID mean +- std; PARTS=quality_wgan_gp adds wgan-gp).
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
first_call="env augment_check small_data"
if [ "$quick" = "--quick" ]; then  # both calls' parts
    parts=${PARTS:-$first_call ensemble_speed quality}
else
    parts=${PARTS:-$first_call}
fi
small_seconds=${SMALL_SECONDS:-60}
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
aug="translation,cutout,colour"

small_data() {  # small_data SMALL BIG ARGS...: the four runs; one failing stops no other
    local small=$1 big=$2 rc=0
    shift 2
    "$py" benchmarks/quality_run.py --name "$small-plain" "$@" -- --max-images "$small" || rc=1
    "$py" benchmarks/quality_run.py --name "$small-augment" "$@" -- --max-images "$small" \
        --augment "$aug" --augment-p 0.3 || rc=1
    "$py" benchmarks/quality_run.py --name "$big-plain" "$@" -- --max-images "$big" || rc=1
    "$py" benchmarks/quality_run.py --name "$big-auto06" "$@" -- --max-images "$big" \
        --augment "$aug" --augment-p auto --augment-target 0.6 || rc=1
    return $rc
}
export -f small_data  # `timeout` runs it in a bash of its own
export py aug

if [ "$quick" = "--quick" ]; then  # every part of both calls, tiny and on the CPU
    wanted env && part env 60 "$py" -c "import torch; print(torch.__version__)"
    wanted augment_check && part augment_check 300 "$py" benchmarks/gpu_check.py --device cpu \
        --quick --only "run:" --no-bench --out "$out"
    # stand-in data of 256 images: 100 and 200 of them stand for 500 and 2,000
    wanted small_data && part small_data 300 bash -c 'small_data "$@"' - 100 200 --quick --device cpu \
        --ensemble 3 --out "$out"
    wanted ensemble_speed && part ensemble_speed 120 "$py" benchmarks/ensemble_speed.py \
        --quick --device cpu --presets fast --out "$out"
    wanted quality && part quality 120 "$py" benchmarks/quality_run.py --quick --device cpu \
        --ensemble 2 --out "$out"
else
    wanted env && part env 20 "$py" -c "import torch; print(torch.__version__, torch.version.cuda,
torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO CUDA DEVICE')"
    wanted augment_check && part augment_check 60 "$py" benchmarks/gpu_check.py --only "run:" \
        --no-bench --out "$out"
    wanted small_data && part small_data $((4 * (small_seconds + 35))) bash -c 'small_data "$@"' - 500 2000 \
        --seconds "$small_seconds" --ensemble 3 --data "$data" --device cuda --out "$out"
    wanted ensemble_speed && part ensemble_speed 120 "$py" benchmarks/ensemble_speed.py \
        --device cuda --members 1 2 4 8 16 --batch-size 128 --out "$out"
    if wanted quality; then
        part quality_fast 125 "$py" benchmarks/quality_run.py --preset fast --seconds 90 \
            --data "$data" --device cuda --out "$out"
        part quality_fast_x8 145 "$py" benchmarks/quality_run.py --preset fast --seconds 90 \
            --ensemble 8 --n 5000 --data "$data" --device cuda --out "$out"
    fi
    wanted quality_wgan_gp && part quality_wgan_gp 125 "$py" benchmarks/quality_run.py \
        --preset wgan-gp --seconds 90 --data "$data" --device cuda --out "$out"
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
