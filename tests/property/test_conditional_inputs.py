"""Every bad class input gets one line naming the flag or argument, under Hypothesis: class
indices out of range, unknown names, a class for an unconditional generator, labels of the
wrong length or kind through the API; good ones give the asked-for classes."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wganlab
from wganlab.base import checkpoint
from wganlab.conditioning import asked_classes, class_index
from wganlab.config import apply_overrides, get_preset, validate
from wganlab.data.user import from_images
from wganlab.errors import ConfigError, DataError
from wganlab.models import build_models

from .conftest import TINY_MODEL, assert_clean_error, run_cli

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NAMES = ("T-shirt/top", "Trouser", "Sneaker", "Ankle boot")
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
               max_size=12)


def make_conditional_run(path):
    """A run directory whose checkpoint holds a fresh tiny projection-conditional generator."""
    cfg = validate(apply_overrides(get_preset("fast"), {
        "model": {**TINY_MODEL, "conditional": "projection", "class_names": NAMES},
        "run": {"dataset": "synthetic", "out": str(path)}}))
    torch.manual_seed(0)
    generator, critic = build_models(cfg.model, cfg.model.image_shape)
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(cfg.to_json())
    checkpoint.save({"generator": generator.state_dict(), "critic": critic.state_dict(),
                     "step": 1, "config": cfg.to_dict()}, checkpoint.checkpoint_path(path, 1))
    return path


@pytest.fixture(scope="session")
def conditional_run(tmp_path_factory):
    return make_conditional_run(tmp_path_factory.mktemp("conditional") / "run")


@pytest.fixture(scope="session")
def generator(conditional_run):
    return wganlab.load_generator(conditional_run)


def is_known(text: str) -> bool:
    t = text.strip()
    return t.casefold() in {n.casefold() for n in NAMES} or t.lstrip("-").isdigit()


@settings(max_examples=30, **SETTINGS)
@given(index=st.one_of(st.integers(max_value=-1), st.integers(min_value=len(NAMES))))
def test_a_class_index_out_of_range_names_the_flag_and_the_range(index, conditional_run,
                                                                 tmp_path):
    code, _, err = run_cli(["generate", conditional_run, "--class", str(index), "--n", "2",
                            "--out", tmp_path / "g.png"])
    assert_clean_error(code, err, "--class")
    assert "out of range" in err and f"0-{len(NAMES) - 1}" in err
    assert not (tmp_path / "g.png").exists()


@settings(max_examples=30, **SETTINGS)
@given(name=TEXT.filter(lambda t: not is_known(t) and not t.startswith("-")))
def test_an_unknown_class_name_lists_the_classes(name, generator):
    with pytest.raises(ConfigError, match="--class: no class named") as e:
        class_index(NAMES, name)
    assert "Sneaker" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="labels: no class named"):
        wganlab.sample(generator, 2, labels=name)


@settings(max_examples=20, **SETTINGS)
@given(k=st.integers(0, len(NAMES) - 1), case=st.sampled_from([str.lower, str.upper, str]))
def test_a_class_by_index_or_name_gives_that_class(k, case, generator):
    assert class_index(NAMES, case(NAMES[k])) == k == class_index(NAMES, str(k))
    by_name = wganlab.sample(generator, 3, seed=1, labels=case(NAMES[k]))
    assert torch.equal(by_name, wganlab.sample(generator, 3, seed=1, labels=[k, k, k]))


@settings(max_examples=30, **SETTINGS)
@given(n=st.integers(1, 6), given_n=st.integers(0, 9))
def test_sample_labels_of_the_wrong_length_are_refused(n, given_n, generator):
    labels = [0] * given_n
    if given_n == n:
        assert torch.equal(asked_classes(generator, labels, n, "cpu"), torch.zeros(n).long())
        return
    with pytest.raises(ConfigError, match=f"labels: {given_n} labels for {n} images"):
        wganlab.sample(generator, n, labels=labels)


@settings(max_examples=30, **SETTINGS)
@given(n=st.integers(2, 8), given_n=st.integers(0, 12))
def test_training_labels_of_the_wrong_length_are_refused(n, given_n):
    images = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    labels = torch.arange(given_n) % 3
    if given_n == n:
        assert torch.equal(from_images(images, labels=labels).labels, labels)
        return
    with pytest.raises(DataError, match=f"labels: {given_n} labels for {n} images"):
        from_images(images, labels=labels)


@pytest.mark.parametrize("labels,message", [
    (torch.tensor([0.5, 1.0]), "give class indices"), ([[0], [1]], "give class indices"),
    (torch.tensor([-1, 0]), "negative"), ([True, False], "give class indices")])
def test_training_labels_of_the_wrong_kind_are_refused(labels, message):
    with pytest.raises(DataError, match=message):
        from_images(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), labels=labels)


def test_labels_for_an_unconditional_generator_are_refused(tiny_run, tmp_path):
    plain = wganlab.load_generator(tiny_run)
    with pytest.raises(ConfigError, match="labels: this generator is unconditional"):
        wganlab.sample(plain, 2, labels=0)
    for flags in (["--class", "0"], ["--interpolate", "--to-class", "1"]):
        code, _, err = run_cli(["generate", tiny_run, *flags, "--out", tmp_path / "g.png"])
        assert_clean_error(code, err, "--class", "--to-class")
        assert "unconditional" in err


def test_to_class_needs_interpolate(conditional_run, tmp_path):
    code, _, err = run_cli(["generate", conditional_run, "--to-class", "Sneaker",
                            "--out", tmp_path / "g.png"])
    assert_clean_error(code, err, "--to-class")
