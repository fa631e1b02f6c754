"""`wganlab reproduce`: the tutorial's run with the `seed` preset, beside the book's log."""

from __future__ import annotations

from .flags import add_config_flags, overrides_from


def register(sub) -> None:
    """Add `wganlab reproduce` to the command's subparsers."""
    p = sub.add_parser(
        "reproduce", help="train the seed preset (100 epochs) and set its epoch lines and "
                          "learning curve beside the tutorial's")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    add_config_flags(p)
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args) -> int:
    from ..bench.tutorial import reproduce, tutorial_config

    cfg = tutorial_config(overrides_from(args), args.resume)
    print(f"Reproducing the tutorial's run: seed preset, {cfg.train.epochs} epochs on "
          f"{cfg.run.dataset}, into {cfg.run.out}")
    for path in reproduce(cfg, resume=args.resume):
        print(f"Wrote {path}")
    return 0
