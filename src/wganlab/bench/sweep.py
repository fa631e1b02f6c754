"""`wganlab sweep`: train presets x seeds for the same wall time, evaluate, compare.

Every (preset, seed) run trains for the same number of minutes (equal wall time). The fewest
generator steps any run reached, S, then defines equal steps: each run that went further is
trained again from scratch with --steps S (same seed, so the same run up to S) and evaluated
there. The table gives mean +- std over seeds of FID, KID and class coverage in both settings.

Ensembles: where the networks allow (ensemble.py; not spectral norm under torch.vmap), a
preset's seeds train as one ensemble (--ensemble N --seeds ...), member k being exactly the
run of seed k, for N x minutes of wall time: the time the seeds would take one by one, so
every preset still gets the same wall time in all. Its members are then compared as the
separate seeds' runs are. The table says which presets trained so (--separate-seeds: none).

Layout: OUT/<preset>/seed-<n> (equal time), OUT/<preset>/seed-<n>-steps-<S> (equal steps),
or OUT/<preset>/seeds-<n1>-<n2>... for an ensemble, each with sweep_result.json, so a sweep
run again reuses the runs it finished; OUT/sweep.json, OUT/sweep.md and OUT/sweep.png hold
the comparison.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

from .. import config as C
from ..base.files import write_json
from ..errors import ConfigError
from ..metrics.health import number, read_rows
from .sweep_table import format_table, plot_sweep, summarise

RESULT = "sweep_result.json"
Evaluate = Callable[[Path], dict]  # run directory -> {"fid", "kid_mean", "modes_covered", ...}


@dataclasses.dataclass
class Sweep:
    """A sweep's settings: presets x seeds, minutes per run, where to write, evaluation size."""
    presets: list[str]
    seeds: list[int]
    minutes: float
    out: Path
    overrides: dict  # {section: {field: value}} from the config flags, applied to every run
    equal_steps: bool = True
    eval_samples: int = 5000
    eval_seed: int = 0
    ensembles: bool = False  # each preset's seeds as one ensemble where possible (the CLI's)


def run_config(sweep: Sweep, preset: str, seed: int, steps: int | None) -> C.Config:
    """One run's config: the preset, the sweep's flags, this seed, and its length (the sweep's
    minutes, or `steps` for an equal-steps run)."""
    cfg = C.apply_overrides(C.get_preset(preset), sweep.overrides)
    cfg.train.seed, cfg.train.epochs = seed, None
    cfg.train.minutes, cfg.train.steps = (None, steps) if steps else (sweep.minutes, None)
    name = f"seed-{seed}" + (f"-steps-{steps}" if steps else "")
    cfg.run.out = str(sweep.out / preset / name)
    return C.validate(cfg)


def why_separate(sweep: Sweep, preset: str) -> str | None:
    """Why `preset`'s seeds train one by one (None: as one ensemble)."""
    cfg = C.apply_overrides(C.get_preset(preset), sweep.overrides)
    if not sweep.ensembles:
        return "--separate-seeds"
    if len(sweep.seeds) < 2:
        return "one seed"
    if cfg.model.spectral_norm and cfg.speed.ensemble_vmap is True:
        return "spectral norm has no torch.vmap rule"
    return None


def ensemble_config(sweep: Sweep, preset: str, steps: int | None) -> C.Config:
    """The config of `preset`'s seeds as one ensemble, for seeds x minutes or `steps`."""
    cfg = run_config(sweep, preset, sweep.seeds[0], steps)
    cfg.train.ensemble, cfg.train.seeds = len(sweep.seeds), tuple(sweep.seeds)
    if not steps:
        cfg.train.minutes = sweep.minutes * len(sweep.seeds)
    name = "seeds-" + "-".join(map(str, sweep.seeds)) + (f"-steps-{steps}" if steps else "")
    cfg.run.out = str(sweep.out / preset / name)
    return C.validate(cfg)


def members(record: dict | int, seeds: list[int]) -> list[dict] | int:
    """An ensemble run's record as one record per member (seed), as separate runs give."""
    if isinstance(record, int):
        return record
    shared = {k: v for k, v in record.items() if k != "members"}
    return [{**shared, **m, "seed": seed, "ensemble": len(seeds)}
            for seed, m in zip(seeds, record.get("members", []))]


