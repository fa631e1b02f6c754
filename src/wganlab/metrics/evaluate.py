"""Evaluate samples against a data set's reference split, with every number's provenance.

    evaluate_images(fake, dataset)  uint8 samples -> metrics + provenance (and, given the
                                    classes they were drawn for, per-class metrics)
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
from .per_class import class_accuracy, per_class_fid

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
    return _reference(dataset, split, evaluator, data_dir, device, image_shape)[:2]


def _reference(dataset, split, evaluator, data_dir, device, image_shape):
    """(features, source, labels or None) of a reference split, cached."""
    shape = tuple(image_shape) if image_shape is not None else None
    key = (dataset, split, evaluator_provenance(evaluator)["evaluator_sha256"], data_dir, shape)
    if key not in _REFERENCE_CACHE:
        data = load_dataset(dataset, split, data_dir, shape)
        features, _ = extract_features(evaluator, for_evaluator(data.images, evaluator),
                                       device=device)
        labels = None if data.labels is None else data.labels.numpy()
        _REFERENCE_CACHE[key] = (features, data.source, labels)
    return _REFERENCE_CACHE[key]


def evaluate_images(fake: torch.Tensor, dataset: str, split: str = "test", data_dir=None,
                    seed: int = 0, bootstrap: int = 0, device="cpu", evaluator=None,
                    labels=None, class_names=None) -> dict:
    """Every metric for uint8 samples (N, C, H, W) against `dataset`'s `split`.

    labels: the class each sample was drawn for (a conditional generator's), class_names
    their names: adds class accuracy (where the evaluator classifies the same classes) and
    per-class FID (where the reference split has labels), per class by name and overall.
    """
    started = time.time()
    evaluator = evaluator or get_evaluator(dataset, device, data_dir)
    f_real, source, real_labels = _reference(dataset, split, evaluator, data_dir, device,
                                             tuple(fake.shape[1:]))
    f_fake, p_fake = extract_features(evaluator, for_evaluator(fake, evaluator), device=device)
    num_classes = None if p_fake is None else p_fake.shape[1]
    record = compute_all(f_real, f_fake, probs_fake=p_fake, num_classes=num_classes, seed=seed)
    if labels is not None:
        record.update(_per_class(labels, class_names, p_fake, f_real, real_labels, f_fake))
    if bootstrap:
        low, high = fid_bootstrap(f_real, f_fake, n_boot=bootstrap, seed=seed)
        record.update(fid_low=low, fid_high=high, bootstrap=bootstrap)
    record.update(n_real=len(f_real), n_fake=len(f_fake), reference=f"{dataset}:{split}",
                  reference_source=source, seed=seed, **evaluator_provenance(evaluator),
                  eval_seconds=round(time.time() - started, 2))
    return record


def _per_class(labels, names, p_fake, f_real, real_labels, f_fake) -> dict:
    """Class accuracy and per-class FID, each per class keyed by the class's name."""
    asked = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
    k = len(names) if names else int(asked.max()) + 1
    names = list(names) if names else [str(i) for i in range(k)]
    out: dict = {"class_names": names}
    if p_fake is not None and p_fake.shape[1] == k:  # the evaluator knows these classes
        accuracy = class_accuracy(p_fake.argmax(axis=1), asked, k)
        accuracy["class_accuracy_per_class"] = dict(zip(names,
                                                        accuracy["class_accuracy_per_class"]))
        out.update(accuracy)
    if real_labels is not None and int(real_labels.max()) < k:
        fids = per_class_fid(f_real, real_labels, f_fake, asked, k)
        out.update(fid_per_class=dict(zip(names, fids["fid_per_class"])),
                   fid_class_mean=fids["fid_class_mean"])
    return out


def evaluate_run(run: str | Path, checkpoint_path=None, n: int = 10_000, seed: int = 0,
                 bootstrap: int = 0, device="cpu", split: str = "test",
                 weights: str = "ema", out: str | Path | None = None,
                 member: int | None = None) -> dict:
    """Sample a run's generator (its EMA weights where it has them, unless weights="raw"),
    evaluate it against the test split, and write the record to `out`, or beside the run the
    evaluated checkpoint belongs to (eval_path).

    An ensemble run (--ensemble N): `member` K evaluates that model alone (written to
    RUN/eval.memberK.json); None evaluates every member, each on the same z, and the record
    holds the members' mean (under the usual names), their standard deviation (NAME_std) and
    every member's record ("members")."""
    from ..conditioning import asked_classes, class_names
    from ..generate import ensemble_size, load_generator, sample

    members = ensemble_size(run, checkpoint_path)
    if members > 1 and member is None:
        each = [evaluate_run(run, checkpoint_path, n, seed, bootstrap, device, split, weights,
                             member=k) for k in range(members)]
        record = summarise_members(each)
        _write_eval(run, record["checkpoint"], record, out, "eval.json")
        return record
    generator = load_generator(run, device, weights, checkpoint=checkpoint_path,
                               member=member)
    cfg, info = generator.config, generator.provenance
    # A conditional generator is asked for every class in turn (n / K images each).
    labels = asked_classes(generator, None, n, "cpu")
    fake = sample(generator, n, seed, labels=labels)
    record = evaluate_images(fake, cfg.run.dataset, split, cfg.run.data_dir, seed, bootstrap,
                             device, labels=labels, class_names=class_names(generator) or None)
    # The run is the one the checkpoint lies in, whatever RUN was named beside --checkpoint.
    record.update(run=str(run_of(info["checkpoint"]) or run), preset=cfg.preset,
                  checkpoint=info["checkpoint"], step=info["step"], weights=info["weights"],
                  **_note(info),
                  train_seconds=_train_seconds(info["checkpoint"]))
    if member is not None:
        record["member"] = member
    name = "eval.json" if members == 1 else f"eval.member{member}.json"
    _write_eval(run, info["checkpoint"], record, out, name)
    return record


def _write_eval(run, checkpoint: str, record: dict, out, name: str) -> None:
    """The record to `out`, else as `name` beside the run the checkpoint belongs to."""
    path = eval_path(run, checkpoint, out)
    if path is not None:
        path = path if out is not None else path.with_name(name)
        atomic_write(path, lambda f: f.write(json.dumps(_plain(record), indent=2).encode()),
                     follow_link=out is not None)


def _is_run(folder: Path) -> bool:
    return folder.is_dir() and (folder / "config.json").is_file()


def run_of(checkpoint_file: str | Path) -> Path | None:
    """The run directory a checkpoint file lies in (RUN/checkpoints/x.pt), if it lies in one."""
    path = Path(checkpoint_file)
    folder = path.parent.parent
    return folder if path.suffix == ".pt" and path.parent.name == "checkpoints" \
        and _is_run(folder) else None


def eval_path(run: str | Path, checkpoint_file: str | Path,
              out: str | Path | None = None) -> Path | None:
    """Where an evaluation is written: `out`, else eval.json of the run the evaluated
    checkpoint lies in, never the run named when the checkpoint is another run's; None for
    a checkpoint or export outside any run."""
    if out is not None:
        return Path(out)
    owner = run_of(checkpoint_file)
    if owner is not None:
        return owner / "eval.json"
    folder = Path(run)
    inside = Path(checkpoint_file).resolve().is_relative_to(folder.resolve())
    return folder / "eval.json" if _is_run(folder) and inside else None


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
           ("class_kl_to_uniform", "KL(cls||U)"), ("mean_confidence", "conf"),
           ("class_accuracy", "class acc"), ("class_accuracy_min", "worst cls"),
           ("fid_class_mean", "class FID")]


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
