"""The `wganlab` command: parse, then call the library. Config flags come from the dataclasses."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from .. import config as C
from ..base.streams import guarded_streams
from ..errors import ConfigError
from ..validation import MAX_SEED
from . import measure, reproduce
from .flags import (
    DEFAULT_PRESET,
    MAX_IMAGES,
    Parser,
    add_config_flags,
    in_range,
    overrides_from,
    resolve_config,
)


def cmd_train(args):
    """wganlab train: resolve the config, then train (or print it with --dry-run)."""
    cfg, resume = resolve_config(args)
    if args.dry_run:
        print(cfg.to_json())
        return 0
    from ..training.loop import train

    result = train(cfg, resume, init_from=args.init_from)
    if int(os.environ.get("RANK", "0")) == 0:
        print(finished_message(result))
    return result.exit_code


def finished_message(result) -> str:
    """Where the pictures and the report are, the last measured FID, and what to run next."""
    run = result.run_dir
    lines = [f"Run directory: {run} (step {result.step})",
             f"  pictures: {run / 'samples_by_epoch.png'}, {run / 'learning_curve.png'}, "
             f"{run / 'samples'}/",
             f"  report:   {run / 'report.html'}"]
    if result.last_eval:
        e = result.last_eval
        lines.append(f"  FID {e['fid']:.1f} at step {e['step']} ({e['n_fake']} samples; "
                     f"{e['modes_covered']} of 10 classes)")
        best = result.best_eval
        if best and best["step"] != e["step"]:
            lines.append(f"  lowest FID {best['fid']:.1f} at step {best['step']}: its "
                         "checkpoint is kept (--checkpoint best)")
    lines += ["Next:",
              f"  continue: wganlab train --out {run} --resume --minutes 10",
              f"  generate: wganlab generate {run} --n 64 --out grid.png",
              f"  evaluate: wganlab evaluate {run} --n 10000"]
    return "\n".join(lines)


def cmd_summary(args):
    """wganlab summary: per-layer tables of both networks."""
    import torch

    from ..data import native_shape
    from ..models import build_models
    from ..summary import summary

    cfg = C.validate(C.apply_overrides(C.get_preset(args.preset or DEFAULT_PRESET),
                                       overrides_from(args)))
    shape = cfg.model.image_shape or native_shape(cfg.run.dataset) or (3, 64, 64)
    labels = None
    if cfg.model.conditional != "none":  # sized by the named data set's classes
        from ..data.load import CLASS_NAMES

        names = cfg.model.class_names or CLASS_NAMES.get(cfg.run.dataset)
        if not names:
            raise ConfigError(f"--class-names: {cfg.run.dataset} has no class list to size "
                              "the conditional networks by; name the classes")
        cfg.model.class_names, labels = tuple(names), torch.zeros(2, dtype=torch.long)
    generator, critic = build_models(cfg.model, shape)
    print(summary(generator, torch.zeros(2, cfg.model.z_dim), "generator", labels))
    print(summary(critic, torch.zeros(2, *shape), "critic", labels))
    return 0


def cmd_distances(args):
    """wganlab distances: the worked examples of TV, KL, JS and EM."""
    from ..distances import report

    print(report())
    return 0


def check_generate_args(args) -> None:
    """Refuse generate's flags outside their meaningful ranges, naming the flag."""
    in_range(args.n, "--n", 1, MAX_IMAGES)
    in_range(args.seed, "--seed", 0, MAX_SEED)
    in_range(args.rows, "--rows", 1, 1000)
    in_range(args.steps, "--steps", 2, 1000)
    if args.interpolate:
        in_range(args.rows * args.steps, "--rows x --steps", 2, MAX_IMAGES)


