"""Bad-input pass: a hostile user's inputs to every command, run in-process; each classified.

    clean   non-zero exit, one line on stderr, no traceback: the input was refused and named
    ok      exit 0 for one of the few sane controls mixed in
    DEFECT  a traceback, a refused good input, more than one line, or a bad input accepted

    python audit/bad_inputs.py [--out DIR]

Prints a tally and every defect; writes DIR/bad_inputs.json. The property tests
(tests/property) draw such inputs at random; this list is the fixed, readable counterpart.
"""
# ruff: noqa: E501  (one case a line reads best)

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import traceback
from pathlib import Path

ARGS = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ARGS.add_argument("--out", type=Path, default=Path("/tmp/wganlab-bad-inputs"))
W = ARGS.parse_args().out
W.mkdir(parents=True, exist_ok=True)
os.environ["WGANLAB_DATA"] = str(W / "cache")  # nothing cached: data lookups really search
os.environ["WGANLAB_MIRROR"] = "http://127.0.0.1:9/"  # a download would fail fast, offline
os.environ["HOME"] = str(W / "home")  # `~` cases write here, not into the real home

import torch  # noqa: E402

from wganlab.cli import main  # noqa: E402

torch.set_num_threads(1)
TINY = ["--dataset", "synthetic", "--batch-size", "8", "--g-filters", "8", "--c-filters", "4",
        "--no-progress"]
RUN = W / "run"
if not (RUN / "config.json").exists():
    assert main(["train", "--steps", "1", "--out", str(RUN), *TINY]) == 0

CASES: list[tuple[list[str], bool | None, dict]] = []  # (argv, should be refused, checks)


def bad(*argv, **checks):
    CASES.append(([str(a) for a in argv], True, checks))


def good(*argv, **checks):
    CASES.append(([str(a) for a in argv], False, checks))


def either(*argv, **checks):
    """A damaged file a command may read past (with a warning) or refuse: no traceback."""
    CASES.append(([str(a) for a in argv], None, checks))


# every train flag, out of its range or of the wrong kind (--dry-run: validated, not run)
DRY = ["train", "--dry-run", "--out", str(W / "dry")]

for flag, vals in {
    "--z-dim": ["-1", "0", "1e3", "x", "100000000"], "--g-filters": ["0", "-4", "3", "1000000000"],
    "--c-filters": ["0", "-1", "1000000000"], "--n-blocks": ["-1", "40", "100"],
    "--dropout": ["1", "-0.1", "nan", "2"], "--slope": ["-1", "50", "inf"],
    "--bn-momentum": ["-1", "2", "nan"], "--bn-eps": ["-1", "0", "1e9"],
    "--image-shape": ["1,28", "2,28,28", "1,0,28", "1,-28,28", "1,28,28,28", "a,b,c", "1,100000,100000", "1,27,27"],
    "--critic-norm": ["foo"], "--weight-init": ["he"], "--loss": ["l2"],
    "--n-critic": ["0", "-3", "1000000"], "--batch-size": ["1", "0", "-8", "10000000000"],
    "--epochs": ["0", "-1"], "--steps": ["0", "-5"], "--minutes": ["0", "-1", "inf", "nan", "1e300"],
    "--optimizer": ["sgd"], "--g-lr": ["0", "-1", "1e6", "nan"], "--c-lr": ["-1e-4", "100"],
    "--gp-weight": ["-1", "1e12", "inf"], "--clip": ["0", "-0.01", "1e9"], "--z-dist": ["cauchy"],
    "--seed": ["-1", "99999999999999999999999", "1.5"], "--log-every": ["0", "-1"],
    "--keep-last": ["0", "-2"], "--checkpoint-every": ["0"], "--eval-every": ["0", "-1"],
    "--eval-n": ["1", "0", "1000000000"], "--on-nan": ["ignore"], "--on-bad-image": ["warn"],
    "--dataset": ["imagenet", "folder:", "MNIST"], "--device": ["banana", "cuda", "cuda:-1", "tpu"],
}.items():
    for v in vals:
        (good if (flag, v) == ("--device", "cuda") else bad)(*DRY, flag, v)
