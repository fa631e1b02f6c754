"""Commands that measure and report: evaluate, train-evaluator, compare, bench, report, sweep.

Each command parses its flags and calls the library; the heavy modules load only when a
command runs, so `wganlab --help` stays quick.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import config as C
from ..errors import ConfigError
from ..validation import MAX_SEED
from .flags import MAX_IMAGES, add_config_flags, in_range, overrides_from


def register_evaluate(sub) -> None:
    """Add `wganlab evaluate`, `train-evaluator` and `compare` to the command's subparsers."""
    p = sub.add_parser("evaluate", help="FID, KID, precision/recall, coverage with provenance")
    p.add_argument("run", nargs="?", help="run directory, checkpoint or .safetensors export")
    p.add_argument("--real", metavar="DATASET", help="the floor: training vs test split")
    p.add_argument("--n", type=int, default=10_000, help="samples to generate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bootstrap", type=int, default=0, metavar="B",
                   help="B bootstrap resamples for a 95%% FID interval")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--device", default="auto")
    p.add_argument("--out", metavar="FILE",
                   help="write the record here (default: eval.json of the run the evaluated "
                        "checkpoint lies in, never another run's)")
    add_weights_flags(p)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("train-evaluator", help="train the small CNN evaluator of a data set")
    p.add_argument("--dataset", required=True, choices=["mnist", "fashion-mnist", "synthetic"])
    p.add_argument("--out", help="weights file (default: the user cache)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.set_defaults(func=_cmd_train_evaluator)

    p = sub.add_parser("compare", help="one table and one FID plot for several evaluated runs")
    p.add_argument("runs", nargs="+")
    p.add_argument("--out", default=".", help="folder for compare.md, .csv and compare_fid.png")
    p.set_defaults(func=_cmd_compare)


def add_weights_flags(p) -> None:
    """Add --checkpoint (which of a run's checkpoints), --weights (the generator's EMA
    weights, the default, or its raw ones) and --member (which model of an ensemble run)."""
    p.add_argument("--checkpoint", help="a checkpoint file, or `best`: the one of the run's "
                   "lowest FID during training (--eval-every); default: the newest valid one")
    p.add_argument("--weights", default="ema", choices=["ema", "raw"],
                   help="the generator's EMA weights (default; the raw ones where a run has "
                        "no EMA) or its raw weights")
    p.add_argument("--member", type=int, default=None, metavar="K",
                   help="of an ensemble run (--ensemble N): member K, 0 to N-1")


def _device(name: str) -> str:
    from ..base.device import pick_device

    return str(pick_device(name))


def _cmd_evaluate(args) -> int:
    from ..data import native_shape
    from ..errors import DataError
    from ..metrics.evaluate import eval_path, evaluate_real, evaluate_run, format_table

    in_range(args.n, "--n", 2, MAX_IMAGES)
    in_range(args.seed, "--seed", 0, MAX_SEED)
    if args.bootstrap != 0:  # 0: none; one resample gives no interval
        in_range(args.bootstrap, "--bootstrap", 2, 10_000)
    device = _device(args.device)
    if args.real:
        try:
            native_shape(args.real)
        except DataError as e:
            raise ConfigError(f"--real: {e}") from None
        record = evaluate_real(args.real, args.n, args.seed, device=device)
    elif args.run:
        record = evaluate_run(args.run, args.checkpoint, args.n, args.seed, args.bootstrap,
                              device, args.split, args.weights, args.out, args.member)
        if record.get("note"):
            print(record["note"], file=sys.stderr)
        where = eval_path(args.run, record["checkpoint"], args.out)
        print(f"Wrote {where}" if where else "Not written to any run (the checkpoint lies "
              "in none); pass --out FILE to keep it")
    else:
        raise ConfigError("evaluate: give a RUN or --real DATASET")
    print(format_table([record]))
    return 0


def _cmd_train_evaluator(args) -> int:
    from ..metrics import train_evaluator
    from ..metrics.evaluator_lookup import cache_dir, weights_filename


    if args.epochs is not None:
        in_range(args.epochs, "--epochs", 1, 1000)
    in_range(args.seed, "--seed", 0, MAX_SEED)
    out = args.out or cache_dir() / weights_filename(args.dataset)
    info = train_evaluator(args.dataset, out, epochs=args.epochs, seed=args.seed,
                           data_dir=args.data_dir, progress=print)
    print(f"Wrote {out}: test accuracy {info['test_accuracy']:.4f}, sha256 {info['sha256']}")
    return 0


def _cmd_compare(args) -> int:
    from ..metrics.compare import compare

    table, warnings = compare(args.runs, args.out)
    print(table)
    for w in warnings:
        print(w)
    return 0


def cmd_bench(args) -> int:
    """wganlab bench: fill in defaults, check the flags, then time (or --profile) and write."""
    import torch

    from ..bench.speed import DEFAULTS, QUICK, markdown, pick_variants, run_bench
    from ..training.fast import WARMUP_STEPS

    if args.quick:
        for k, v in QUICK.items():
            if getattr(args, k) is None:
                setattr(args, k, v)
    for k, v in DEFAULTS.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.devices is None:
        args.devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    if args.warmup is None:
        args.warmup = WARMUP_STEPS + 2 if "cuda" in args.devices else 1
    for name in ("repeats", "steps", "warmup", "profile_top"):
        if not 1 <= getattr(args, name) <= 1000:
            flag = name.replace("_", "-")
            raise ConfigError(f"--{flag}: must be in [1, 1000]; got {getattr(args, name)}")
    if args.threads is not None and not 1 <= args.threads <= 1024:
        raise ConfigError(f"--threads: must be in [1, 1024]; got {args.threads}")
    _check_bench_configs(args)
    pick_variants(args.variants, args.bf16)  # unknown names: refused before any work
    if args.profile:
        from ..bench import profile

        report = profile.run_profile(args)
        table = profile.markdown(report)
    else:
        report = run_bench(args)
        table = markdown(report)
    print(table, end="")
    for path, text in ((args.json, json.dumps(report, indent=2)), (args.markdown, table)):
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
    return 0


def _check_bench_configs(args) -> None:
    """Every preset x batch size the bench would build passes the config's own checks."""
    from ..bench.baseline import check_recipe

    model = {k: v for k, v in (("g_filters", args.g_filters), ("c_filters", args.c_filters))
             if v is not None}
    for preset in args.presets:
        for batch in args.batch_sizes:
            cfg = C.apply_overrides(C.get_preset(preset), {"model": model,
                                                           "train": {"batch_size": batch}})
            try:
                C.validate(cfg)
            except ConfigError as e:
                raise ConfigError(str(e).replace("--batch-size", "--batch-sizes")) from None
            check_recipe(cfg)


def register_bench(sub) -> None:
    """Add `wganlab bench` to the command's subparsers."""
    p = sub.add_parser("bench", help="time the training step against a plain PyTorch step")
    p.add_argument("--presets", nargs="+", help="default: seed wgan-gp")
    p.add_argument("--batch-sizes", nargs="+", type=int, help="default: 128 1024")
    p.add_argument("--devices", nargs="+", help="default: cpu, and cuda when there is one")
    p.add_argument("--repeats", type=int, help="interleaved timing rounds (default 3)")
    p.add_argument("--steps", type=int, help="steps per variant per round (default 2)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps first (default 5 with cuda, else 1)")
    p.add_argument("--dataset", help="default: fashion-mnist; random: 60,000 random 28x28 images")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--g-filters", type=int, default=None, help="override the preset's")
    p.add_argument("--c-filters", type=int, default=None, help="override the preset's")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: the CPUs this process may use)")
    p.add_argument("--bf16", action="store_true", help="also time ours with bf16 autocast")
    p.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                   help="rows beside baseline and ours: all, or names such as ours-unfused, "
                        "ours+channels-last, ours+bf16 (see benchmarks/README.md)")
    p.add_argument("--profile", action="store_true",
                   help="instead of timing: the ops with the most self time in --steps steps "
                        "of ours (and --variants), by torch.profiler")
    p.add_argument("--profile-top", type=int, default=15, help="ops listed per profile")
    p.add_argument("--quick", action="store_true",
                   help="tiny networks, batch 8, CPU, one step per round (a smoke test)")
    p.add_argument("--json", help="write the full report here")
    p.add_argument("--markdown", help="write the table here")
    p.set_defaults(func=cmd_bench)


