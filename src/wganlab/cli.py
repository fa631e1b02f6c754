"""The `wganlab` command: parse, then call the library. Config flags come from the dataclasses."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import typing
from pathlib import Path

from . import config as C
from .errors import CheckpointError, ConfigError, DataError, NonFiniteError

DEFAULT_PRESET = "wgan-gp"


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage wall
        self.exit(2, f"{self.prog}: error: {message}\n")


def _finite(text: str) -> float:
    """A float flag's value; inf and nan are refused (no setting here means "unlimited")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number; got {text!r}")
    return value


def _shape(text: str) -> tuple[int, int, int]:
    parts = text.replace("x", ",").split(",")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 1,28,28; got {text!r}") from None
    if len(shape) != 3:
        raise argparse.ArgumentTypeError(f"expected three sizes C,H,W; got {text!r}")
    return shape


def add_config_flags(parser: argparse.ArgumentParser, skip: frozenset = frozenset()) -> None:
    """One flag per config field (but those in `skip`); defaults are suppressed so only given
    flags override."""
    for section, kind in C.SECTIONS.items():
        group = parser.add_argument_group(f"{section} config")
        hints = typing.get_type_hints(kind)
        for f in dataclasses.fields(kind):
            if f.name in skip:
                continue
            flag, hint = "--" + f.name.replace("_", "-"), str(hints[f.name])
            kw = dict(dest=f"{section}.{f.name}", default=argparse.SUPPRESS,
                      help=f.metadata["help"], choices=f.metadata.get("choices"))
            if hint.startswith("bool") or hint == "<class 'bool'>":
                kw.update(action=argparse.BooleanOptionalAction)
            elif "tuple[int, int, int]" in hint:
                kw.update(type=_shape, metavar="C,H,W")
            elif "tuple[float, float]" in hint:
                kw.update(type=_finite, nargs=2, metavar=("B1", "B2"))
            elif "float" in hint:
                kw.update(type=_finite, metavar="X")
            elif "int" in hint:
                kw.update(type=int, metavar="N")
            elif not kw["choices"]:
                kw.update(metavar="TEXT")
            group.add_argument(flag, **kw)


def overrides_from(args: argparse.Namespace) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, value in vars(args).items():
        if "." in key:
            section, name = key.split(".", 1)
            out.setdefault(section, {})[name] = tuple(value) if isinstance(value, list) else value
    return out


def resolve_config(args: argparse.Namespace) -> tuple[Config, bool | str]:
    """The preset plus the given flags; with --resume, the run's saved config plus the flags."""
    import json

    overrides = overrides_from(args)
    resume = getattr(args, "resume", None)
    if resume is not None:
        out = Path(overrides.get("run", {}).get("out") or _checkpoint_run_dir(resume))
        saved = out / "config.json"
        if saved.exists():
            cfg = C.Config.from_dict(json.loads(saved.read_text()))
            if args.preset is not None and args.preset != cfg.preset:
                raise ConfigError(f"--preset: the run being resumed is {cfg.preset!r}")
            C.check_resume(cfg, overrides)
            overrides.setdefault("run", {})["out"] = str(out)
            return C.apply_overrides(cfg, overrides), (resume if resume != "latest" else True)
        if resume == "latest":
            print(f"{out} holds no run yet; starting a new one")
    cfg = C.apply_overrides(C.get_preset(args.preset or DEFAULT_PRESET), overrides)
    if "out" not in overrides.get("run", {}):
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # every rank must name the same folder
            raise ConfigError("--out: give the run directory explicitly under torchrun")
        cfg.run.out = _fresh_dir(Path("runs") / cfg.preset)
    # A checkpoint path is always loaded (and checked against this config), never ignored.
    return C.validate(cfg), (resume if resume not in (None, "latest") else bool(resume))


def _checkpoint_run_dir(resume: str) -> str:
    if resume == "latest":
        raise ConfigError("--resume: give the run with --out RUN, or a checkpoint path")
    return str(Path(resume).resolve().parent.parent)


def _fresh_dir(base: Path) -> str:
    n, path = 1, base
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return str(path)


Config = C.Config


