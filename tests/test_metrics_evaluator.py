"""Evaluator networks: shapes, batching, safetensors I/O, deterministic training, lookup."""

import dataclasses
import functools
import json
import sys
import types

import numpy as np
import pytest
import torch

from wganlab.data import load_dataset
from wganlab.errors import CheckpointError, DataError
from wganlab.metrics import (
    Evaluator,
    InceptionUnavailable,
    compute_all,
    evaluator_training,
    extract_features,
    get_evaluator,
    inception,
    load_evaluator,
    save_evaluator,
    train_evaluator,
)
from wganlab.metrics.evaluator import WEIGHTS_DIR, file_sha256

SHIPPED = WEIGHTS_DIR / "fashion-mnist-evaluator.safetensors"


@functools.cache
def _tiny(split):
    full = load_dataset("synthetic", split)
    n = 128 if split == "train" else 64
    return dataclasses.replace(full, images=full.images[:n], labels=full.labels[:n])


def tiny_synthetic(name, split="train", data_dir=None, **kwargs):
    """The synthetic data set cut to a few images, so training takes well under a second."""
    return dataclasses.replace(_tiny(split), name=name)


def random_images(n, seed=0):
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8,
                         generator=torch.Generator().manual_seed(seed))


def test_features_and_logits_shapes():
    torch.manual_seed(0)
    ev = Evaluator().eval()
    x = torch.zeros(4, 1, 28, 28)
    features, logits = ev(x)
    assert features.shape == (4, 128) and logits.shape == (4, 10)
    torch.testing.assert_close(ev.features(x), features)
    torch.testing.assert_close(ev.logits(x), logits)
    assert Evaluator(feature_dim=32, num_classes=3).eval()(x)[1].shape == (4, 3)


def test_extract_features_batches_agree_and_give_probabilities():
    torch.manual_seed(0)
    ev = Evaluator().eval()
    images = random_images(7)
    f_small, p_small = extract_features(ev, images, batch_size=3)
    f_big, p_big = extract_features(ev, images.numpy(), batch_size=500)
    assert f_small.dtype == np.float64 and f_small.shape == (7, 128)
    assert p_small.shape == (7, 10)
    np.testing.assert_allclose(f_small, f_big, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p_small.sum(axis=1), 1.0)
    np.testing.assert_allclose(p_small, p_big, rtol=1e-5, atol=1e-7)


def test_extract_features_rejects_bad_images():
    ev = Evaluator().eval()
    with pytest.raises(TypeError, match="uint8"):
        extract_features(ev, torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"takes \(1, 28, 28\)"):
        extract_features(ev, torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="4-D"):
        extract_features(ev, torch.zeros(28, 28, dtype=torch.uint8))


