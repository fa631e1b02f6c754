"""`wganlab sweep`: train presets x seeds for the same wall time, evaluate, compare.

Every (preset, seed) run trains for the same number of minutes (equal wall time). The fewest
generator steps any run reached, S, then defines equal steps: each run that went further is
trained again from scratch with --steps S (same seed, so the same run up to S) and evaluated
there. The table gives mean +- std over seeds of FID, KID and class coverage in both settings.

Layout: OUT/<preset>/seed-<n> (equal time), OUT/<preset>/seed-<n>-steps-<S> (equal steps),
each with sweep_result.json, so a sweep run again reuses the runs it finished; OUT/sweep.json,
OUT/sweep.md and OUT/sweep.png hold the comparison.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from . import config as C
from .checkpoint import atomic_write
from .errors import ConfigError
from .health import number, read_rows
from .sweep_table import format_table, plot_sweep, summarise

RESULT = "sweep_result.json"
Evaluate = Callable[[Path], dict]  # run directory -> {"fid", "kid_mean", "modes_covered", ...}


@dataclasses.dataclass
class Sweep:
    presets: list[str]
    seeds: list[int]
    minutes: float
    out: Path
    overrides: dict  # {section: {field: value}} from the config flags, applied to every run
    equal_steps: bool = True
    eval_samples: int = 5000
    eval_seed: int = 0


def run_config(sweep: Sweep, preset: str, seed: int, steps: int | None) -> C.Config:
    """One run's config: the preset, the sweep's flags, this seed, and its length (the sweep's
    minutes, or `steps` for an equal-steps run)."""
    cfg = C.apply_overrides(C.get_preset(preset), sweep.overrides)
    cfg.train.seed, cfg.train.epochs = seed, None
    cfg.train.minutes, cfg.train.steps = (None, steps) if steps else (sweep.minutes, None)
    name = f"seed-{seed}" + (f"-steps-{steps}" if steps else "")
    cfg.run.out = str(sweep.out / preset / name)
    return C.validate(cfg)


def train_and_evaluate(cfg: C.Config, evaluate: Evaluate) -> dict | int:
    """Train one run (or reuse it if a sweep already finished it) and evaluate its last
    checkpoint. Returns the result record, or the exit code of an interrupted run."""
    from .train import train  # here: `wganlab --help` need not load the training stack

    out = Path(cfg.run.out)
    wanted = json.loads(cfg.to_json())  # before training fills in the image shape
    if (out / RESULT).exists():
        record = json.loads((out / RESULT).read_text())
        if record.get("config") != wanted:
            raise ConfigError(f"--out: {out} holds a finished run with other settings (minutes "
                              "or flags); choose another --out for this sweep")
        return record
    if (out / "config.json").exists():
        raise ConfigError(f"--out: {out} holds an unfinished run (an interrupted sweep?); "
                          "delete it so the sweep can train it again from the start")
    result = train(cfg)
    if result.exit_code:
        return result.exit_code
    rows = [r for r in read_rows(out / "metrics.jsonl") if "g_loss" in r]
    evaluation = {k: _plain(v) for k, v in evaluate(out).items()}
    record = {**evaluation, "eval_seed": evaluation.get("seed"), "preset": cfg.preset,
              "seed": cfg.train.seed, "run": str(out), "steps": result.step,
              "minutes": number(rows[-1]["time"]) / 60 if rows else None, "config": wanted}
    write_json(out / RESULT, record)
    return record


def _plain(value):
    return value.item() if hasattr(value, "item") else value  # NumPy and torch scalars


def run_sweep(sweep: Sweep, evaluate: Evaluate | None = None) -> int:
    """Train, evaluate and compare; writes OUT/sweep.json, sweep.md and sweep.png."""
    if evaluate is None:
        evaluate = make_evaluate(sweep)
    equal_time = []
    # Seeds outer, presets inner: a change in machine load during the sweep then falls on
    # every preset alike instead of on whichever happens to run last.
    for seed in sweep.seeds:
        for preset in sweep.presets:
            record = train_and_evaluate(run_config(sweep, preset, seed, None), evaluate)
            if isinstance(record, int):
                return record
            equal_time.append(record)

    equal_steps, s = [], min(r["steps"] for r in equal_time)
    for record in equal_time if sweep.equal_steps else []:
        if record["steps"] > s:
            record = train_and_evaluate(
                run_config(sweep, record["preset"], record["seed"], s), evaluate)
            if isinstance(record, int):
                return record
        equal_steps.append(record)

    summary = summarise(equal_time, equal_steps, sweep.presets)
    table = format_table(summary, sweep.minutes, s if equal_steps else None)
    write_json(sweep.out / "sweep.json", {
        "presets": sweep.presets, "seeds": sweep.seeds, "minutes": sweep.minutes,
        "equal_steps": s if equal_steps else None, "overrides": sweep.overrides,
        "summary": summary, "runs": {"equal_time": equal_time, "equal_steps": equal_steps}})
    (sweep.out / "sweep.md").write_text(table + "\n")
    plot_sweep(summary, sweep.out / "sweep.png", sweep.minutes, s if equal_steps else None)
    print(table)
    print(f"Wrote {sweep.out / 'sweep.md'}, sweep.json and sweep.png")
    return 0


def write_json(path: Path, obj: dict) -> None:
    atomic_write(path, lambda f: f.write(json.dumps(obj, indent=2).encode()))


# Evaluation, through one function so the sweep does not depend on how it is done.

def make_evaluate(sweep: Sweep) -> Evaluate:
    """wganlab.evaluate's evaluate_run: the run's newest checkpoint, `eval_samples` generated
    images against the whole test split (its features are computed once per process); it
    writes RUN/eval.json, which the run's report then shows."""
    from .evaluate import evaluate_run
    from .report import write_report
    from .runtime import pick_device

    device = str(pick_device(sweep.overrides.get("run", {}).get("device", "auto")))

    def evaluate(run_dir: Path) -> dict:
        record = evaluate_run(run_dir, n=sweep.eval_samples, seed=sweep.eval_seed,
                              device=device)
        write_report(run_dir)
        return record

    return evaluate


