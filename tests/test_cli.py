import numpy as np
import pytest
from PIL import Image

from tiny import copy_run
from wganlab.cli import main


def test_summary_prints_the_tutorial_counts(capsys):
    assert main(["summary", "--preset", "seed"]) == 0
    out = capsys.readouterr().out
    assert "Trainable params: 804,832" in out and "Trainable params: 1,039,489" in out
    assert "Non-trainable params: 12,992" in out and "Non-trainable params: 896" in out
    assert "(None, 128, 7, 7)" in out


def test_summary_follows_flags(capsys):
    assert main(["summary", "--image-shape", "3,32,32", "--g-filters", "32",
                 "--critic-norm", "none"]) == 0
    out = capsys.readouterr().out
    assert "(None, 3, 32, 32)" in out and "BatchNorm" in out.split('"critic"')[0]


def test_distances_command(capsys):
    assert main(["distances"]) == 0
    out = capsys.readouterr().out
    assert "0.6931" in out and "inf" in out.lower()


@pytest.fixture
def trained(tiny_run, tmp_path):
    return copy_run(tiny_run("wgan-gp", 3), tmp_path)  # test_plot_redraws deletes a figure


def test_generate_grid_files_and_interpolation(trained, tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["generate", str(trained), "--n", "10", "--out", str(grid)]) == 0
    assert Image.open(grid).size == (2 + 8 * 10, 2 + 2 * 10)  # 8x8 images, 2-pixel gaps
    assert main(["generate", str(trained), "--n", "3", "--out-dir", str(tmp_path / "each")]) == 0
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == [
        "00000.png", "00001.png", "00002.png"]
    interp = tmp_path / "interp.png"
    assert main(["generate", str(trained), "--interpolate", "spherical", "--rows", "2",
                 "--steps", "5", "--out", str(interp)]) == 0
    assert Image.open(interp).size == (2 + 5 * 10, 2 + 2 * 10)


def test_same_seed_same_images(trained, tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    for seed, path in (("3", a), ("3", b), ("4", c)):
        assert main(["generate", str(trained), "--seed", seed, "--n", "8",
                     "--out", str(path)]) == 0
    assert a.read_bytes() == b.read_bytes()
    pixels = [np.asarray(Image.open(p)) for p in (a, b, c)]
    assert not np.array_equal(pixels[0], pixels[2])  # another seed, other images
    # The grid holds the generator's own samples for that seed, pixel for pixel.
    from wganlab.base.images import make_grid
    from wganlab.generate import load_generator, sample

    expected = make_grid(sample(load_generator(trained), 8, seed=3), 8)[..., 0]
    assert np.array_equal(pixels[0], expected)


def test_plot_redraws(trained, capsys):
    (trained / "learning_curve.png").unlink()
    assert main(["plot", str(trained)]) == 0
    assert f"Wrote {trained / 'learning_curve.png'}" in capsys.readouterr().out
    width, height = Image.open(trained / "learning_curve.png").size
    assert width > 300 and height > 200


def test_bad_flag_values_exit_2_with_one_line(capsys, tmp_path):
    for argv, flag in [(["--g-lr", "0"], "--g-lr"), (["--z-dim", "0"], "--z-dim"),
                       (["--image-shape", "1,30,30"], "--image-shape"),
                       (["--dataset", "imagenet"], "--dataset")]:
        assert main(["train", "--dry-run", "--out", str(tmp_path / "r"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert flag in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as e:
        main(["train", "--preset", "nope"])
    assert e.value.code == 2
