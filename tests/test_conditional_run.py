"""A conditional run end to end, from the CLI and the API: it trains (and really conditions,
measured on class accuracy), samples by class, draws one row per class, walks within and
between classes, evaluates per class, reports, compares, exports with its classes on the
model card and loads back from the export and a hub folder to the same images."""

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import wganlab
from wganlab.cli import main
from wganlab.config import apply_overrides, get_preset
from wganlab.data import load_dataset
from wganlab.metrics import evaluate
from wganlab.metrics.per_class import class_accuracy, per_class_fid

TINY = ["--dataset", "synthetic", "--batch-size", "16", "--g-filters", "8", "--c-filters", "4",
        "--image-shape", "1,8,8", "--z-dim", "8", "--no-progress"]
NAMES = load_dataset("synthetic", "test").class_names


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("conditional") / "run"
    code = main(["train", "--preset", "fast", *TINY, "--conditional", "projection",
                 "--ema-decay", "0.9", "--steps", "3", "--out", str(out)])
    assert code == 0
    return out


def bar_classes(images: torch.Tensor) -> torch.Tensor:
    """The synthetic data set's class of each image, from its bar's angle (second moments of
    the brightness): class k is a bar at k * 18 degrees. A classifier in closed form."""
    x = images.float().mean(1)
    x = (x - x.amin((1, 2), keepdim=True)).clamp_min(0)
    ys = torch.arange(x.shape[1]).float().view(1, -1, 1)
    xs = torch.arange(x.shape[2]).float().view(1, 1, -1)
    mass = x.sum((1, 2)).view(-1, 1, 1)
    dy, dx = ys - (x * ys).sum((1, 2), keepdim=True) / mass, \
        xs - (x * xs).sum((1, 2), keepdim=True) / mass
    angle = 0.5 * torch.atan2(2 * (x * dx * dy).sum((1, 2)),
                              (x * dx * dx).sum((1, 2)) - (x * dy * dy).sum((1, 2)))
    return torch.round(angle % math.pi / (math.pi / 10)).long() % 10


@pytest.mark.slow
def test_a_short_real_run_draws_the_asked_for_classes(tmp_path, one_thread):
    """200 steps on the bars (one angle per class) at 16x16, at a high learning rate with a
    short EMA: the images asked for as class k show bars at k * 18 degrees far more often
    than chance (0.1); measured 0.90 (0.78 at 150 steps)."""
    real = load_dataset("synthetic", "test", image_shape=(1, 16, 16))
    assert float((bar_classes(real.images) == real.labels).float().mean()) > 0.99
    cfg = apply_overrides(get_preset("fast"), {
        "model": {"g_filters": 16, "c_filters": 8, "conditional": "projection",
                  "image_shape": (1, 16, 16)},
        "train": {"steps": 200, "batch_size": 32, "g_lr": 2e-3, "c_lr": 2e-3,
                  "ema_decay": 0.9},
        "run": {"dataset": "synthetic", "out": str(tmp_path / "bars"), "progress": False}})
    generator = wganlab.load_generator(wganlab.train(cfg).run_dir)
    asked = torch.arange(500) % 10
    accuracy = class_accuracy(bar_classes(wganlab.sample(generator, 500, labels=asked)),
                              asked, 10)
    assert accuracy["class_accuracy"] >= 0.6, accuracy


def test_generate_by_class_index_or_name(run, tmp_path):
    args = ["generate", str(run), "--n", "6", "--seed", "3"]
    assert main([*args, "--class", "2", "--out-dir", str(tmp_path / "by-index")]) == 0
    assert main([*args, "--class", NAMES[2].upper(), "--out-dir", str(tmp_path / "by-name")]) == 0
    for i in range(6):
        a = np.asarray(Image.open(tmp_path / "by-index" / f"{i:05d}.png"))
        b = np.asarray(Image.open(tmp_path / "by-name" / f"{i:05d}.png"))
        assert np.array_equal(a, b)
    want = wganlab.sample(wganlab.load_generator(run), 6, seed=3, labels=2)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "by-name" / "00000.png")),
                          want[0, 0].numpy())


def test_the_default_grid_has_one_row_per_class_and_one_z_per_column(run, tmp_path):
    assert main(["generate", str(run), "--n", "30", "--out", str(tmp_path / "g.png")]) == 0
    grid = np.asarray(Image.open(tmp_path / "g.png"))
    assert grid.shape == (2 + 10 * 10, 2 + 3 * 10)  # 10 rows of 8x8 tiles, 3 columns
    generator = wganlab.load_generator(run)
    z = wganlab.generate.latents(generator, 3, 0, "normal", "cpu")
    for k in (0, 7):  # row k, column j: G(z_j, k)
        with torch.no_grad():
            want = wganlab.generate.to_uint8(generator(z, torch.full((3,), k)))
        for j in range(3):
            tile = grid[2 + k * 10:10 + k * 10, 2 + j * 10:10 + j * 10]
            assert np.array_equal(tile, want[j, 0].numpy())


