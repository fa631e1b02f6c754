"""Labels from every source that has them: named data sets (with their class names), image
folders (one subfolder per class), tensors and Datasets from Python; a conditional run on
data that cannot condition is refused up front, naming the data set."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

import wganlab
from test_user_data import Pairs
from wganlab.cli import main
from wganlab.config import apply_overrides, get_preset
from wganlab.data import load_dataset
from wganlab.data.user import from_images
from wganlab.errors import ConfigError
from wganlab.training import loop


def save(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(path)


def test_named_data_sets_carry_their_class_names():
    data = load_dataset("synthetic", "test")
    assert len(data.class_names) == data.num_classes == 10
    assert data.class_names[2] == "bar 36 deg"
    from wganlab.data.load import CLASS_NAMES
    assert CLASS_NAMES["fashion-mnist"][7] == "Sneaker" and len(CLASS_NAMES["cifar10"]) == 10


def test_a_folder_takes_its_classes_from_subfolders(tmp_path):
    for name, value in (("Sneaker", 10), ("Bag", 200)):
        for i in range(3):
            save(tmp_path / name / f"{i}.png", value + i)
    save(tmp_path / "Bag" / "deeper" / "x.png", 250)  # below a class folder: still a Bag
    data = load_dataset(f"folder:{tmp_path}", image_shape=(1, 8, 8))
    assert data.class_names == ("Bag", "Sneaker") and data.num_classes == 2
    bright = data.images.float().mean((1, 2, 3)) > 100
    assert torch.equal(data.labels, (~bright).long())  # the Bags are the bright ones


def test_a_folder_with_loose_images_has_no_labels(tmp_path):
    save(tmp_path / "a.png", 0)
    save(tmp_path / "cls" / "b.png", 0)
    data = load_dataset(f"folder:{tmp_path}", image_shape=(1, 8, 8))
    assert data.labels is None and data.class_names is None


def prepare(dataset_name, data, **model):
    cfg = apply_overrides(get_preset("fast"), {
        "model": {"conditional": "projection", **model},
        "run": {"dataset": dataset_name}})
    return loop._prepare_data(cfg, data, len(data), loop.distributed.Shard(), torch.device("cpu"))


def test_a_folder_with_one_class_is_refused(tmp_path):
    for i in range(4):
        save(tmp_path / "only" / f"{i}.png", i)
    data = load_dataset(f"folder:{tmp_path}", image_shape=(1, 8, 8))
    with pytest.raises(ConfigError, match="--conditional projection: the data set folder:.* "
                                          "has one class \\(only\\)"):
        prepare(f"folder:{tmp_path}", data)


def test_unlabelled_data_is_refused_naming_the_data_set(tmp_path):
    save(tmp_path / "a.png", 0)
    save(tmp_path / "b.png", 9)
    data = load_dataset(f"folder:{tmp_path}", image_shape=(1, 8, 8))
    with pytest.raises(ConfigError, match="the data set folder:.* has no labels: put each "
                                          "class's images in a subfolder"):
        prepare(f"folder:{tmp_path}", data)
    images = from_images(torch.zeros(4, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="data set user has no labels; pass train"):
        prepare("user", images)


@pytest.mark.parametrize("test_split,message", [
    ((None, None), "the test split, held out for the overfitting heuristic, has no labels"),
    (("a", "c"), r"has other classes \(a, c\) than the training images \(a, b\)")])
def test_auto_refuses_test_images_a_conditional_critic_cannot_score(test_split, message,
                                                                    tmp_path, capsys):
    # train/ has classes a and b; test/ loose images, or other classes.
    root = tmp_path / "data"
    for k, name in enumerate(("a", "b") * 8):
        save(root / "train" / name / f"{k}.png", k)
        save(root / "test" / (test_split[k % 2] or "") / f"{k}.png", k)
    out = tmp_path / "run"
    code = main(["train", "--preset", "fast", "--conditional", "projection",
                             "--dataset", f"folder:{root}", "--image-shape", "1,8,8",
                             "--augment", "translation", "--augment-p", "auto",
                             "--batch-size", "4", "--steps", "1", "--out", str(out),
                             "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert re.search(message, err), err
    assert not out.exists()  # refused before the run folder was made


def test_the_run_takes_the_data_sets_class_names():
    data = load_dataset("synthetic", "train")
    cfg, images, labels = prepare("synthetic", data)
    assert cfg.model.class_names == data.class_names and torch.equal(labels, data.labels)
    cfg, _, _ = prepare("synthetic", data, class_names=tuple("abcdefghij"))
    assert cfg.model.class_names[0] == "a"  # --class-names wins
    with pytest.raises(ConfigError, match="--class-names: 3 names, but the data set synthetic "
                                          "has labels up to 9"):
        prepare("synthetic", data, class_names=("a", "b", "c"))
    plain = apply_overrides(cfg, {"model": {"conditional": "none", "class_names": None}})
    cfg, _, labels = loop._prepare_data(plain, data, len(data), loop.distributed.Shard(),
                                        torch.device("cpu"))
    assert labels is None and cfg.model.class_names is None  # unconditional: as before


def test_python_data_with_labels_trains_conditionally(tmp_path, monkeypatch):
    """train(cfg, data=(images, labels)), a Dataset of pairs and a load_dataset Dataset all
    reach the loop with their labels (the loop itself is stubbed: only its input is looked
    at)."""
    seen = []
    monkeypatch.setattr(loop, "_train", lambda cfg, resume, data, init, lock: seen.append(
        (cfg, data)))
    cfg = apply_overrides(get_preset("fast"), {"model": {"conditional": "projection"},
                                               "run": {"out": str(tmp_path / "r")}})
    images = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    wganlab.train(cfg, data=(images, torch.tensor([0, 1, 2, 0, 1, 2])))
    wganlab.train(cfg, data=Pairs(images))
    named = load_dataset("synthetic", "test")
    wganlab.train(cfg, data=named)
    assert seen[0][1].labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert seen[0][1].class_names == ("0", "1", "2")
    assert seen[1][1].labels.tolist() == [i % 10 for i in range(6)]
    assert seen[2][1].class_names == named.class_names
    assert torch.equal(seen[2][1].labels, named.labels)
