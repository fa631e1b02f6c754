"""Where a resumed run starts, without ever losing work silently.

    resume_point(run_dir)          the newest checkpoint that loads; damaged newer ones (and
                                   the metrics rows past the resume step) are kept aside and
                                   named; all damaged: refused, nothing changed
    check_same_run(state, cfg)     a checkpoint from a run with another config is refused
    load_initial_weights(state, path)  --init-from: the networks' weights of any compatible run
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..base import checkpoint
from ..base.files import atomic_write
from ..config import RESUMABLE, Config, upgrade
from ..errors import CheckpointError, ConfigError

ASIDE = "damaged"  # checkpoints/damaged/: kept for the user, never loaded or pruned


@dataclass
class ResumePoint:
    """The checkpoint a resume starts from, its loaded state, and what was moved aside."""
    path: Path
    state: dict
    kept_aside: list[str] = field(default_factory=list)  # one line per thing moved aside


def resume_point(run_dir: str | Path, map_location="cpu", main: bool = True
                 ) -> ResumePoint | None:
    """The newest checkpoint of run_dir that loads; None when the run has none.

    Damaged checkpoints newer than it would outrank every checkpoint this run writes next,
    so `--keep-last` would prune the new ones: they are moved to checkpoints/damaged/, and
    the metrics rows past the resume step (which the resumed run writes again) are copied
    there too. Only `main` (rank 0) moves anything. When every checkpoint is damaged the
    resume is refused with the list, and nothing is changed.
    """
    run_dir, damaged = Path(run_dir), []
    for path in checkpoint.list_checkpoints(run_dir):
        try:
            state = checkpoint.load(path, map_location)
        except CheckpointError as e:
            damaged.append((path, str(e)))
            continue
        found = ResumePoint(path, state)
        if damaged and main:
            found.kept_aside = _set_aside(run_dir, [p for p, _ in damaged], state["step"])
        return found
    if damaged:
        listing = "; ".join(reason for _, reason in damaged[:4])
        more = f" and {len(damaged) - 4} more" if len(damaged) > 4 else ""
        raise CheckpointError(
            f"{run_dir}: every checkpoint is damaged ({listing}{more}); --resume refuses to "
            "start again from step 0 over this run, and nothing was changed. Move the "
            "checkpoints away to start afresh, or pass --resume PATH")
    return None


def _set_aside(run_dir: Path, paths: list[Path], step: int) -> list[str]:
    folder = run_dir / "checkpoints" / ASIDE
    folder.mkdir(exist_ok=True)
    lines = []
    for path in paths:
        target = _free_name(folder / path.name)
        os.replace(path, target)
        lines.append(f"moved damaged checkpoint {path.name} to {target}")
    metrics = run_dir / "metrics.jsonl"
    later = [line for line in _lines(metrics) if _step(line) > step]
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


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _step(line: str) -> int:
    try:
        step = json.loads(line).get("step", 0)
    except (json.JSONDecodeError, AttributeError):
        return 0
    return step if isinstance(step, int) else 0


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


def check_same_run(path: Path, state: dict, cfg: Config) -> None:
    """Refuse to continue a checkpoint whose training config is not this run's."""
    saved = state.get("config")
    diff = differences(saved, cfg) if isinstance(saved, dict) else ["(it carries no config)"]
    if diff:
        shown = "; ".join(diff[:4]) + (f"; and {len(diff) - 4} more" if len(diff) > 4 else "")
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