def cmd_report(args) -> int:
    """wganlab report: write a run's report.html."""
    from ..reporting.report import write_report

    print(f"Wrote {write_report(args.run, args.out)}")
    return 0


def register_report(sub) -> None:
    """Add `wganlab report` to the command's subparsers."""
    p = sub.add_parser("report", help="write RUN/report.html: curves, samples, health, metrics")
    p.add_argument("run", help="run directory")
    p.add_argument("--out", help="where to write the HTML (default RUN/report.html)")
    p.set_defaults(func=cmd_report)


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
    """wganlab sweep: check the flags and every preset's config, then run the sweep."""
    from ..bench.sweep import Sweep, run_config, run_sweep

    in_range(args.seeds, "--seeds", 1, 1000)
    if not 0 < args.minutes <= 1e6:  # also refuses nan and inf
        raise ConfigError(f"--minutes: must be in (0, 1e+06]; got {args.minutes}")
    in_range(args.eval_samples, "--eval-samples", 2, MAX_IMAGES)
    overrides = overrides_from(args)
    # One data set for all: presets differ in theirs (the tutorial's `seed` is MNIST).
    overrides.setdefault("run", {}).setdefault("dataset", "fashion-mnist")
    sweep = Sweep(_names(args.presets), list(range(1, args.seeds + 1)), args.minutes,
                  Path(args.out), overrides, not args.no_equal_steps, args.eval_samples,
                  ensembles=not args.separate_seeds)
    for preset in sweep.presets:  # every run's config, checked before the first one trains
        run_config(sweep, preset, 1, None)
    return run_sweep(sweep)


def register_sweep(sub) -> None:
    """Add `wganlab sweep` to the command's subparsers."""
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
    p.add_argument("--separate-seeds", action="store_true",
                   help="train each seed as its own run (default: a preset's seeds as one "
                        "ensemble where its networks allow, for seeds x minutes)")
    p.add_argument("--no-equal-steps", action="store_true",
                   help="skip the equal-steps comparison (it retrains runs that went further)")
    # Every config flag applies to all runs, but those the sweep sets itself.
    add_config_flags(p, skip=frozenset({"seed", "seeds", "ensemble", "minutes", "steps", "epochs",
                                          "out"}))
    p.set_defaults(func=cmd_sweep)
