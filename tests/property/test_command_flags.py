"""The other subcommands' flags, and the config file's fields, under Hypothesis: each hostile
value gives a clean one-line error or (for values in range) success; never a traceback.

Values that would be accepted are kept small, so that the commands that do run stay quick;
huge values are drawn only where they must be refused.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wganlab.config import Config
from wganlab.metrics import Evaluator, evaluate
from wganlab.validation import MAX_SEED

from .conftest import assert_clean_error, make_run, run_cli
from .test_cli_flags import MEANINGFUL

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=10)


def ints(low, high, ok_low, ok_high):
    """(value text, in range?): values outside [low, high], and small ones in range
    ([ok_low, ok_high], so that the commands that run stay quick)."""
    good = st.integers(ok_low, ok_high).map(lambda v: (str(v), True))
    bad = st.one_of(st.integers(-10 ** 20, low - 1), st.integers(high + 1, 10 ** 30),
                    st.sampled_from([low - 1, high + 1])).map(lambda v: (str(v), False))
    junk = TEXT.filter(lambda t: not t.strip().lstrip("+-").isdigit()).map(lambda t: (t, False))
    return st.one_of(good, bad, junk)


@settings(max_examples=25, **SETTINGS)
@given(flag=st.sampled_from(["--n", "--seed"]), value=st.data())
def test_generate_count_and_seed(flag, value, tiny_run, tmp_path):
    limits = {"--n": (1, 100_000, 1, 6), "--seed": (0, MAX_SEED, 0, MAX_SEED)}[flag]
    text, ok = value.draw(ints(*limits))
    code, _, err = run_cli(["generate", tiny_run, flag, text, "--out", tmp_path / "g.png"])
    if ok:
        assert code == 0, err
    else:
        assert_clean_error(code, err, flag)


@settings(max_examples=20, **SETTINGS)
@given(rows=st.data(), steps=st.data())
def test_generate_interpolation_sizes(rows, steps, tiny_run, tmp_path):
    r_text, r_ok = rows.draw(ints(1, 1000, 1, 3))
    s_text, s_ok = steps.draw(ints(2, 1000, 2, 4))
    code, _, err = run_cli(["generate", tiny_run, "--interpolate", "--rows", r_text,
                            "--steps", s_text, "--out", tmp_path / "i.png"])
    if r_ok and s_ok:
        assert code == 0, err
    else:
        assert_clean_error(code, err, "--rows", "--steps")


@pytest.fixture
def stub_evaluator(monkeypatch):
    torch.manual_seed(0)
    ev = Evaluator(feature_dim=4, width=4, image_size=8).eval().requires_grad_(False)
    ev.info = {"architecture": {"name": "stub"}, "sha256": "00" * 32, "test_accuracy": 0.5}
    monkeypatch.setattr(evaluate, "get_evaluator", lambda *a, **k: ev)
    evaluate._REFERENCE_CACHE.clear()
    return ev


@settings(max_examples=10, **SETTINGS)
@given(flag=st.sampled_from(["--n", "--bootstrap", "--seed"]), value=st.data())
def test_evaluate_flags(flag, value, tiny_run, stub_evaluator):
    limits = {"--n": (2, 100_000, 12, 20), "--bootstrap": (2, 10_000, 2, 3),
              "--seed": (0, MAX_SEED, 0, MAX_SEED)}[flag]
    text, ok = value.draw(ints(*limits))
    argv = ["evaluate", tiny_run, flag, text] + (["--n", "16"] if flag != "--n" else [])
    code, _, err = run_cli(argv)
    small_n = flag == "--n" and text.isdigit() and 2 <= int(text) < 12
    if small_n and code != 0:  # in --n's range, but too few samples for some metric
        assert_clean_error(code, err, flag, "n", "samples")
    elif ok or small_n or (flag == "--bootstrap" and text == "0"):
        assert code == 0, err
    else:
        assert_clean_error(code, err, flag)


@settings(max_examples=15, **SETTINGS)
@given(name=TEXT)
def test_evaluate_real_needs_a_known_data_set(name, stub_evaluator):
    if name in ("mnist", "fashion-mnist", "cifar10", "synthetic") or name.startswith("folder:"):
        return
    code, _, err = run_cli(["evaluate", "--real", name, "--n", "8"])
    assert_clean_error(code, err, "--real", "--n")


def out_of_range(low, high):
    return st.one_of(st.integers(-10 ** 20, low - 1), st.integers(high + 1, 10 ** 25)).map(str)


# Flags of commands too slow to run in a property test: only values they must refuse.
REFUSED = {
    ("bench", "--quick", "--batch-sizes"): out_of_range(2, 65_536),
    ("bench", "--quick", "--repeats"): out_of_range(1, 1000),
    ("bench", "--quick", "--steps"): out_of_range(1, 1000),
    ("bench", "--quick", "--warmup"): out_of_range(1, 1000),
    ("bench", "--quick", "--threads"): out_of_range(1, 1024),
    ("bench", "--quick", "--g-filters"): out_of_range(2, 8192),
    ("bench", "--quick", "--c-filters"): out_of_range(1, 4096),
    ("sweep", "--seeds"): out_of_range(1, 1000),
    ("sweep", "--eval-samples"): out_of_range(2, 100_000),
    ("sweep", "--minutes"): st.sampled_from(["0", "-1", "nan", "inf", "-inf", "1e7"]),
    ("sweep", "--bn-eps"): st.sampled_from(["0", "-1", "2", "nan"]),
    ("sweep", "--g-lr"): st.sampled_from(["0", "-1e-4", "3", "inf"]),
    ("train-evaluator", "--dataset", "synthetic", "--epochs"): out_of_range(1, 1000),
    ("train-evaluator", "--dataset", "synthetic", "--seed"): out_of_range(0, MAX_SEED),
    ("summary", "--g-filters"): out_of_range(4, 8192),
    ("summary", "--bn-eps"): st.sampled_from(["0", "-1", "1e9"]),
    ("summary", "--image-shape"): st.sampled_from(["1,4096,4096", "3,2048,8", "2,8,8"]),
}


@settings(max_examples=40, **SETTINGS)
@given(case=st.sampled_from(sorted(REFUSED)), data=st.data())
def test_out_of_range_flags_of_every_command_are_refused(case, data, tmp_path):
    value = data.draw(REFUSED[case])
    code, _, err = run_cli([*case, value, "--out", tmp_path / "x"]
                           if case[0] in ("sweep", "train-evaluator") else [*case, value])
    assert_clean_error(code, err, case[-1], case[-1].replace("-sizes", "-size"))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10 ** 20, 10 ** 20) | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6)


def mutated_config(data) -> tuple[dict, str, str]:
    cfg = json.loads(Config().to_json())
    section = data.draw(st.sampled_from(["model", "train", "run"]))
    name = data.draw(st.sampled_from(sorted(set(cfg[section]) - {"out"})))
    cfg[section][name] = data.draw(JSON_VALUES)
    return cfg, section, name


@settings(max_examples=30, **SETTINGS)
@given(data=st.data())
def test_resume_with_a_damaged_config_file(data, tmp_path):
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    cfg, section, name = mutated_config(data)
    cfg["run"]["out"] = str(run)
    (run / "config.json").write_text(json.dumps(cfg))
    code, out, err = run_cli(["train", "--resume", "--out", run, "--dry-run"])
    if code == 0:  # the mutation happened to give a usable value: printed back as it was
        value = json.loads(out)[section][name]
        assert value == cfg[section][name] and MEANINGFUL.get(name, lambda v: True)(value)
    else:
        assert_clean_error(code, err, str(run / "config.json"))


@settings(max_examples=8, **SETTINGS)
@given(data=st.data())
def test_export_whose_config_is_forged(data, tiny_run, tmp_path):
    from safetensors.torch import load_file, save_file

    model = tmp_path / "m.safetensors"
    assert run_cli(["export", tiny_run, "--out", model])[0] == 0
    cfg = json.loads(Config().to_json())
    cfg["model"].update(json.loads((tiny_run / "config.json").read_text())["model"])
    section = data.draw(st.sampled_from(["model", "train"]))
    name = data.draw(st.sampled_from(sorted(cfg[section])))
    cfg[section][name] = data.draw(JSON_VALUES | st.sampled_from([10 ** 9, -1, 0, 1e300]))
    forged = tmp_path / "forged.safetensors"
    save_file(load_file(model), forged, metadata={"format": "wganlab-generator",
                                                  "config": json.dumps(cfg), "step": "1"})
    code, _, err = run_cli(["generate", "--model", forged, "--n", "2",
                            "--out", tmp_path / "g.png"])
    if code != 0:
        assert_clean_error(code, err, str(forged))


def test_a_generator_with_non_finite_weights_is_refused(tmp_path):
    run = make_run(tmp_path / "clean")
    weights = torch.load(next((run / "checkpoints").iterdir()), weights_only=True)["generator"]
    weights = {k: v.clone() for k, v in weights.items()}
    first = next(k for k, v in weights.items() if v.is_floating_point())
    weights[first].view(-1)[0] = float("nan")
    bad = make_run(tmp_path / "nan", weights)
    code, _, err = run_cli(["generate", bad, "--n", "2", "--out", tmp_path / "g.png"])
    assert_clean_error(code, err, "NaN")
    assert code == 4 and not (tmp_path / "g.png").exists()
