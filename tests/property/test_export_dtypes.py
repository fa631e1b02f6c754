"""Issue 21: a safetensors export whose header names another kind of number than the network
holds (I32 over float32 weights: the float bits read as integers, about ±1e9, every pixel
saturated) is refused naming the tensor; a float of another width is a fair copy and loads."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save

from wganlab.errors import CheckpointError
from wganlab.generate import export, load_generator

from .conftest import make_run

FAST = dict(max_examples=12, deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dtypes")
    path = export(make_run(folder / "run"), folder / "model.safetensors")
    with safe_open(str(path), framework="pt") as f:
        return f.metadata(), {k: f.get_tensor(k) for k in f.keys()}


def rewrite(exported, tmp_path, name, change):
    meta, tensors = exported
    tensors = dict(tensors)
    tensors[name] = change(tensors[name])
    path = tmp_path / "changed.safetensors"
    path.write_bytes(save(tensors, metadata=meta))
    return path


@settings(**FAST)
@given(data=st.data(), dtype=st.sampled_from([torch.int32, torch.int16, torch.int8,
                                               torch.uint8, torch.int64, torch.bool]))
def test_integer_headers_over_float_weights_are_refused(data, dtype, exported, tmp_path):
    floats = sorted(k for k, v in exported[1].items() if v.is_floating_point())
    name = data.draw(st.sampled_from(floats))
    same_width = dtype.itemsize == 4  # I32 over F32: the very bytes, read as integers
    path = rewrite(exported, tmp_path, name,
                   lambda t: t.view(dtype) if same_width else t.to(dtype))
    with pytest.raises(CheckpointError, match=rf"{path}: tensor {name} is stored as"):
        load_generator(path)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_floats_of_another_width_load(dtype, exported, tmp_path):
    name = next(k for k, v in exported[1].items() if v.is_floating_point())
    generator = load_generator(rewrite(exported, tmp_path, name, lambda t: t.to(dtype)))
    assert generator(torch.zeros(2, generator.z_dim)).abs().max() <= 1


def test_a_float_counter_is_refused(exported, tmp_path):
    name = next((k for k, v in exported[1].items() if not v.is_floating_point()), None)
    if name is None:
        pytest.skip("this generator has no integer tensor")
    with pytest.raises(CheckpointError, match=name):
        load_generator(rewrite(exported, tmp_path, name, lambda t: t.to(torch.float32)))
