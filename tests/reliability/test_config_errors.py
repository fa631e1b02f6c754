"""Promise 8: every invalid flag value gives one line naming the flag and what is allowed,
exit code 2, and no traceback."""

import json

import pytest

from wganlab.config import get_preset

# TINY without --image-shape, so that the data set's own 28x28 images are used.
BASE = ["train", "--dataset", "synthetic", "--batch-size", "16", "--g-filters", "8",
        "--c-filters", "4", "--z-dim", "8", "--steps", "1", "--no-progress"]

CASES = {
    "--g-lr": ["--g-lr", "0"],
    "--c-lr": ["--c-lr", "-1e-4"],
    "--g-lr ": ["--g-lr", "inf"],
    "--c-lr ": ["--c-lr", "nan"],
    "--image-shape": ["--image-shape", "1,30,30"],
    "--n-blocks": ["--n-blocks", "3"],  # 28 is not divisible by 2**3
    "--preset": ["--preset", "nope"],
    "--dataset": ["--dataset", "nope"],
    "--z-dim": ["--z-dim", "0"],
    "--batch-size": ["--batch-size", "2000"],  # the synthetic set has 1024 images
    "--batch-size  ": ["--batch-size", "1"],
    "--on-nan": ["--on-nan", "maybe"],
    "--keep-last": ["--keep-last", "0"],
    "--betas": ["--betas", "0.5", "1.5"],
    "--steps": ["--steps", "zero"],
}


@pytest.mark.parametrize("flag", list(CASES))
def test_invalid_flag_is_one_clear_line(flag, tmp_path, cli):
    code, out, err = cli(*BASE, "--out", tmp_path / "run", *CASES[flag])
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert flag.strip() in lines[0], lines[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_run_dir_of_another_config_without_resume(tmp_path, cli):
    run = tmp_path / "run"
    run.mkdir()
    other = get_preset("seed")
    saved = json.dumps(other.to_dict())
    (run / "config.json").write_text(saved)
    code, _, err = cli(*BASE, "--out", run)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--out" in err and "--resume" in err and "different config" in err
    assert (run / "config.json").read_text() == saved  # untouched


@pytest.mark.slow
def test_resume_may_not_change_the_model(tmp_path, cli, reference):
    code, _, err = cli("train", "--resume", "--out", reference("wgan-gp"), "--z-dim", "9")
    assert code == 2 and "--z-dim" in err and len(err.strip().splitlines()) == 1, err