bad(*DRY, "--betas", "0.5")
bad(*DRY, "--betas", "1", "0.9")
bad(*DRY, "--betas", "-0.1", "0.9")
bad(*DRY, "--betas", "nan", "0.9")
bad(*DRY, "--shared-step", "--n-critic", "5")
bad(*DRY, "--preset", "nope")
bad(*DRY, "--bogus-flag")
good(*DRY)
good(*DRY, "--preset", "seed")
good(*DRY, "--z-dim", "100", "--dropout", "0.5")
# summary
bad("summary", "--bn-eps", "-1")
bad("summary", "--g-filters", "1000000000")
bad("summary", "--image-shape", "1,4096,4096", "--c-filters", "2048")
bad("summary", "--dataset", "imagenet")
good("summary", "--preset", "dcgan")
# generate
bad("generate", str(RUN), "--n", "0", "--out", str(W / "g.png"))
bad("generate", str(RUN), "--n", "-5", "--out", str(W / "g.png"))
bad("generate", str(RUN), "--n", "100000000000", "--out", str(W / "g.png"))
bad("generate", str(RUN), "--seed", "-1", "--out", str(W / "g.png"))
bad("generate", str(RUN), "--seed", "99999999999999999999999", "--out", str(W / "g.png"))
bad("generate", str(RUN), "--interpolate", "--rows", "0", "--out", str(W / "g.png"))
bad("generate", str(RUN), "--interpolate", "--steps", "0", "--out", str(W / "g.png"))
bad("generate", str(RUN), "--interpolate", "--steps", "-1", "--out", str(W / "g.png"))
bad("generate", str(RUN), "--interpolate", "cubic", "--out", str(W / "g.png"))
bad("generate", str(W / "nowhere"), "--out", str(W / "g.png"))
bad("generate", "--model", str(W / "nowhere.safetensors"))
bad("generate", "--out", str(W / "g.png"))
bad("generate", str(RUN), "--out", str(W))
bad("generate", str(RUN), "--out-dir", str(RUN / "config.json"))
bad("generate", str(RUN), "--checkpoint", str(RUN / "config.json"), "--out", str(W / "g.png"))
good("generate", str(RUN), "--n", "4", "--out", str(W / "g.png"))
# evaluate
bad("evaluate", "--real", "imagenet", "--n", "10")
bad("evaluate", "--real", "folder:/nonexistent", "--n", "10")
bad("evaluate", str(RUN), "--n", "0")
bad("evaluate", str(RUN), "--n", "-1")
bad("evaluate", str(RUN), "--bootstrap", "-1")
bad("evaluate", str(RUN), "--bootstrap", "1", "--n", "10")
bad("evaluate", str(RUN), "--device", "banana", "--n", "10")
bad("evaluate", str(RUN), "--seed", "-1", "--n", "10")
bad("evaluate", str(W / "nowhere"), "--n", "10")
bad("evaluate")
# export
bad("export", str(W / "nowhere"), "--out", str(W / "m.safetensors"))
bad("export", str(RUN), "--out", str(W))
good("export", str(RUN), "--out", str(W / "m.safetensors"))
# bench
bad("bench", "--quick", "--batch-sizes", "0")
bad("bench", "--quick", "--batch-sizes", "-8")
bad("bench", "--quick", "--repeats", "0")
bad("bench", "--quick", "--presets", "dcgan")
bad("bench", "--quick", "--presets", "nope")
bad("bench", "--quick", "--devices", "tpu")
bad("bench", "--quick", "--threads", "0")
bad("bench", "--quick", "--threads", "-1")
bad("bench", "--quick", "--g-filters", "0")
bad("bench", "--quick", "--c-filters", "-1")
bad("bench", "--quick", "--dataset", "imagenet")
bad("bench", "--quick", "--batch-sizes", "100000")
# sweep
bad("sweep", "--seeds", "0")
bad("sweep", "--minutes", "0")
bad("sweep", "--minutes", "nan")
bad("sweep", "--minutes", "inf")
bad("sweep", "--presets", "a,,b")
bad("sweep", "--presets", "seed,seed")
bad("sweep", "--eval-samples", "1")
bad("sweep", "--bn-eps", "-1", "--out", str(W / "sw"))
bad("sweep", "--seeds", "100000000000", "--out", str(W / "sw"))
# report / plot / compare / train-evaluator
bad("report", str(W / "nowhere"))
bad("plot", str(W / "nowhere"))
bad("compare", str(W / "nowhere"))
bad("compare", str(RUN), "--out", str(RUN / "config.json"))
bad("train-evaluator", "--dataset", "cifar10")
bad("train-evaluator", "--dataset", "synthetic", "--epochs", "0", "--out", str(W / "e.safetensors"))
bad("train-evaluator", "--dataset", "synthetic", "--epochs", "-1", "--out", str(W / "e.safetensors"))
bad("train-evaluator", "--dataset", "synthetic", "--seed", "-1", "--epochs", "1", "--out", str(W / "e.safetensors"))
# resume with damaged config
(W / "damaged").mkdir(exist_ok=True)
(W / "damaged" / "config.json").write_text("{not json")
bad("train", "--resume", "--out", str(W / "damaged"), "--dry-run")
(W / "damaged2").mkdir(exist_ok=True)
(W / "damaged2" / "config.json").write_text(json.dumps({"model": {"z_dim": "x"}}))
bad("train", "--resume", "--out", str(W / "damaged2"), "--dry-run")
(W / "damaged3").mkdir(exist_ok=True)
(W / "damaged3" / "config.json").write_text(json.dumps([1, 2]))
bad("train", "--resume", "--out", str(W / "damaged3"), "--dry-run")
(W / "damaged4").mkdir(exist_ok=True)
(W / "damaged4" / "config.json").write_text(json.dumps({"model": {"bogus": 1}}))
bad("train", "--resume", "--out", str(W / "damaged4"), "--dry-run")
(W / "damaged5").mkdir(exist_ok=True)
(W / "damaged5" / "config.json").write_text(json.dumps({"model": {"image_shape": [1, 28]}, "train": {"betas": 5}}))
bad("train", "--resume", "--out", str(W / "damaged5"), "--dry-run")
bad("train", "--resume", str(W / "nowhere.pt"), "--dry-run")
bad("train", "--out", str(RUN / "config.json"), "--steps", "1", *TINY)
bad("train", "--out", str(W / "cuda-run"), "--device", "cuda", "--steps", "1", *TINY)

