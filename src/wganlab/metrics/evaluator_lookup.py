"""Which evaluator a data set gets, and where its weights come from: shipped in the
package, cached by an earlier call, or trained once now and cached.

Kept apart from evaluator.py (the network and its files) so that training an evaluator, which
builds on evaluator.py, is never imported back by it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..errors import CheckpointError
from . import evaluator_training
from .evaluator import GRAYSCALE_28, WEIGHTS_DIR, load_evaluator
from .inception import load_inception


def cache_dir() -> Path:
    """Where evaluators trained on demand are kept: $WGANLAB_DATA/evaluators, else
    ~/.cache/wganlab/evaluators (the same root as the data cache)."""
    root = os.environ.get("WGANLAB_DATA")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "wganlab"
    return base / "evaluators"


def weights_filename(dataset: str) -> str:
    """The file name of a data set's evaluator weights, shipped or cached."""
    return f"{dataset}-evaluator.safetensors"


def get_evaluator(dataset: str, device="cpu", data_dir=None, train: bool = True):
    """The evaluator for a data set, ready for `extract_features`.

    Grayscale 28x28 data sets (mnist, fashion-mnist, synthetic) use the CNN: the weights shipped
    in wganlab/weights, else those cached by an earlier call, else (train=True) a network
    trained now (a few minutes on CPU; says so on stderr) and cached. Any other data set uses
    Inception-v3 from the `fid` extra (see metrics.inception); nothing is downloaded.
    """
    if dataset not in GRAYSCALE_28:
        return load_inception(device)
    for folder in (WEIGHTS_DIR, cache_dir()):
        path = folder / weights_filename(dataset)
        if path.is_file():
            return load_evaluator(path, device)
    path = cache_dir() / weights_filename(dataset)
    if not train:
        raise CheckpointError(f"no evaluator weights for {dataset!r} in {WEIGHTS_DIR} or "
                              f"{path.parent}; run `python -m wganlab.metrics.make_evaluator "
                              f"--dataset {dataset} --out {path}`")
    print(f"wganlab: no evaluator weights for {dataset!r}; training one now (a few minutes "
          f"on CPU) and caching it at {path}", file=sys.stderr)
    info = evaluator_training.train_evaluator(
        dataset, path, seed=0, device=device, data_dir=data_dir,
        progress=lambda line: print(f"wganlab: {line}", file=sys.stderr))
    verdict = "" if info["test_accuracy"] >= info["target_accuracy"] else (
        f", BELOW its target {info['target_accuracy']}: metrics from it are less reliable")
    print(f"wganlab: evaluator for {dataset!r} trained: test accuracy "
          f"{info['test_accuracy']:.4f}{verdict}", file=sys.stderr)
    return load_evaluator(path, device)
