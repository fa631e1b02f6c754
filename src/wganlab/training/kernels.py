"""Faster kernels for the same step: each a setting of config.SpeedConfig, none changing the
maths.

- fused_optimizer: Adam as one fused kernel per device and dtype (`fused=True`) instead of one
  small kernel per tensor and operation; RMSprop, which has no fused form, as foreach kernels.
  Fused Adam keeps its step counters on the device, so it stays capturable in a CUDA graph.
- cudnn_benchmark: let cuDNN time its convolution algorithms once per shape and keep the
  fastest (the step's shapes never change). Set only while the project's step runs.
- channels_last: the networks' 4-D weights and the real batches in NHWC memory layout, the
  layout tensor-core convolutions want (saves the NCHW<->NHWC conversion kernels).
- bf16: autocast for the forward passes and losses (this one rounds differently; see
  steps.Step).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def prepare_optimizer(optimizer: torch.optim.Optimizer, capturable: bool, fused: bool) -> None:
    """Switch Adam/RMSprop between capturable and ordinary, fused (foreach) and per-tensor.

    Also undoes the flags a checkpoint from another kind of run carries, so a graph run
    resumes on a CPU. Step counters go where the chosen implementation reads them: on the
    parameter's device when capturable or fused, else on the CPU.
    """
    is_adam = isinstance(optimizer, torch.optim.Adam)
    for group in optimizer.param_groups:
        group["capturable"] = capturable
        if is_adam:
            group["fused"], group["foreach"] = (True, None) if fused else (None, None)
        elif "foreach" in group:
            group["foreach"] = True if fused else None
    on_device = capturable or (fused and is_adam)
    for param, state in optimizer.state.items():
        step = state.get("step")
        if isinstance(step, torch.Tensor):
            state["step"] = step.to(param.device if on_device else "cpu", torch.float32)


def to_channels_last(*modules: nn.Module) -> None:
    """4-D weights in NHWC layout, in place (the parameters stay the same objects)."""
    for module in modules:
        module.to(memory_format=torch.channels_last)


def match_state_layout(optimizer: torch.optim.Optimizer) -> None:
    """Optimizer state shaped like its parameter in that parameter's memory layout.

    A checkpoint written with one layout and resumed with the other would otherwise pair
    NHWC moments with NCHW weights, which the fused kernels do not take.
    """
    for param, state in optimizer.state.items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape and \
                    value.stride() != param.stride():
                state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """x in channels-last memory format when `channels_last`, else x unchanged."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@contextlib.contextmanager
def cudnn_benchmark(on: bool):
    """torch.backends.cudnn.benchmark on inside (when `on`), put back after.

    Scoped to the step so that whatever else runs in the process (the benchmark's baseline)
    keeps its own setting; off, the process's setting stands.
    """
    before = torch.backends.cudnn.benchmark
    if on:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = before
