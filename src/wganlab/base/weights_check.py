"""The kinds of numbers in a weights file, checked against what the network holds.

A safetensors header states each tensor's dtype, and loading casts whatever it says into the
network: a header saying I32 over float32 bytes loads the float bits as integers (about
±1e9) and every pixel saturates. So each tensor must be of the network's kind: a float
(any width: a float16 export is a fair copy) where the network has floats, an integer where
it has integers (BatchNorm's step counter).
"""

from __future__ import annotations

import torch

from ..errors import CheckpointError


def _kind(dtype: torch.dtype) -> str:
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "float"
    return "bool" if dtype == torch.bool else "integer"


def check_dtypes(weights: dict, build, source) -> None:
    """CheckpointError naming the first tensor of `weights` whose kind differs from the one
    the network `build()` makes holds there (built on the meta device: no memory)."""
    with torch.device("meta"):
        expected = {k: v.dtype for k, v in build().state_dict().items()}
    for name, want in expected.items():
        got = weights.get(name)
        if isinstance(got, torch.Tensor) and _kind(got.dtype) != _kind(want):
            raise CheckpointError(
                f"{source}: tensor {name} is stored as {str(got.dtype).removeprefix('torch.')}, "
                f"but the network holds {_kind(want)}s there "
                f"({str(want).removeprefix('torch.')}); the file's header does not match its "
                "weights")
