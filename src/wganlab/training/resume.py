"""Where a resumed run starts, without ever losing work silently, trusting what files hold
rather than what they are called.

    resume_point(run_dir, cfg=cfg) the checkpoint holding the highest step (each one's name
                                   checked against the step inside it); damaged newer ones
                                   (and the metrics rows past the resume step) are kept aside
                                   and named; all damaged, or metrics with no checkpoint:
                                   refused, nothing changed
    check_same_run(state, cfg)     a checkpoint from a run with another config is refused
    load_initial_weights(state, path)  --init-from: the networks' weights of any compatible run
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..base import checkpoint
from ..base.files import TEMPORARY, atomic_write
from ..config import RESUMABLE, SECTIONS, Config, upgrade
from ..errors import CheckpointError, ConfigError
from ..runfiles import metrics_lines, read_metrics, read_run_info
from ..version import __version__

ASIDE = "damaged"  # checkpoints/damaged/: kept for the user, never loaded or pruned
NEEDED = ("generator", "critic", "g_optimizer", "c_optimizer", "rng", "fixed_z", "step",
          "skipped")  # what a resume restores (TrainState.restore)


@dataclass
class ResumePoint:
    """The checkpoint a resume starts from, its loaded state, and what was moved aside."""
    path: Path
    state: dict
    kept_aside: list[str] = field(default_factory=list)  # one line per thing moved aside


def resume_point(run_dir: str | Path, map_location="cpu", main: bool = True,
                 cfg: Config | None = None) -> ResumePoint | None:
    """The checkpoint of run_dir holding the highest step; None when the run has none and
    has done no work a checkpoint should hold.

    A checkpoint whose name disagrees with the step inside it is refused (renamed, it would
    outrank or be pruned by the wrong checkpoints). Damaged checkpoints newer than the one
    chosen would outrank every checkpoint this run writes next, so `--keep-last` would prune
    the new ones: they are moved to checkpoints/damaged/, and the metrics rows past the
    resume step (which the resumed run writes again) are copied there too. Only `main`
    (rank 0) moves anything. When every checkpoint is damaged, or metrics.jsonl holds steps
    no checkpoint does, the resume is refused with the choices, and nothing is changed. With
    `cfg`, a checkpoint whose config differs from it is refused (see check_same_run).
    """
    run_dir, damaged, best = Path(run_dir), [], None
    for path in checkpoint.list_checkpoints(run_dir):
        try:
            state = checkpoint.load(path, map_location)
        except CheckpointError as e:
            damaged.append((path, str(e)))
            continue
        _check_name(path, state)
        if best is None or state["step"] > best.state["step"]:
            best = ResumePoint(path, state)
    if best is None and damaged:
        listing = "; ".join(reason for _, reason in damaged[:4])
        more = f" and {len(damaged) - 4} more" if len(damaged) > 4 else ""
        raise CheckpointError(
            f"{run_dir}: every checkpoint is damaged ({listing}{more}); --resume refuses to "
            "start again from step 0 over this run, and nothing was changed. Move the "
            "checkpoints away to start afresh, or pass --resume PATH")
    if best is None:
        _refuse_lost_work(run_dir, cfg)
        return None
    if cfg is not None:
        check_same_run(best.path, best.state, cfg, plain=True)
    newer = [p for p, _ in damaged if _named_step(p) > best.state["step"]]
    if newer and main:
        best.kept_aside = _set_aside(run_dir, newer, best.state["step"])
    return best


def _named_step(path: Path) -> int:
    return int(checkpoint.NAME.match(path.name).group(1))


def _check_name(path: Path, state: dict) -> None:
    """The step in a checkpoint's name must be the step it holds."""
    step = state.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path}: holds no step count (step = {step!r}); not a "
                              "checkpoint a run can continue from")
    if step != _named_step(path):
        raise CheckpointError(
            f"{path}: holds step {step}, but its name says step {_named_step(path)}; rename it "
            f"{checkpoint.checkpoint_path(path.parent.parent, step).name} or move it out of "
            f"{path.parent}, then resume (nothing was changed)")


def _refuse_lost_work(run_dir: Path, cfg: Config | None) -> None:
    """No checkpoint: restarting from step 0 must not drop steps a checkpoint once held."""
    folder = run_dir / "checkpoints"
    others = sorted(p.name for p in folder.iterdir() if p.name != ASIDE
                    and not TEMPORARY.match(p.name)) if folder.is_dir() else []
    steps = [r["step"] for r in read_metrics(run_dir / "metrics.jsonl", warn=False)
             if "g_loss" in r]
    last = max(steps, default=0)
    if not others and last <= _first_save(run_dir, cfg):
        return  # stopped before its first checkpoint: step 0 loses nothing saved
    choices = [f"--resume {folder / name}" for name in others[:2]]
    held = f"it holds {', '.join(others[:3])}, not" if others else "it holds no"
    raise CheckpointError(
        f"{run_dir}: metrics.jsonl has rows up to step {last}, but {folder} has no "
        f"checkpoint to continue from ({held} step-NNNNNNNN.pt files); nothing was changed. "
        "Choose: " + "; ".join(choices + [
            "move metrics.jsonl away to start this run again from step 0",
            "or give another --out for a new run"]))