def train_and_evaluate(cfg: C.Config, evaluate: Evaluate) -> dict | int:
    """Train one run (or reuse it if a sweep already finished it) and evaluate its last
    checkpoint. Returns the result record, or the exit code of an interrupted run."""
    from ..training.loop import train  # here: `wganlab --help` need not load the training stack

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
    separate = {p: why_separate(sweep, p) for p in sweep.presets}
    for preset in [p for p in sweep.presets if separate[p] is None]:
        records = members(train_and_evaluate(ensemble_config(sweep, preset, None), evaluate),
                          sweep.seeds)
        if isinstance(records, int):
            return records
        equal_time += records
    # Seeds outer, presets inner: a change in machine load during the sweep then falls on
    # every preset alike instead of on whichever happens to run last.
    for seed in sweep.seeds:
        for preset in [p for p in sweep.presets if separate[p] is not None]:
            record = train_and_evaluate(run_config(sweep, preset, seed, None), evaluate)
            if isinstance(record, int):
                return record
            equal_time.append(record)

    equal_steps, s = [], min(r["steps"] for r in equal_time)
    retrained = {}  # preset -> its ensemble's members trained again to s steps
    for record in equal_time if sweep.equal_steps else []:
        if record["steps"] > s and record.get("ensemble"):
            if record["preset"] not in retrained:
                retrained[record["preset"]] = members(train_and_evaluate(
                    ensemble_config(sweep, record["preset"], s), evaluate), sweep.seeds)
            found = retrained[record["preset"]]
            if isinstance(found, int):
                return found
            record = found[sweep.seeds.index(record["seed"])]
        elif record["steps"] > s:
            record = train_and_evaluate(
                run_config(sweep, record["preset"], record["seed"], s), evaluate)
            if isinstance(record, int):
                return record
        equal_steps.append(record)

    summary = summarise(equal_time, equal_steps, sweep.presets)
    table = format_table(summary, sweep.minutes, s if equal_steps else None)
    together = [p for p in sweep.presets if separate[p] is None]
    table += "\n\n" + ensemble_note(together, separate, len(sweep.seeds), sweep.minutes)
    write_json(sweep.out / "sweep.json", {
        "presets": sweep.presets, "seeds": sweep.seeds, "minutes": sweep.minutes,
        "equal_steps": s if equal_steps else None, "overrides": sweep.overrides,
        "summary": summary, "runs": {"equal_time": equal_time, "equal_steps": equal_steps}})
    (sweep.out / "sweep.md").write_text(table + "\n")
    plot_sweep(summary, sweep.out / "sweep.png", sweep.minutes, s if equal_steps else None)
    print(table)
    print(f"Wrote {sweep.out / 'sweep.md'}, sweep.json and sweep.png")
    return 0


def ensemble_note(together: list[str], separate: dict, seeds: int, minutes: float) -> str:
    """The table's line on which presets trained their seeds as one ensemble."""
    lines = []
    if together:
        lines.append(f"Trained as one ensemble of {seeds} seeds ({seeds} x {minutes:g} min of "
                     f"wall time, member k exactly seed k's run): {', '.join(together)}.")
    apart = [f"{p} ({why})" for p, why in separate.items() if why is not None]
    if apart:
        lines.append(f"Seeds trained one by one ({minutes:g} min each): {', '.join(apart)}.")
    return "\n".join(lines)


# Evaluation, through one function so the sweep does not depend on how it is done.

def make_evaluate(sweep: Sweep) -> Evaluate:
    """wganlab.evaluate's evaluate_run: the run's newest checkpoint, `eval_samples` generated
    images against the whole test split (its features are computed once per process); it
    writes RUN/eval.json, which the run's report then shows."""
    from ..base.device import pick_device
    from ..metrics.evaluate import evaluate_run
    from ..reporting.report import write_report

    device = str(pick_device(sweep.overrides.get("run", {}).get("device", "auto")))

    def evaluate(run_dir: Path) -> dict:
        record = evaluate_run(run_dir, n=sweep.eval_samples, seed=sweep.eval_seed,
                              device=device)
        # Training has just drawn these figures and nothing they show has changed since.
        drawn = [run_dir / n for n in ("learning_curve.png", "samples_by_epoch.png")]
        write_report(run_dir, drawn=[p for p in drawn if p.exists()])
        return record

    return evaluate