def cmd_train(args):
    cfg, resume = resolve_config(args)
    if args.dry_run:
        print(cfg.to_json())
        return 0
    from .runner import Speed
    from .train import train

    result = train(cfg, resume, Speed(cuda_graph=args.cuda_graph, bf16=args.bf16))
    print(f"Run directory: {result.run_dir} (step {result.step})")
    return result.exit_code


def cmd_summary(args):
    import torch

    from .data import native_shape
    from .models import build_models
    from .summary import summary

    cfg = C.validate(C.apply_overrides(C.get_preset(args.preset or DEFAULT_PRESET),
                                       overrides_from(args)))
    shape = cfg.model.image_shape or native_shape(cfg.run.dataset) or (3, 64, 64)
    generator, critic = build_models(cfg.model, shape)
    print(summary(generator, torch.zeros(2, cfg.model.z_dim), "generator"))
    print(summary(critic, torch.zeros(2, *shape), "critic"))
    return 0


def cmd_distances(args):
    from .distances import report

    print(report())
    return 0


def cmd_generate(args):
    import torch

    from .checkpoint import atomic_write
    from .generate import interpolation_grid, load_generator, sample
    from .plots import grid_png, to_uint8

    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator, cfg, info = load_generator(args.model or args.run, args.checkpoint, device)
    if args.interpolate:
        images = interpolation_grid(generator, args.rows, args.steps, cfg.train.z_dist, args.seed,
                                    args.interpolate == "spherical", device)
        nrow = args.steps
    else:
        images, nrow = sample(generator, args.n, cfg.train.z_dist, args.seed, device), 8
    images = to_uint8(images)
    if args.out_dir:
        for i, img in enumerate(images):
            data = grid_png(img[None], nrow=1)
            atomic_write(Path(args.out_dir) / f"{i:05d}.png", lambda f, d=data: f.write(d))
        print(f"Wrote {len(images)} images to {args.out_dir} from {info['checkpoint']}")
    else:
        data = grid_png(images, nrow)
        atomic_write(args.out, lambda f: f.write(data))
        print(f"Wrote {args.out} ({len(images)} images) from {info['checkpoint']}")
    return 0


def cmd_plot(args):
    from .plots import redraw

    for path in redraw(args.run):
        print(f"Wrote {path}")
    return 0


def cmd_export(args):
    from .generate import export

    print(f"Wrote {export(args.run, args.out, args.checkpoint)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="wganlab",
                    description="Train, inspect and compare DCGAN / Wasserstein GANs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train a GAN (one command: data, model, logs, pictures)")
    p.add_argument("--preset", choices=list(C.PRESETS), default=None,
                   help=f"starting configuration (default {DEFAULT_PRESET})")
    p.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                   help="continue the run in --out (newest valid checkpoint) or from a path")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--cuda-graph", action=argparse.BooleanOptionalAction, default=True,
                   help="on CUDA, replay each training step as one captured CUDA graph")
    p.add_argument("--bf16", action="store_true",
                   help="bf16 autocast for forward passes (the gradient penalty's norm stays fp32)")
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
    p.add_argument("--checkpoint", help="a checkpoint file (default: the newest valid one)")
    p.add_argument("--model", help="a .safetensors export instead of a run")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="grid.png")
    p.add_argument("--out-dir", help="write one PNG per image here instead of a grid")
    p.add_argument("--interpolate", nargs="?", const="linear", choices=["linear", "spherical"])
    p.add_argument("--rows", type=int, default=8, help="interpolation rows")
    p.add_argument("--steps", type=int, default=10, help="images per interpolation row")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("plot", help="redraw learning_curve.png and samples_by_epoch.png")
    p.add_argument("run")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("export", help="write the generator as safetensors (+ config)")
    p.add_argument("run")
    p.add_argument("--checkpoint")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)

    for register in _extra_commands():
        register(sub)
    return parser


def _extra_commands():
    """Commands that live beside their library code (evaluation, benchmarks, reports)."""
    import importlib

    modules = ("wganlab.evaluate", "wganlab.bench", "wganlab.report", "wganlab.sweep")
    return [importlib.import_module(name).register for name in modules]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "generate" and not (args.run or args.model):
        print("wganlab generate: error: give a RUN directory or --model FILE", file=sys.stderr)
        return 2
    try:
        return args.func(args) or 0
    except (ConfigError, DataError, CheckpointError, NonFiniteError) as e:
        print(f"wganlab {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(f"wganlab {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"wganlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