# config files (--config): syntax, unknown keys, wrong types, out-of-range values
for name, text in {
    "syntax.toml": "[model\nz_dim = 3", "unknown.toml": "[model]\nfilters = 3\n",
    "type.toml": "[train]\nbatch_size = 'many'\n", "range.toml": "[train]\ng_lr = -1.0\n",
    "section.toml": "[nonsense]\nx = 1\n", "shape.json": '{"model": {"image_shape": [1, 28]}}',
    "list.json": "[1, 2, 3]", "nan.json": '{"train": {"gp_weight": NaN}}',
    "binary.toml": "\x00\xff\xfe garbage",
}.items():
    (W / name).write_text(text, errors="surrogateescape")
    bad("train", "--dry-run", "--config", W / name, "--out", W / "dry")
bad("train", "--dry-run", "--config", W / "missing.toml", "--out", W / "dry")
bad("train", "--dry-run", "--config", W, "--out", W / "dry")
(W / "fine.toml").write_text("[train]\nbatch_size = 32\n")
good("train", "--dry-run", "--config", W / "fine.toml", "--out", W / "dry")
# --init-from: weights of another run only
bad("train", "--dry-run", "--init-from", W / "missing.pt", "--out", W / "dry")
bad("train", "--steps", "1", "--init-from", RUN / "config.json", "--out", W / "init", *TINY)


from bad_files import add_file_cases, closed_pipe, snapshot  # noqa: E402

add_file_cases(W, RUN, TINY, bad, good, either)


def run(argv, closed_stdout=False):
    out, err, tb = (closed_pipe() if closed_stdout else io.StringIO()), io.StringIO(), None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 2
        except BaseException as e:  # noqa: BLE001  what escapes main() is the finding
            rc, tb = "exception", "".join(traceback.format_exception_only(type(e), e)).strip()
    return rc, err.getvalue(), tb


def classify(argv, should_fail, checks):
    before = {path: snapshot(path) for path in checks.get("keep", [])}
    rc, err, tb = run(argv, checks.get("closed_stdout", False))
    lines = [line for line in err.strip().splitlines() if line.strip()
             and not line.startswith("wganlab: warning:")]
    if tb or "Traceback" in err:
        return "DEFECT", f"traceback: {tb or lines[-1]}"
    changed = [str(p) for p, was in before.items() if snapshot(p) != was]
    if changed:
        return "DEFECT", f"changed or replaced a user's file: {changed[0]} (exit {rc})"
    missing = [str(p) for p in checks.get("then", []) if not Path(p).exists()]
    if missing:
        return "DEFECT", f"exit {rc} but {missing[0]} was not written"
    if should_fail is None:
        if rc != 0 and len(lines) != 1:
            return "DEFECT", f"{len(lines)} lines on stderr, exit {rc}: {lines[-1:]}"
        return ("ok" if rc == 0 else "clean"), (lines[0] if lines else "")
    if should_fail and rc == 0:
        return "DEFECT", "accepted (exit 0)"
    if should_fail and len(lines) != 1:
        return "DEFECT", f"{len(lines)} lines on stderr, exit {rc}: {lines[-1:]}"
    if not should_fail and rc != 0:
        return "DEFECT", f"refused a good input, exit {rc}: {lines[-1:]}"
    return ("ok" if rc == 0 else "clean"), (lines[0] if lines else "")


results, rows = {"clean": 0, "ok": 0, "DEFECT": 0}, []
for argv, should_fail, checks in CASES:
    kind, why = classify(argv, should_fail, checks)
    results[kind] += 1
    rows.append({"argv": argv, "outcome": kind, "message": why})
    if kind == "DEFECT":
        print(f"DEFECT {' '.join(a if len(a) < 40 else '...' + a[-25:] for a in argv)} -> "
              f"{why[:160]}", flush=True)
print(json.dumps(results), "of", len(CASES))
(W / "bad_inputs.json").write_text(json.dumps(rows, indent=1))
sys.exit(1 if results["DEFECT"] else 0)