def _first_save(run_dir: Path, cfg: Config | None) -> float:
    """The step of a run's first checkpoint: its first epoch's end, --checkpoint-every or
    --keep-every."""
    try:
        per_epoch = read_run_info(run_dir / "run.json").get("steps_per_epoch") or math.inf
    except ValueError:  # an unreadable run.json: assume a checkpoint was due at once
        per_epoch = 0
    every = [n for n in (cfg.run.checkpoint_every, cfg.run.keep_every) if n] if cfg else []
    return min(per_epoch, *every, math.inf)


def _set_aside(run_dir: Path, paths: list[Path], step: int) -> list[str]:
    folder = run_dir / "checkpoints" / ASIDE
    folder.mkdir(exist_ok=True)
    lines = []
    for path in paths:
        target = _free_name(folder / path.name)
        os.replace(path, target)
        lines.append(f"moved damaged checkpoint {path.name} to {target}")
    metrics = run_dir / "metrics.jsonl"
    later = [line for line, row in metrics_lines(metrics, warn=False) if row["step"] > step]
    if later:
        target = _free_name(folder / f"metrics-after-step-{step:08d}.jsonl")
        atomic_write(target, lambda f: f.write("".join(x + "\n" for x in later).encode()))
        lines.append(f"kept the {len(later)} metrics rows after step {step} in {target}")
    return lines


def _free_name(path: Path) -> Path:
    n, candidate = 1, path
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}.{n}{path.suffix}")
    return candidate


def differences(saved: dict, cfg: Config) -> list[str]:
    """'section.field: saved -> now' for every field that defines the run (all but run
    length and logging) on which a checkpoint's config and this run's config differ."""
    now, defaults = cfg.to_dict(), Config().to_dict()
    saved = upgrade(saved)  # an earlier version's names, in this version's terms
    found = []
    for section in ("model", "train", "run"):
        theirs = saved.get(section) if isinstance(saved.get(section), dict) else {}
        for name, value in now[section].items():
            if (section, name) in RESUMABLE:
                continue
            # A field the checkpoint's wganlab did not have: its default, as from_dict does.
            other = theirs.get(name, defaults[section][name])
            if _plain(other) != _plain(value):
                found.append(f"{section}.{name}: {other!r} there, {value!r} here")
    return found


def _plain(value):
    return tuple(_plain(v) for v in value) if isinstance(value, (list, tuple)) else value


def unknown_settings(saved: dict) -> list[str]:
    """'section.field' for each setting in a saved config that this version does not have."""
    known = {name: {f for f in Config().to_dict()[name]} for name in SECTIONS}
    return [f"{name}.{key}" for name in SECTIONS
            for key in (saved.get(name) if isinstance(saved.get(name), dict) else {})
            if key not in known[name]]


def check_same_run(path: Path, state: dict, cfg: Config, plain: bool = False) -> None:
    """Refuse to continue a checkpoint whose training config is not this run's, one from a
    newer wganlab with settings this version does not know, or one lacking what a resume
    restores. plain: the run's own newest checkpoint (a plain --resume), so a difference
    means the run's config.json was edited."""
    missing = [k for k in NEEDED if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a checkpoint a run can continue from (no "
                              f"{', '.join(missing[:3])})")
    saved = state.get("config")
    unknown = unknown_settings(saved) if isinstance(saved, dict) else []
    if unknown:
        raise CheckpointError(f"{path}: written by wganlab {state.get('version', '?')} with "
                              f"settings this version ({__version__}) does not know "
                              f"({', '.join(unknown[:4])}); continue it with that version")
    diff = differences(saved, cfg) if isinstance(saved, dict) else ["(it carries no config)"]
    if not diff:
        return
    shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
    if plain:
        raise ConfigError(f"--resume: {Path(cfg.run.out) / 'config.json'} differs from the "
                          f"config its checkpoint {path.name} was trained with ({shown}); "
                          "a resume continues the checkpoint's run as it was: undo the edit, "
                          f"or start a new run from its weights with --init-from {path}")
    raise ConfigError(f"--resume {path}: this checkpoint belongs to a run with another "
                      f"config ({shown}); resuming it would continue that run under this "
                      f"run's name. To start this run from its weights only, pass "
                      f"--init-from {path}")


def load_initial_weights(state, path: str | Path, device) -> None:
    """--init-from: load a checkpoint's generator and critic weights into a fresh TrainState;
    its optimizers, step, random streams and config are not used."""
    saved = checkpoint.load(path, device)
    missing = [k for k in ("generator", "critic") if not isinstance(saved.get(k), dict)]
    if missing:
        raise CheckpointError(f"{path}: no {' or '.join(missing)} weights to start from")
    try:
        state.generator.load_state_dict(saved["generator"])
        state.critic.load_state_dict(saved["critic"])
    except RuntimeError as e:
        raise CheckpointError(f"--init-from {path}: its networks do not fit this run's model "
                              f"({str(e).strip().splitlines()[0][:200]})") from e
