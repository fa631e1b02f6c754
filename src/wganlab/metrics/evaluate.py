"""Evaluate samples against a data set's reference split, with every number's provenance.

    evaluate_images(fake, dataset)  uint8 samples -> metrics + provenance
    evaluate_run(run)               sample a run's generator, evaluate, write eval.json
    evaluate_real(dataset)          the floor: training images against the test split
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..base import checkpoint
from ..base.files import atomic_write
from ..data import load_dataset
from ..data.tensors import fit_shape
from . import compute_all, extract_features, fid_bootstrap, get_evaluator

_REFERENCE_CACHE: dict = {}


def evaluator_provenance(evaluator) -> dict:
    """Which evaluator measured: name, data set, SHA-256 of its weights, test accuracy."""
    info = getattr(evaluator, "info", {}) or {}
    return {"evaluator": info.get("architecture", {}).get("name", type(evaluator).__name__)
            if isinstance(info.get("architecture"), dict) else type(evaluator).__name__,
            "evaluator_dataset": info.get("dataset"),
            "evaluator_sha256": info.get("sha256"),
            "evaluator_test_accuracy": info.get("test_accuracy")}


def for_evaluator(images: torch.Tensor, evaluator) -> torch.Tensor:
    """uint8 images at the evaluator's input shape (one that takes any size gets them as
    they are). Real and generated images both pass here, so both are resized alike."""
    shape = getattr(evaluator, "input_shape", None)
    return images if shape is None else fit_shape(images, tuple(shape))


def reference_features(dataset: str, split: str, evaluator, data_dir=None, device="cpu",
                       image_shape=None) -> tuple[np.ndarray, str]:
    """Features of a whole reference split loaded at image_shape (the samples' shape; None:
    the data set's own), cached per process (they never change)."""
    shape = tuple(image_shape) if image_shape is not None else None
    key = (dataset, split, evaluator_provenance(evaluator)["evaluator_sha256"], data_dir, shape)
    if key not in _REFERENCE_CACHE:
        data = load_dataset(dataset, split, data_dir, shape)
        features, _ = extract_features(evaluator, for_evaluator(data.images, evaluator),
                                       device=device)
        _REFERENCE_CACHE[key] = (features, data.source)
    return _REFERENCE_CACHE[key]


def evaluate_images(fake: torch.Tensor, dataset: str, split: str = "test", data_dir=None,
                    seed: int = 0, bootstrap: int = 0, device="cpu", evaluator=None) -> dict:
    """Every metric for uint8 samples (N, C, H, W) against `dataset`'s `split`."""
    started = time.time()
    evaluator = evaluator or get_evaluator(dataset, device, data_dir)
    f_real, source = reference_features(dataset, split, evaluator, data_dir, device,
                                        tuple(fake.shape[1:]))
    f_fake, p_fake = extract_features(evaluator, for_evaluator(fake, evaluator), device=device)
    num_classes = None if p_fake is None else p_fake.shape[1]
    record = compute_all(f_real, f_fake, probs_fake=p_fake, num_classes=num_classes, seed=seed)
    if bootstrap:
        low, high = fid_bootstrap(f_real, f_fake, n_boot=bootstrap, seed=seed)
        record.update(fid_low=low, fid_high=high, bootstrap=bootstrap)
    record.update(n_real=len(f_real), n_fake=len(f_fake), reference=f"{dataset}:{split}",
                  reference_source=source, seed=seed, **evaluator_provenance(evaluator),
                  eval_seconds=round(time.time() - started, 2))
    return record


def evaluate_run(run: str | Path, checkpoint_path=None, n: int = 10_000, seed: int = 0,
                 bootstrap: int = 0, device="cpu", split: str = "test",
                 weights: str = "ema", member: int | None = None) -> dict:
    """Sample a run's generator (its EMA weights where it has them, unless weights="raw"),
    evaluate it against the test split, write RUN/eval.json.

    An ensemble run (--ensemble N): `member` K evaluates that model alone (written to
    RUN/eval.memberK.json); None evaluates every member, each on the same z, and the record
    holds the members' mean (under the usual names), their standard deviation (NAME_std) and
    every member's record ("members")."""
    from ..generate import ensemble_size, load_generator, sample

    members = ensemble_size(run, checkpoint_path)
    if members > 1 and member is None:
        each = [evaluate_run(run, checkpoint_path, n, seed, bootstrap, device, split, weights,
                             k) for k in range(members)]
        record = summarise_members(each)
        _write_eval(run, record["checkpoint"], record, "eval.json")
        return record
    generator = load_generator(run, device, weights, checkpoint=checkpoint_path,
                               member=member)
    cfg, info = generator.config, generator.provenance
    fake = sample(generator, n, seed)
    record = evaluate_images(fake, cfg.run.dataset, split, cfg.run.data_dir, seed, bootstrap,
                             device)
    record.update(run=str(run), preset=cfg.preset, checkpoint=info["checkpoint"],
                  step=info["step"], weights=info["weights"], **_note(info),
                  train_seconds=_train_seconds(info["checkpoint"]))
    if member is not None:
        record["member"] = member
    name = "eval.json" if members == 1 else f"eval.member{member}.json"
    _write_eval(run, info["checkpoint"], record, name)
    return record


def _write_eval(run, checkpoint_path: str, record: dict, name: str) -> None:
    run_dir = Path(run) if Path(run).is_dir() else Path(checkpoint_path).parent.parent
    if run_dir.joinpath("config.json").exists():
        atomic_write(run_dir / name,
                     lambda f: f.write(json.dumps(_plain(record), indent=2).encode()))


def summarise_members(records: list[dict]) -> dict:
    """One record for an ensemble's members: each metric's mean over the members under its
    own name and their sample standard deviation as NAME_std; the members' records kept."""
    out = {k: v for k, v in records[0].items() if k != "member"}
    for key, _ in COLUMNS:
        values = [r[key] for r in records if isinstance(r.get(key), (int, float))]
        if len(values) == len(records):
            out[key] = float(np.mean(values))
            out[f"{key}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    out["members"] = [_plain(r) for r in records]
    return out


def _note(info: dict) -> dict:
    return {"note": info["note"]} if "note" in info else {}


def _train_seconds(path: str) -> float | None:
    if not path.endswith(".pt"):
        return None
    return checkpoint.load(path).get("elapsed")


def evaluate_real(dataset: str, n: int = 10_000, seed: int = 0, data_dir=None,
                  device="cpu") -> dict:
    """The floor: n random training images scored as if they were samples."""
    evaluator = get_evaluator(dataset, device, data_dir)
    train = load_dataset(dataset, "train", data_dir)
    pick = torch.randperm(len(train.images), generator=torch.Generator().manual_seed(seed))[:n]
    record = evaluate_images(train.images[pick], dataset, "test", data_dir, seed, 0, device,
                             evaluator)
    record.update(run=f"real:{dataset}:train", preset="real data", step=None)
    return record


def _plain(record: dict) -> dict:
    out = {}
    for k, v in record.items():
        if isinstance(v, (np.floating, np.integer)):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = str(v)
        out[k] = v
    return out


COLUMNS = [("fid", "FID"), ("kid_mean", "KID"), ("precision", "prec"), ("recall", "recall"),
           ("density", "density"), ("coverage", "cover"), ("modes_covered", "modes"),
           ("class_kl_to_uniform", "KL(cls||U)"), ("mean_confidence", "conf")]


def format_table(records: list[dict]) -> str:
    """A plain-text table, one row per record (an ensemble's: one per member, then the mean
    and the standard deviation), then the provenance each shares."""
    head = f"{'run':<28}{'step':>8}" + "".join(f"{h:>11}" for _, h in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in records:
        rows = [(f"member {m['member']}", m) for m in r.get("members", [])] or [(r.get("run"), r)]
        if "members" in r:
            rows += [("mean", r), ("+- std", {k[:-4]: v for k, v in r.items()
                                              if k.endswith("_std")})]
        for label, row in rows:
            cells = "".join(f"{_fmt(row.get(k)):>11}" for k, _ in COLUMNS)
            step = row.get("step", r.get("step")) if label != "+- std" else None
            lines.append(f"{str(label or '')[-28:]:<28}{_fmt(step):>8}{cells}")
    r = records[0]
    lines.append(f"n_real={r['n_real']} n_fake={r['n_fake']} reference={r['reference']} "
                 f"evaluator={r['evaluator']} sha256={str(r['evaluator_sha256'])[:12]} "
                 f"test_acc={r['evaluator_test_accuracy']} seed={r['seed']}")
    if "fid_low" in r:
        lines.append(f"FID {r['bootstrap']}-sample bootstrap 95% interval: "
                     f"[{r['fid_low']:.3f}, {r['fid_high']:.3f}]")
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)