# The command.

def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for name in names:
        if name not in C.PRESETS:
            raise ConfigError(f"--presets: unknown preset {name!r}; choose from "
                              f"{', '.join(C.PRESETS)}")
    if not names or len(set(names)) != len(names):
        raise ConfigError(f"--presets: give distinct preset names, comma-separated; got {text!r}")
    return names


def cmd_sweep(args) -> int:
    from .cli import overrides_from

    if args.seeds < 1:
        raise ConfigError(f"--seeds: must be >= 1; got {args.seeds}")
    if args.minutes <= 0:
        raise ConfigError(f"--minutes: must be > 0; got {args.minutes}")
    if args.eval_samples < 2:
        raise ConfigError(f"--eval-samples: must be >= 2; got {args.eval_samples}")
    overrides = overrides_from(args)
    # One data set for all: presets differ in theirs (the tutorial's `seed` is MNIST).
    overrides.setdefault("run", {}).setdefault("dataset", "fashion-mnist")
    sweep = Sweep(_names(args.presets), list(range(1, args.seeds + 1)), args.minutes,
                  Path(args.out), overrides, not args.no_equal_steps, args.eval_samples)
    return run_sweep(sweep)


def register(sub) -> None:
    from .cli import add_config_flags

    # No abbreviations: --seed would otherwise quietly mean --seeds.
    p = sub.add_parser("sweep", allow_abbrev=False,
                       help="train presets x seeds for equal wall time and compare FID, KID "
                            "and class coverage")
    p.add_argument("--presets", default="seed,wgan-gp,dcgan",
                   help="comma-separated presets (default seed,wgan-gp,dcgan)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 1..N per preset (default 3)")
    p.add_argument("--minutes", type=float, default=5.0,
                   help="training wall time of every run, in minutes (default 5)")
    p.add_argument("--out", default="runs/sweep", help="sweep directory (default runs/sweep)")
    p.add_argument("--eval-samples", type=int, default=5000,
                   help="generated (and test) images per evaluation (default 5000)")
    p.add_argument("--no-equal-steps", action="store_true",
                   help="skip the equal-steps comparison (it retrains runs that went further)")
    # Every config flag applies to all runs, but those the sweep sets itself.
    add_config_flags(p, skip=frozenset({"seed", "minutes", "steps", "epochs", "out"}))
    p.set_defaults(func=cmd_sweep)
