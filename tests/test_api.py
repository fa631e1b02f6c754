"""The Python API a notebook uses: the README's example runs as written (fewer steps), `train`
takes your own tensor or Dataset and trains exactly as on the same images by name, and
load_generator / sample agree across every kind of source."""

import json
import re
from pathlib import Path

import pytest
import torch

import wganlab
from wganlab.data import load_dataset, to_float
from wganlab.errors import ConfigError, DataError

README = Path(__file__).resolve().parent.parent / "README.md"
SHAPE = (1, 8, 8)


def tiny_config(out: Path) -> wganlab.Config:
    cfg = wganlab.get_preset("wgan-gp")
    cfg.model.g_filters, cfg.model.c_filters, cfg.model.z_dim = 8, 4, 8
    cfg.model.image_shape = SHAPE
    cfg.train.batch_size, cfg.train.steps = 16, 3
    cfg.run.dataset, cfg.run.out, cfg.run.progress = "synthetic", str(out), False
    return cfg


def losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["g_loss"] for r in rows if "g_loss" in r]


class Floats(torch.utils.data.Dataset):
    """A torchvision-style Dataset: (float image in [-1, 1], label) pairs."""

    def __init__(self, pixels):
        self.pixels = pixels

    def __len__(self):
        return len(self.pixels)

    def __getitem__(self, i):
        return to_float(self.pixels[i]), 0


@pytest.fixture(scope="module")
def named_run(tmp_path_factory):
    return wganlab.train(tiny_config(tmp_path_factory.mktemp("api") / "named")).run_dir


def test_train_on_a_tensor_equals_training_on_the_named_data_set(named_run, tmp_path):
    pixels = load_dataset("synthetic", "train", image_shape=SHAPE).images
    cfg = tiny_config(tmp_path / "tensor")
    before = cfg.to_dict()
    result = wganlab.train(cfg, data=pixels)
    assert result.step == 3
    assert cfg.to_dict() == before and cfg.run.dataset == "synthetic"  # the caller's, as given
    saved = json.loads((result.run_dir / "config.json").read_text())
    assert saved["run"]["dataset"] == "user"
    assert "Python Tensor: 1024 images" in json.loads((result.run_dir / "run.json")
                                                       .read_text())["data_source"]
    assert losses(result.run_dir) == losses(named_run)  # the same pixels, the same run


def test_train_on_a_dataset_of_float_pairs_equals_it_too(named_run, tmp_path):
    pixels = load_dataset("synthetic", "train", image_shape=SHAPE).images
    result = wganlab.train(tiny_config(tmp_path / "dataset"), data=Floats(pixels))
    assert losses(result.run_dir) == losses(named_run)


def test_user_images_are_resized_to_the_configs_shape(tmp_path):
    big = load_dataset("synthetic", "train", image_shape=(1, 16, 16)).images[:160]
    cfg = tiny_config(tmp_path / "resized")
    cfg.train.steps = 1
    wganlab.train(cfg, data=big)
    assert json.loads((tmp_path / "resized" / "config.json").read_text())["model"][
        "image_shape"] == list(SHAPE)


def test_bad_user_data_is_refused_before_training(tmp_path):
    cfg = tiny_config(tmp_path / "bad")
    with pytest.raises(DataError, match="looks channels-last"):
        wganlab.train(cfg, data=torch.zeros(64, 8, 8, 1, dtype=torch.uint8))
    with pytest.raises(ConfigError, match="--batch-size: 16 is larger than the data set"):
        wganlab.train(tiny_config(tmp_path / "few"),
                      data=torch.zeros(8, 1, 8, 8, dtype=torch.uint8))
    cfg = tiny_config(tmp_path / "eval")
    cfg.run.eval_every = 1
    with pytest.raises(ConfigError, match="--eval-every: needs a named data set"):
        wganlab.train(cfg, data=torch.zeros(64, 1, 8, 8, dtype=torch.uint8))
    assert not (tmp_path / "bad").exists()


def test_every_source_gives_the_same_generator(named_run, tmp_path):
    checkpoint = sorted((named_run / "checkpoints").glob("*.pt"))[-1]
    sources = [named_run, checkpoint, wganlab.export(named_run, tmp_path / "g.safetensors"),
               wganlab.export(named_run, tmp_path / "folder")]
    images = [wganlab.sample(wganlab.load_generator(s), 12, seed=4) for s in sources]
    assert images[0].dtype == torch.uint8 and images[0].shape == (12, *SHAPE)
    assert all(torch.equal(images[0], other) for other in images[1:])
    assert not torch.equal(images[0], wganlab.sample(wganlab.load_generator(named_run), 12,
                                                     seed=5))
    generator = wganlab.load_generator(checkpoint)
    assert generator.provenance == {"checkpoint": str(checkpoint), "step": 3, "weights": "raw"}
    assert generator.config.train.z_dist == "normal" and not generator.training


def test_sample_needs_a_z_distribution_for_a_bare_generator():
    bare = wganlab.Generator(z_dim=8, image_shape=SHAPE, n_filters=8)
    with pytest.raises(ValueError, match="pass z_dist"):
        wganlab.sample(bare, 2)
    assert bare.training and wganlab.sample(bare, 2, z_dist="uniform").shape == (2, *SHAPE)
    assert bare.training  # left in the mode it was in


def test_a_user_data_run_cannot_be_evaluated_by_name(tmp_path):
    run = tmp_path / "user"
    cfg = tiny_config(run)
    cfg.train.steps = 1
    wganlab.train(cfg, data=load_dataset("synthetic", "train", image_shape=SHAPE).images)
    with pytest.raises(ConfigError, match="no reference set"):
        wganlab.evaluate_run(run)


def readme_python_block() -> str:
    section = README.read_text().split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    try:
        load_dataset("fashion-mnist", "test", download=False)
    except DataError:
        pytest.skip("Fashion-MNIST is not on this machine (scripts/test.sh installs it)")
    code = readme_python_block()
    shorter = (("cfg.train.steps, cfg.run.out = 20,", "cfg.train.steps, cfg.run.out = 1,"),
               ("sample(generator, 1000,", "sample(generator, 200,"))
    for before, after in shorter:
        assert before in code  # shortened for the test; the rest runs as written
        code = code.replace(before, after)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    last_line = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(r"FID \d+, \d+ of 10 classes", last_line), last_line
    shared = wganlab.load_generator(tmp_path / "my-gan")
    run = wganlab.load_generator(tmp_path / "runs" / "notebook")
    assert torch.equal(wganlab.sample(shared, 8), wganlab.sample(run, 8))
    assert "library_name: wganlab" in (tmp_path / "my-gan" / "README.md").read_text()