def test_save_load_round_trip_and_tamper_detection(tmp_path):
    torch.manual_seed(0)
    ev = Evaluator().eval()
    path = tmp_path / "ev.safetensors"
    sidecar = save_evaluator(ev, path, {"dataset": "test"})
    assert sidecar["sha256"] == file_sha256(path)
    assert json.loads(path.with_suffix(".json").read_text()) == sidecar
    loaded = load_evaluator(path)
    x = torch.randn(3, 1, 28, 28)
    torch.testing.assert_close(loaded(x)[0], ev(x)[0])

    path.write_bytes(path.read_bytes()[:-1] + b"\x00")  # flip the last byte
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_evaluator(path)
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="sidecar missing"):
        load_evaluator(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_evaluator(tmp_path / "absent.safetensors")


def test_shipped_weights_match_their_sidecar():
    info = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert file_sha256(SHIPPED) == info["sha256"]
    assert info["dataset"] == "fashion-mnist" and info["test_accuracy"] >= 0.92
    assert "make_evaluator --dataset fashion-mnist" in info["command"]
    ev = load_evaluator(SHIPPED)
    assert ev.input_shape == (1, 28, 28) and ev.feature_dim == 128
    assert isinstance(get_evaluator("fashion-mnist", train=False), Evaluator)


def test_training_is_deterministic(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluator_training, "load_dataset", tiny_synthetic)
    a = train_evaluator("synthetic", tmp_path / "a.safetensors", epochs=1, seed=3)
    b = train_evaluator("synthetic", tmp_path / "b.safetensors", epochs=1, seed=3)
    c = train_evaluator("synthetic", tmp_path / "c.safetensors", epochs=1, seed=4)
    assert a["sha256"] == b["sha256"] != c["sha256"]
    assert a["test_size"] == 64
    # The recorded accuracy is the saved network's own on the 64 test images, by hand.
    test = _tiny("test")
    model = load_evaluator(tmp_path / "a.safetensors")
    with torch.no_grad():
        predicted = model(test.images.float() / 127.5 - 1)[1].argmax(1)
    assert a["test_accuracy"] == (predicted == test.labels).sum().item() / 64
    assert "--dataset synthetic" in a["command"] and "--seed 3" in a["command"]
    with pytest.raises(ValueError, match="no CNN evaluator recipe"):
        train_evaluator("cifar10", tmp_path / "d.safetensors")


def test_get_evaluator_trains_once_then_uses_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WGANLAB_DATA", str(tmp_path))
    monkeypatch.setattr(evaluator_training, "load_dataset", tiny_synthetic)
    monkeypatch.setitem(evaluator_training.RECIPES, "synthetic",
                        {"epochs": 1, "flip": False, "target": 1.01})
    with pytest.raises(CheckpointError, match="make_evaluator --dataset synthetic"):
        get_evaluator("synthetic", train=False)

    first = get_evaluator("synthetic")
    err = capsys.readouterr().err
    assert "training one now" in err and "epoch 1/1" in err and "BELOW its target" in err
    cached = tmp_path / "evaluators" / "synthetic-evaluator.safetensors"
    assert cached.is_file() and cached.with_suffix(".json").is_file()

    def must_not_train(*args, **kwargs):
        raise AssertionError("trained again despite the cache")

    monkeypatch.setattr(evaluator_training, "train_evaluator", must_not_train)
    second = get_evaluator("synthetic")
    assert capsys.readouterr().err == ""
    x = torch.zeros(2, 1, 28, 28)
    torch.testing.assert_close(first(x)[1], second(x)[1])


def test_rgb_without_inception_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setattr(inception, "_installed", lambda module: False)
    with pytest.raises(InceptionUnavailable, match=r"pip install -e '\.\[fid\]'"):
        get_evaluator("cifar10")
    monkeypatch.setattr(inception, "_installed", lambda module: module == "torch_fidelity")
    monkeypatch.setattr(inception, "hub_checkpoints", lambda: tmp_path)
    with pytest.raises(InceptionUnavailable, match="weights-inception-2015-12-05"):
        get_evaluator("folder:/some/pictures")


def test_features_feed_compute_all():
    ev = load_evaluator(SHIPPED)
    images = load_dataset("synthetic", "test").images
    f_real, p_real = extract_features(ev, images[:128])
    f_fake, p_fake = extract_features(ev, images[128:])
    same = compute_all(f_real, f_real, probs_fake=p_real, num_classes=10)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert same["precision"] == same["recall"] == same["coverage"] == 1.0
    shifted = compute_all(f_real, f_fake, probs_fake=p_fake, num_classes=10)
    assert shifted["fid"] > same["fid"]


@pytest.mark.slow
def test_shipped_evaluator_accuracy_on_real_fashion_mnist():
    try:
        test = load_dataset("fashion-mnist", "test", download=False)
    except DataError as err:
        pytest.skip(f"Fashion-MNIST test split not available offline: {err}")
    images, labels = test.images[:2000], test.labels[:2000]
    _, probs = extract_features(load_evaluator(SHIPPED), images)
    accuracy = float((probs.argmax(axis=1) == labels.numpy()).mean())
    assert accuracy >= 0.9



def test_make_evaluator_command_line(tmp_path, monkeypatch, capsys):
    from wganlab.metrics import make_evaluator

    monkeypatch.setattr(evaluator_training, "load_dataset", tiny_synthetic)
    out = tmp_path / "cli.safetensors"
    make_evaluator.main(["--dataset", "synthetic", "--out", str(out), "--epochs", "1"])
    printed = json.loads(capsys.readouterr().out)
    assert printed["sha256"] == file_sha256(out)
    assert printed["command"].endswith(f"--out {out} --epochs 1 --seed 0 --device cpu")
    with pytest.raises(SystemExit):
        make_evaluator.main(["--dataset", "cifar10"])


def test_inception_adapter_with_a_stub_torch_fidelity(monkeypatch, tmp_path):
    seen = {}

    class StubExtractor(torch.nn.Module):  # stands in for the 100 MB network
        def __init__(self, name, features_list, feature_extractor_weights_path=None):
            super().__init__()
            seen.update(features=features_list, weights=feature_extractor_weights_path)
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            seen["dtype"], seen["shape"] = x.dtype, tuple(x.shape)
            pooled = x.float().mean(dim=(1, 2, 3))[:, None] * self.scale
            return pooled.expand(-1, 2048), pooled.expand(-1, 1008)

    module = types.ModuleType("torch_fidelity.feature_extractor_inceptionv3")
    module.FeatureExtractorInceptionV3 = StubExtractor
    monkeypatch.setitem(sys.modules, "torch_fidelity", types.ModuleType("torch_fidelity"))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setattr(inception, "_installed", lambda name: name == "torch_fidelity")
    monkeypatch.setattr(inception, "hub_checkpoints", lambda: tmp_path)
    (tmp_path / inception.FIDELITY_WEIGHTS).write_bytes(b"stub")

    ev = get_evaluator("cifar10")
    images = torch.full((3, 3, 32, 32), 200, dtype=torch.uint8)
    features, probs = extract_features(ev, images, batch_size=2)
    assert features.shape == (3, 2048) and probs.shape == (3, 1008)
    assert seen["dtype"] == torch.uint8 and seen["shape"] == (1, 3, 32, 32)
    assert features[0, 0] == pytest.approx(200.0)  # uint8 pixels survive the round trip
    assert seen["weights"] == str(tmp_path / inception.FIDELITY_WEIGHTS)
    gray = extract_features(ev, torch.zeros(2, 1, 28, 28, dtype=torch.uint8))[0]
    assert gray.shape == (2, 2048)  # grayscale is repeated to RGB
