"""Every `wganlab train` config flag, generated from the config dataclasses as the CLI is, fed
hostile values by Hypothesis: the answer is a clean one-line error naming the flag (exit 2) or
success with --dry-run, never a traceback, and never a value outside its meaningful range.

The meaningful ranges are written here, apart from config.validate, so that the two check
each other. A new non-boolean config field needs a range here (the first test says so).
"""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wganlab import config as C

from .conftest import run_cli


def number(low, high, integer=False, low_open=False, high_open=False):
    def ok(v):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False
        if integer and not isinstance(v, int):
            return False
        return (low < v if low_open else low <= v) and (v < high if high_open else v <= high)
    return ok


def optional(check):
    return lambda v: v is None or check(v)


def path_text(v):
    return isinstance(v, str) and v.strip() != "" and "\0" not in v


def device(v):
    kind, _, index = v.partition(":")
    return kind in ("auto", "cpu", "cuda", "mps") and (not index or (kind == "cuda"
                                                                      and index.isdigit()))


def dataset(v):
    return v in ("mnist", "fashion-mnist", "cifar10", "synthetic") or (
        v.startswith("folder:") and path_text(v[len("folder:"):]))


def class_names(v):
    return 2 <= len(v) <= 10_000 and len(set(v)) == len(v) and all(
        isinstance(n, str) and n.strip() for n in v)


def image_shape(v):
    # The default preset (wgan-gp) has n_blocks 2: sides divisible by 4.
    return v is None or (len(v) == 3 and v[0] in (1, 3) and all(
        isinstance(s, int) and 4 <= s <= 1024 and s % 4 == 0 for s in v[1:]))


MEANINGFUL = {  # field -> what a run can use (with the default preset's other values)
    "z_dim": number(1, 10_000, True), "image_shape": image_shape,
    "g_filters": number(4, 8192, True), "c_filters": number(1, 4096, True),
    "n_blocks": number(0, 2, True),  # 28x28 images: 2 halvings at most
    "dropout": number(0, 1, high_open=True), "slope": number(0, 1),
    "bn_momentum": number(0, 1), "bn_eps": number(0, 1, low_open=True),
    "n_critic": number(1, 100, True), "batch_size": number(2, 65_536, True),
    "epochs": optional(number(1, 1e6, True)), "steps": optional(number(1, 1e9, True)),
    "minutes": optional(number(0, 1e6, low_open=True)),
    "g_lr": number(0, 1, low_open=True), "c_lr": number(0, 1, low_open=True),
    "betas": lambda v: len(v) == 2 and all(number(0, 1, high_open=True)(b) for b in v),
    "gp_weight": number(0, 1e4), "clip": optional(number(0, 10, low_open=True)),
    "seed": number(0, 2 ** 62, True),
    "adam_eps": number(0, 1, low_open=True), "shuffle_buffer": optional(number(1, 1e9, True)),
    "ema_decay": number(0, 1, high_open=True),
    "ensemble": number(1, 4096, True),
    "seeds": lambda v: v is None,  # with one model (the default) --seeds is refused
    "dataset": dataset, "data_dir": optional(path_text), "out": path_text, "device": device,
    "log_every": number(1, 1e9, True), "keep_last": number(1, 10_000, True),
    "checkpoint_every": optional(number(1, 1e9, True)),
    "keep_every": optional(number(1, 1e9, True)),
    "eval_every": optional(number(1, 1e9, True)), "eval_n": number(2, 100_000, True),
    # Augmentation: policy names (the default preset has none, so no auto without them).
    "augment": lambda v: policy_list(v) is not None,
    "augment_p": number(0, 1), "max_images": optional(number(1, 1e9, True)),
    "augment_target": lambda v: v == 0.3,  # its default: other values need --augment-p auto
    "augment_speed": lambda v: v == 10_000,  # as augment_target
    "augment_interval": lambda v: v == 4,  # as augment_target
    "acgan_weight": number(0, 1e3), "class_names": optional(class_names),
}


def policy_list(v):
    """The policies a comma-separated text names, or None when it is not a valid list."""
    names = [n.strip() for n in v.split(",") if n.strip()]
    if names in ([], ["none"]):
        return ()
    names = ["colour" if n == "color" else n for n in names]
    ok = set(names) <= {"translation", "cutout", "colour"} and len(set(names)) == len(names)
    return tuple(names) if ok else None

FIELDS = [(section, f) for section, kind in C.SECTIONS.items()
          for f in dataclasses.fields(kind)]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def hint(f) -> str:
    return str(f.type)


def test_every_config_field_has_a_meaningful_range_here():
    missing = [f.name for _, f in FIELDS if f.name not in MEANINGFUL
               and not hint(f).startswith("bool") and not f.metadata.get("choices")]
    assert missing == [], f"add the meaningful range of {missing} to MEANINGFUL"


def int_text():
    edges = st.sampled_from([-1, 0, 1, 2, 3, 4, 100, 1024, 65_536, 10 ** 9, 2 ** 62, 2 ** 63,
                             2 ** 64, 10 ** 30])
    return st.one_of(edges, st.integers(-10 ** 12, 10 ** 12)).map(str) | TEXT


def float_text():
    edges = st.sampled_from(["0", "-0.0", "1", "1e-12", "0.5", "0.999", "1.0001", "-1", "1e6",
                             "1e300", "nan", "inf", "-inf", "1e", "0x10", "1_0"])
    return edges | st.floats(allow_nan=True, allow_infinity=True).map(repr) | TEXT


def values_for(f) -> st.SearchStrategy[list[str]]:
    """The argv words after a config flag: hostile and ordinary values of its type."""
    h, choices = hint(f), f.metadata.get("choices")
    if choices:
        return st.one_of(st.sampled_from(choices), TEXT).map(lambda v: [v])
    if "tuple[int, int, int]" in h:
        side = st.integers(-8, 2000).map(str) | TEXT
        return st.lists(side, min_size=0, max_size=4).map(lambda p: [",".join(p)])
    if "tuple[float, float]" in h:
        return st.lists(float_text(), min_size=1, max_size=2)
    if "float" in h:
        return float_text().map(lambda v: [v])
    if "int" in h:
        return int_text().map(lambda v: [v])
    return TEXT.map(lambda v: [v])


def check_outcome(code, out, err, section, name, flag):
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 0:
        value = json.loads(out)[section][name]
        assert MEANINGFUL.get(name, lambda v: True)(value), f"{flag} accepted {value!r}"
    else:
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, (code, err)
        assert flag in lines[0] or "--n-critic" in lines[0], lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("section,field", FIELDS, ids=[f.name for _, f in FIELDS])
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_train_flag_gives_clean_error_or_meaningful_value(section, field, data, tmp_path):
    flag = "--" + field.name.replace("_", "-")
    if hint(field).startswith("bool"):
        words = [data.draw(st.sampled_from([flag, "--no-" + flag[2:]]))]
    else:
        words = [flag, *data.draw(values_for(field))]
    argv = ["train", "--dry-run", "--no-progress", *words]
    if field.name != "out":
        argv += ["--out", str(tmp_path / "run")]
    code, out, err = run_cli(argv)
    check_outcome(code, out, err, section, field.name, flag)