def test_walks_within_and_between_classes(run, tmp_path):
    generator = wganlab.load_generator(run)
    between = wganlab.generate.interpolation_grid(generator, 2, 4, "normal", 5, False,
                                                  label="0", to_label=NAMES[3])
    z = wganlab.generate.sample_z(4, 8, "normal", torch.Generator().manual_seed(5))[:2]
    with torch.no_grad():  # the ends of each row: the fixed z in class 0, then in class 3
        assert torch.allclose(between[0], generator(z[:1], torch.tensor([0]))[0], atol=1e-6)
        assert torch.allclose(between[3], generator(z[:1], torch.tensor([3]))[0], atol=1e-6)
        assert torch.allclose(between[7], generator(z[1:2], torch.tensor([3]))[0], atol=1e-6)
    within = wganlab.generate.interpolation_grid(generator, 2, 4, "normal", 5, False, label=4)
    with torch.no_grad():
        assert torch.allclose(within[0], generator(z[:1], torch.tensor([4]))[0], atol=1e-6)
    for extra in (["--class", "1"], ["--class", "1", "--to-class", NAMES[5]]):
        out = tmp_path / f"walk{len(extra)}.png"
        assert main(["generate", str(run), "--interpolate", *extra, "--rows", "2",
                     "--steps", "3", "--out", str(out)]) == 0
        assert np.asarray(Image.open(out)).shape == (2 + 2 * 10, 2 + 3 * 10)


def test_evaluation_per_class_reaches_eval_json_report_and_compare(run, stub_evaluator,
                                                                  tmp_path):
    record = evaluate.evaluate_run(run, n=40)
    assert record["class_names"] == list(NAMES)
    assert set(record["class_accuracy_per_class"]) == set(NAMES)
    per = [v for v in record["class_accuracy_per_class"].values()]
    assert record["class_accuracy"] == pytest.approx(sum(per) / 10)  # 4 images per class
    assert record["class_accuracy_min"] == min(per)
    saved = json.loads((run / "eval.json").read_text())
    assert saved["fid_per_class"].keys() == record["fid_per_class"].keys()
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "Per class" in page and NAMES[9] in page
    assert main(["compare", str(run), "--out", str(tmp_path / "cmp")]) == 0
    assert "class acc" in (tmp_path / "cmp" / "compare.md").read_text()


def test_class_accuracy_and_per_class_fid_by_hand():
    predicted, asked = np.array([0, 1, 1, 2, 2, 0]), np.array([0, 1, 2, 2, 2, 1])
    got = class_accuracy(predicted, asked, 4)
    assert got["class_accuracy"] == pytest.approx(4 / 6)
    assert got["class_accuracy_per_class"] == [1.0, 0.5, pytest.approx(2 / 3), None]
    assert got["class_accuracy_min"] == 0.5
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2))
    real_labels = np.repeat([0, 1], 200)
    fake = real.copy()
    fake[200:] += 3.0  # class 1 moved by (3, 3): FID = |mean difference|^2 = 18
    fids = per_class_fid(real, real_labels, fake, real_labels, 3)["fid_per_class"]
    assert fids[0] == pytest.approx(0, abs=1e-6) and fids[1] == pytest.approx(18, rel=1e-6)
    assert fids[2] is None  # no images of class 2 on either side


def test_export_lists_the_classes_and_loads_back(run, tmp_path):
    folder = tmp_path / "export"
    assert main(["export", str(run), "--out", str(folder)]) == 0
    card = (folder / "README.md").read_text()
    assert "## Classes" in card and f"| 7 | {NAMES[7]} |" in card
    assert f'labels="{NAMES[-1]}"' in card
    exported = wganlab.load_generator(folder)
    assert exported.config.model.class_names == NAMES
    want = wganlab.sample(wganlab.load_generator(run), 12, seed=4, labels=NAMES[1])
    assert torch.equal(wganlab.sample(exported, 12, seed=4, labels=NAMES[1]), want)
    assert torch.equal(wganlab.sample(exported, 12, seed=4, labels=1), want)
    assert not torch.equal(wganlab.sample(exported, 12, seed=4, labels=2), want)


def test_evaluations_during_training_measure_class_accuracy(stub_evaluator, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--preset", "fast", *TINY, "--conditional", "acgan", "--steps", "2",
                 "--eval-every", "2", "--eval-n", "20", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r.get("eval")]
    assert len(evals) == 1 and 0 <= evals[0]["class_accuracy"] <= 1
    assert "c_class_loss" in [r for r in rows if "g_loss" in r][-1]


def test_summary_sizes_conditional_networks_by_the_data_sets_classes(capsys):
    assert main(["summary", "--preset", "fast", "--conditional", "projection"]) == 0
    plain = capsys.readouterr().out
    assert main(["summary", "--preset", "fast"]) == 0
    unconditional = capsys.readouterr().out
    totals = [int(line.split()[-1].replace(",", "")) for text in (plain, unconditional)
              for line in text.splitlines() if line.startswith("Total params")]
    # generator: a scale and a shift per class for every BatchNorm channel (10 classes);
    # critic: a 10 x 6272 class embedding (128 channels x 7 x 7 features)
    assert totals[1] - totals[3] == 10 * 128 * 7 * 7
    assert totals[0] > totals[2]
