"""Issue 21: one reader with a schema per run file. config.json, run.json, eval.json,
metrics.jsonl and checkpoint entries are fuzzed (every JSON type at every key, truncation at
every byte, keys added and removed); each read gives its result or the project's own error
naming the file (and key or line), never another exception. In-process and small."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wganlab.base import checkpoint
from wganlab.config import Config
from wganlab.errors import CheckpointError, ConfigError, DataError
from wganlab.metrics import health
from wganlab.runfiles import (
    RunFileWarning,
    metrics_lines,
    read_config,
    read_eval,
    read_run_info,
    row_problem,
)
from wganlab.training import resume

FAST = dict(max_examples=40, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70)
                    | st.floats(allow_nan=True) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
RUN_INFO = {"version": "0.1.0", "steps_per_epoch": 12, "planned_steps": 14, "n_images": 1024,
            "data_source": "generated", "device": "cpu", "world_size": 1,
            "step_mode": "eager", "eager_reason": "cpu", "init_from": None}
EVAL = {"fid": 12.5, "kid_mean": 0.01, "precision": 0.5, "recall": 0.4, "n_real": 100,
        "n_fake": 100, "reference": "synthetic:test", "seed": 0, "run": "r", "preset": "x",
        "checkpoint": "r/checkpoints/step-00000012.pt", "step": 12, "weights": "ema",
        "train_seconds": 3.5, "evaluator_sha256": "ab", "modes_covered": 9}


def paths(obj, prefix=()):
    """Every key path of nested dicts (the root included)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, (*prefix, k))


@st.composite
def edited(draw, base: dict):
    """base with a few edits: a value replaced by any JSON value, a key removed or added."""
    data = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(paths(data))))
        parent = data
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["set", "drop", "add"]))
        if not path:
            if op == "set":
                data = draw(JSON)
                break
            continue
        if op == "set":
            parent[path[-1]] = draw(JSON)
        elif op == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(JSON)
    return data


def write(path, data) -> None:
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def expect(reader, path, error):
    """The reader's result, or None after its own error naming the file."""
    try:
        return reader(path)
    except error as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return None


@settings(**FAST)
@given(data=edited(json.loads(Config().to_json())))
def test_config_json(data, tmp_path):
    path = tmp_path / "config.json"
    write(path, data)
    cfg = expect(read_config, path, ConfigError)
    assert cfg is None or isinstance(cfg, Config)


@settings(**FAST)
@given(data=edited(RUN_INFO))
def test_run_json(data, tmp_path):
    path = tmp_path / "run.json"
    write(path, data)
    info = expect(read_run_info, path, DataError)
    if info is not None:
        assert isinstance(info.get("steps_per_epoch", 0), int)


@settings(**FAST)
@given(data=edited(EVAL))
def test_eval_json(data, tmp_path):
    path = tmp_path / "eval.json"
    write(path, data)
    record = expect(read_eval, path, DataError)
    if record is not None:
        health.number(record["fid"])  # every reader takes the fid as a number


@pytest.mark.parametrize("name, reader, error, text", [
    ("config.json", read_config, ConfigError, Config().to_json()),
    ("run.json", read_run_info, DataError, json.dumps(RUN_INFO, indent=2)),
    ("eval.json", read_eval, DataError, json.dumps(EVAL, indent=2))])
def test_cut_at_every_byte(name, reader, error, text, tmp_path):
    path = tmp_path / name
    data = text.encode()
    for end in range(len(data)):
        path.write_bytes(data[:end])
        try:
            reader(path)
        except error as e:
            assert str(path) in str(e)
            assert "line" in str(e) or end == 0 or "UTF-8" in str(e)


ROW = {"step": 3, "epoch": 1, "time": 0.5, "g_loss": 0.1, "d_loss": 0.2, "d_real": 0.3,
       "d_fake": 0.4, "gp": "nan", "wasserstein": "inf", "diversity": 1.0}
LINES = st.one_of(edited(ROW).map(json.dumps), JSON.map(json.dumps),
                  st.just(json.dumps(ROW)[:20]), st.just(json.dumps(ROW)))


@settings(**FAST)
@given(lines=st.lists(LINES, max_size=8))
def test_metrics_lines_that_are_not_rows_are_skipped_with_one_warning(lines, tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        rows = [row for _, row in metrics_lines(path)]
    expected = 0
    for line in lines:
        try:
            expected += row_problem(json.loads(line)) is None
        except ValueError:
            pass
    assert len(rows) == expected
    ours = [w for w in seen if issubclass(w.category, RunFileWarning)]
    assert len(ours) == (len(rows) < len(lines)) and all(str(path) in str(w.message)
                                                         for w in ours)
    # What the readers then do with the rows never fails on them.
    health.scan(rows)
    assert all(isinstance(r["step"], int) and r["step"] >= 0 for r in rows)


STATE = {"generator": {"w": torch.zeros(2)}, "critic": {"w": torch.zeros(2)},
         "g_optimizer": {}, "c_optimizer": {}, "rng": {}, "fixed_z": torch.zeros(2, 2),
         "step": 3, "epoch": 0, "skipped": 0, "elapsed": 1.0, "version": "0.1.0",
         "config": json.loads(Config().to_json())}
ENTRY = st.one_of(JSON, st.just(torch.zeros(1)), st.just({"averaged": 3}))


@settings(**FAST)
@given(key=st.sampled_from([*STATE, "ema", "extra"]), value=ENTRY, drop=st.booleans())
def test_checkpoint_entries(key, value, drop, tmp_path):
    state = dict(STATE)
    if drop:
        state.pop(key, None)
    else:
        state[key] = value
    path = tmp_path / "step-00000003.pt"
    try:
        checkpoint.check_entries(state, path)
        cfg = Config.from_dict(STATE["config"])
        resume.check_same_run(path, state, cfg)
    except (CheckpointError, ConfigError) as e:
        assert str(path) in str(e) or "--resume" in str(e)
