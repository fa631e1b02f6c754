"""The augmentation flags, fed hostile values by Hypothesis: an unknown policy, a probability
outside [0, 1] and a --max-images of 0 or beyond the data set each give one line naming the
flag (exit 2); valid values are taken as given."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import assert_clean_error, run_cli
from .test_cli_flags import policy_list

POLICY = st.sampled_from(["translation", "cutout", "colour", "color", "crop", "none", "flip",
                          "", " ", "Translation"])
SETTINGS = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def dry_run(tmp_path, *words):
    return run_cli(["train", "--dry-run", "--no-progress", "--out", str(tmp_path / "r"), *words])


@SETTINGS
@given(names=st.lists(POLICY, min_size=1, max_size=4))
def test_policies_are_checked_by_name(tmp_path, names):
    text = ",".join(names)
    code, out, err = dry_run(tmp_path, "--augment", text)
    if policy_list(text) is None:
        assert_clean_error(code, err, "--augment")
        assert "policy" in err
    else:
        assert code == 0, err
        assert json.loads(out)["train"]["augment"] == text


@SETTINGS
@given(p=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(
    [0.0, 1.0, -0.0, 1.0000001, -1e-9, 2.0])) | st.sampled_from(["auto", "Auto", "sometimes"]))
def test_p_is_a_probability_or_auto(tmp_path, p):
    code, out, err = dry_run(tmp_path, "--augment", "translation", "--augment-p", str(p))
    if p == "auto" or (isinstance(p, float) and 0.0 <= p <= 1.0):
        assert code == 0, err
        assert json.loads(out)["train"]["augment_p"] == p
    else:
        assert_clean_error(code, err, "--augment-p")


@SETTINGS
@given(target=st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [-1.0, 1.0, 0.6, -1.0000001, 1.0000001, math.inf, math.nan]), auto=st.booleans())
def test_target_is_in_the_heuristics_range_and_needs_auto(tmp_path, target, auto):
    p = "auto" if auto else "0.3"
    code, out, err = dry_run(tmp_path, "--augment", "translation", "--augment-p", p,
                             f"--augment-target={target}")
    if -1.0 <= target <= 1.0 and (auto or target == 0.3):
        assert code == 0, err
        assert json.loads(out)["train"]["augment_target"] == target
    else:
        assert_clean_error(code, err, "--augment-target")
        if not math.isfinite(target):
            assert "finite" in err
        else:
            assert ("[-1, 1]" in err) if not -1.0 <= target <= 1.0 else ("auto" in err)


# Counts that only --augment-p auto reads: (field, default, largest allowed).
AUTO_COUNTS = [("augment_speed", 10_000, 10 ** 12), ("augment_interval", 4, 10 ** 6)]


@pytest.mark.parametrize(("name", "default", "most"), AUTO_COUNTS)
@SETTINGS
@given(value=st.integers(-10, 10 ** 13) | st.sampled_from(["1.5", "fast", "5e5"]),
       auto=st.booleans())
def test_auto_counts_are_positive_integers_and_need_auto(tmp_path, name, default, most,
                                                         value, auto):
    flag = "--" + name.replace("_", "-")
    p = "auto" if auto else "0.3"
    code, out, err = dry_run(tmp_path, "--augment", "translation", "--augment-p", p,
                             f"{flag}={value}")
    if isinstance(value, int) and 1 <= value <= most and (auto or value == default):
        assert code == 0, err
        assert json.loads(out)["train"][name] == value
    else:
        assert_clean_error(code, err, flag)


@SETTINGS
@given(n=st.integers(-10, 0) | st.integers(1025, 10 ** 12))
def test_max_images_must_fit_the_data_set(tmp_path, n):
    # The synthetic set holds 1024 training images; the check runs when the data is loaded.
    code, _, err = run_cli(["train", "--dataset", "synthetic", "--batch-size", "4",
                            "--g-filters", "8", "--c-filters", "4", "--steps", "1",
                            "--no-progress", "--out", str(tmp_path / f"r{n}"),
                            "--max-images", str(n)])
    assert_clean_error(code, err, "--max-images")
    # Beyond any data set (over 1e9) or below 1: the range; else the data set's own size.
    in_range = 0 < n <= 10 ** 9
    assert ("more than the data set holds (1024 images)" in err) if in_range else ("[1, " in err)


def test_auto_needs_policies_and_xflip_is_allowed_with_the_seed_preset(tmp_path):
    code, _, err = dry_run(tmp_path, "--augment-p", "auto")
    assert_clean_error(code, err, "--augment-p")
    code, out, err = dry_run(tmp_path, "--preset", "seed", "--xflip")
    assert code == 0 and json.loads(out)["train"]["xflip"] is True, err
    code, out, _ = run_cli(["train", "--help"])
    text = " ".join(out.split())
    assert "wrong for digits and letters" in text and "breaks the tutorial's recipe" in text


def test_config_files_take_p_as_a_number_or_auto(tmp_path):
    for value, want in (("0.25", 0.25), ('"auto"', "auto")):
        path = tmp_path / "c.toml"
        path.write_text(f'[train]\naugment = "cutout"\naugment_p = {value}\n')
        code, out, err = dry_run(tmp_path, "--config", str(path))
        assert code == 0 and json.loads(out)["train"]["augment_p"] == want, err
    path.write_text('[train]\naugment = "cutout"\naugment_p = "often"\n')
    code, _, err = dry_run(tmp_path, "--config", str(path))
    assert_clean_error(code, err, "augment_p")
