"""Defect 10: evaluation at a run's own image shape. The reference images are loaded at the
shape of the samples and both go to the evaluator's input by the same resize, and the cache
of reference features is kept per shape.

The checks score the test split, loaded at the run's shape, as if it were generated: the
features of "real" and "fake" must then be identical, which holds only if both reach the
evaluator by the same path (so their FID is exactly 0).
"""

import json

import numpy as np
import pytest
import torch
from torch import nn

from wganlab.data import load_dataset
from wganlab.metrics import Evaluator, evaluate, fid_from_features

from .runs import TINY


class AnySize(nn.Module):
    """Like Inception here (input_shape None: takes any size): 16 features per image, the
    4x4 average pooling of its first channel."""

    input_shape = None
    info = {"architecture": {"name": "any-size"}, "sha256": "cd" * 32}

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return nn.functional.adaptive_avg_pool2d(x[:, :1], 4).flatten(1), None


@pytest.fixture
def cnn(monkeypatch, one_thread):
    """An untrained 28x28 CNN evaluator, as for MNIST-like data sets."""
    torch.manual_seed(0)
    ev = Evaluator(feature_dim=8, width=4).eval().requires_grad_(False)
    ev.info = {"architecture": {"name": "stub-cnn"}, "sha256": "ab" * 32}
    monkeypatch.setattr(evaluate, "get_evaluator", lambda *a, **k: ev)
    evaluate._REFERENCE_CACHE.clear()
    yield ev
    evaluate._REFERENCE_CACHE.clear()


@pytest.fixture
def features(monkeypatch):
    """The (real, fake) feature arrays evaluate_images computes, instead of every metric."""
    seen = []

    def compute_all(f_real, f_fake, **kwargs):
        seen.append((f_real, f_fake))
        return {"fid": fid_from_features(f_real, f_fake)}

    monkeypatch.setattr(evaluate, "compute_all", compute_all)
    return seen


def test_the_test_split_at_the_runs_shape_scores_zero(cnn, features):
    shapes = [(1, 32, 32), (1, 16, 16), (3, 28, 28)]
    for shape in shapes:
        real = load_dataset("synthetic", "test", image_shape=shape).images
        record = evaluate.evaluate_images(real, "synthetic", "test", evaluator=cnn)
        f_real, f_fake = features[-1]
        np.testing.assert_array_equal(f_real, f_fake)
        assert record["fid"] == pytest.approx(0.0, abs=1e-6), shape
    assert len(evaluate._REFERENCE_CACHE) == len(shapes)  # one entry per shape


def test_an_any_size_evaluator_sees_the_reference_at_the_samples_shape(one_thread, features):
    """For RGB data (Inception takes any size) the mismatch was silent: no error, FID > 0."""
    evaluate._REFERENCE_CACHE.clear()
    real = load_dataset("synthetic", "test", image_shape=(1, 16, 16)).images
    evaluate.evaluate_images(real, "synthetic", "test", evaluator=AnySize())
    np.testing.assert_array_equal(*features[-1])
    evaluate._REFERENCE_CACHE.clear()


def test_train_evaluates_at_another_image_shape(cnn, tmp_path, cli):
    run = tmp_path / "run"
    flags = [a if a != "1,8,8" else "1,32,32" for a in TINY]
    code, _, err = cli("train", *flags, "--out", run, "--steps", 4, "--eval-every", 2,
                       "--eval-n", 32)
    assert code == 0, err
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r.get("eval")]
    assert [r["step"] for r in evals] == [2, 4] and all(r["fid"] > 0 for r in evals)
