"""Whether a folder may become, or go on being, a run directory.

A run writes a fixed set of names into its folder. `train` writes into a folder only when it
is new, empty, or a run's own: one whose config.json is a run's config, or, without one, that
holds nothing but names a run writes (a run stopped before its first config.json). So an
editor's config.json, a folder of photos or the filesystem root is refused, never written,
the way `export` refuses a folder of other files.
"""

from __future__ import annotations

import os
from pathlib import Path

from .base.files import TEMPORARY, refuse_system_folder
from .base.lock import LOCK_NAME
from .errors import ConfigError
from .runfiles import read_config_dict

# Every name a run (training, plot, report, evaluate) writes into its folder.
RUN_WRITES = frozenset({
    "config.json", "run.json", "metrics.jsonl", "eval.json", "report.html",
    "learning_curve.png", "samples_by_epoch.png", "fid_curve.png", "samples", "checkpoints",
    "tensorboard", LOCK_NAME, "tutorial.md", "tutorial_curve.png"})


def expand_paths(cfg) -> None:
    """`~` in the run's folder and data paths means the home folder, as in a shell."""
    r = cfg.run
    r.out = os.path.expanduser(r.out)
    if r.data_dir:
        r.data_dir = os.path.expanduser(r.data_dir)


def foreign_names(folder: Path) -> list[str]:
    """The names in `folder` that no run writes (temporaries of killed writers are a run's)."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name not in RUN_WRITES and not TEMPORARY.match(p.name))


def check_run_folder(cfg, resume=False) -> None:
    """Refuse --out when it is a system folder or a folder that is not a run's (see the
    module); `~` in the config's paths is expanded first."""
    expand_paths(cfg)
    out = Path(cfg.run.out)
    refuse_system_folder(out, "--out")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} exists and is not a folder")
    if not out.is_dir():
        return
    config = out / "config.json"
    if config.exists() or config.is_symlink():
        if config.is_symlink() or not config.is_file():
            raise ConfigError(f"--out: {config} is not a regular file; {out} is not a run "
                              "directory: choose another --out")
        try:
            read_config_dict(config)
        except ConfigError as e:
            raise ConfigError(f"--out: {out} is not a run directory, and its config.json is "
                              f"not a run's ({str(e).removeprefix(str(config) + ': ')}); "
                              "choose a new or empty folder") from None
        return
    foreign = foreign_names(out)
    if foreign:
        listed = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                           else "")
        what = "continue a run in" if resume else "start a run in"
        raise ConfigError(f"--out: will not {what} {out}: it holds files no run writes "
                          f"({listed}); give a new or empty folder")