def cmd_generate(args):
    """wganlab generate: a PNG grid, one file per image, or latent walks; for a conditional
    run one class (--class), a grid with one row per class, or walks between classes."""
    import torch

    check_generate_args(args)

    from ..base.files import atomic_write
    from ..base.images import grid_png, to_uint8
    from ..base.sample_files import write_sample_files
    from ..conditioning import class_index
    from ..generate import (
        class_grid,
        class_names,
        interpolation_grid,
        latents,
        load_generator,
        sample,
    )

    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = load_generator(args.model or args.run, device, args.weights, args.checkpoint,
                               args.member)
    cfg, info = generator.config, generator.provenance
    names = class_names(generator)
    wanted = None if args.klass is None else class_index(names, args.klass, "--class")
    if args.to_class is not None:
        class_index(names, args.to_class, "--to-class")  # refused before any work
        if not args.interpolate:
            raise ConfigError("--to-class: walks from --class to this class; add --interpolate")
    _say_weights(info)
    if args.interpolate:
        images = to_uint8(interpolation_grid(generator, args.rows, args.steps, cfg.train.z_dist,
                                             args.seed, args.interpolate == "spherical", device,
                                             wanted, args.to_class))
        nrow = args.steps
    elif names and wanted is None and not args.out_dir:
        # One row per class, one z per column: --n images at most, whole rows.
        columns = max(1, args.n // len(names))
        z = latents(generator, columns, args.seed, cfg.train.z_dist, device)
        images, nrow = to_uint8(class_grid(generator, z)), columns
        print(f"One row per class ({len(names)}: {', '.join(names[:10])}"
              f"{', ...' if len(names) > 10 else ''}), one z per column ({columns})")
    else:
        images, nrow = sample(generator, args.n, args.seed, labels=wanted), 8
    if args.out_dir:
        write_sample_files(images, args.out_dir)  # never over a file generate did not write
        print(f"Wrote {len(images)} images to {args.out_dir} from {info['checkpoint']}")
    else:
        data = grid_png(images, nrow)
        atomic_write(args.out, lambda f: f.write(data), follow_link=True)  # named by the user
        print(f"Wrote {args.out} ({len(images)} images) from {info['checkpoint']}")
    return 0


def cmd_plot(args):
    """wganlab plot: redraw a run's figures."""
    from ..reporting.plots import redraw

    for path in redraw(args.run):
        print(f"Wrote {path}")
    return 0


def _say_weights(info: dict) -> None:
    if info.get("note"):
        print(info["note"], file=sys.stderr)


def cmd_export(args):
    """wganlab export: a shareable folder (optionally pushed to the Hub) or one file."""
    if Path(args.out).suffix == ".safetensors":
        if args.push_to_hub:
            raise ConfigError("--push-to-hub: export a folder (--out DIR), not one file")
        from ..generate import export

        print(f"Wrote {export(args.run, args.out, args.checkpoint, args.weights, args.member)}")
        return 0
    from ..hub import export_folder, push_to_hub

    folder = export_folder(args.run, args.out, args.checkpoint, args.weights, args.member)
    print(f"Wrote {folder}")
    if args.push_to_hub:
        address = push_to_hub(args.out, args.push_to_hub, args.private)
        print(f"Pushed; load it with wganlab.load_generator({address!r})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `wganlab` parser with every subcommand."""
    parser = Parser(prog="wganlab",
                    description="Train, inspect and compare DCGAN / Wasserstein GANs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train a GAN (one command: data, model, logs, pictures)")
    p.add_argument("--preset", choices=list(C.PRESETS), default=None,
                   help=f"starting configuration (default {DEFAULT_PRESET})")
    p.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                   help="continue the run in --out (newest valid checkpoint) or from a path")
    p.add_argument("--init-from", metavar="CHECKPOINT",
                   help="start a new run from a checkpoint's network weights only (new "
                        "optimizers, step 0, this run's config)")
    p.add_argument("--config", metavar="FILE",
                   help="TOML or JSON settings (a run's config.json repeats that run); "
                        "flags override them")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    add_config_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("summary", help="per-layer table of both networks, like Keras's summary()")
    p.add_argument("--preset", choices=list(C.PRESETS), default=None)
    add_config_flags(p)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("distances", help="TV, KL, JS and EM worked examples")
    p.set_defaults(func=cmd_distances)

    p = sub.add_parser("generate", help="sample a trained generator into a PNG grid or files")
    p.add_argument("run", nargs="?", help="run directory or checkpoint")
    p.add_argument("--model", help="a .safetensors export instead of a run")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="grid.png")
    p.add_argument("--out-dir", help="write one PNG per image here instead of a grid")
    p.add_argument("--interpolate", nargs="?", const="linear", choices=["linear", "spherical"])
    p.add_argument("--class", dest="klass", metavar="K",
                   help="conditional runs: the class to draw, an index or a name (--class "
                        "Sneaker); default: a grid with one row per class")
    p.add_argument("--to-class", metavar="K",
                   help="with --interpolate: walk from --class (default 0) to this class at "
                        "a fixed z per row")
    p.add_argument("--rows", type=int, default=8, help="interpolation rows")
    p.add_argument("--steps", type=int, default=10, help="images per interpolation row")
    measure.add_weights_flags(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("plot", help="redraw learning_curve.png and samples_by_epoch.png")
    p.add_argument("run")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("export", help="write the generator as a shareable folder or one file")
    p.add_argument("run", help="run directory, checkpoint or earlier export")
    p.add_argument("--out", required=True, help="a folder (model.safetensors, config.json, "
                   "README.md model card) or a file ending in .safetensors")
    p.add_argument("--push-to-hub", metavar="USER/REPO",
                   help="also upload the folder to the Hugging Face Hub (the hub extra)")
    p.add_argument("--private", action="store_true", help="with --push-to-hub: a private repo")
    measure.add_weights_flags(p)
    p.set_defaults(func=cmd_export)

    for register in (measure.register_evaluate, measure.register_bench,
                     measure.register_report, measure.register_sweep, reproduce.register):
        register(sub)
    return parser


INTERNAL_ERROR = 70  # EX_SOFTWARE: not the user's doing


def _is_user_error(e: BaseException) -> bool:
    """wganlab's own error classes (errors.py, and the few others that carry an exit code)."""
    return type(e).__module__.startswith("wganlab.") and isinstance(
        getattr(e, "exit_code", None), int)


def _is_out_of_memory(e: BaseException) -> bool:
    torch = sys.modules.get("torch")
    if isinstance(e, MemoryError) or (torch and isinstance(e, torch.OutOfMemoryError)):
        return True
    return isinstance(e, RuntimeError) and ("can't allocate memory" in str(e)
                                            or "out of memory" in str(e))


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "generate" and not (args.run or args.model):
        print("wganlab generate: error: give a RUN directory or --model FILE", file=sys.stderr)
        return 2
    try:
        return args.func(args) or 0
    except Exception as e:
        where = f"wganlab {args.command}"
        if _is_user_error(e):
            print(f"{where}: error: {e}", file=sys.stderr)
            return e.exit_code
        if isinstance(e, OSError):  # missing file, permission, full disk: named by the OS
            print(f"{where}: error: {e}", file=sys.stderr)
            return 1
        if _is_out_of_memory(e):
            first = (str(e).splitlines() or [type(e).__name__])[0]  # MemoryError() is ""
            print(f"{where}: error: out of memory ({first[:200]}); use a "
                  "smaller --batch-size, --n or network", file=sys.stderr)
            return 1
        traceback.print_exc()
        print(f"{where}: internal error: this is a bug in wganlab, not in what you gave it; "
              "please report it with the traceback above", file=sys.stderr)
        return INTERNAL_ERROR


def main(argv: list[str] | None = None) -> int:
    """The command line: user errors are one line and their exit code, never a traceback;
    Ctrl-C, at any point once this function runs, is one line and exit 130."""
    try:
        with guarded_streams():  # a closed stdout (`| head`) ends printing, not the work
            return _run(argv)
    except KeyboardInterrupt:
        print("wganlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
