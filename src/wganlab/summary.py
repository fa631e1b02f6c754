"""A per-layer table like Keras's model.summary(), from forward hooks."""

from __future__ import annotations

import torch
from torch import nn

from .models import eval_mode


def _param_counts(module: nn.Module) -> tuple[int, int]:
    """Trainable parameters and, as Keras counts them, non-trainable running statistics."""
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    stats = sum(b.numel() for name, b in module.named_buffers()
                if name.endswith(("running_mean", "running_var")))
    return trainable, frozen + stats


def summary(model: nn.Module, example: torch.Tensor, title: str = "",
            labels: torch.Tensor | None = None) -> str:
    """Run one forward pass on `example` (with `labels`, for a conditional network) and
    tabulate each leaf layer's output and parameters (the totals count every parameter,
    class embeddings included)."""
    rows, hooks = [], []
    leaves = [(name, m) for name, m in model.named_modules()
              if not list(m.children()) or hasattr(m, "parametrizations")]
    for name, module in leaves:
        if any(name.startswith(other + ".") for other, _ in leaves if other != name):
            continue  # inside a parametrized layer

        def hook(mod, inputs, output, name=name):
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else "-"
            own = sum(_param_counts(mod))
            rows.append((f"{name} ({type(mod).__name__})", f"(None, {', '.join(map(str, shape))})",
                         own))

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad(), eval_mode(model):
            model(example) if labels is None else model(example, labels)
    finally:
        for h in hooks:
            h.remove()
    trainable, non_trainable = _param_counts(model)
    width = 74
    lines = [f'Model: "{title or type(model).__name__}"', "_" * width,
             f"{'Layer (type)':<36}{'Output Shape':<26}{'Param #':>12}", "=" * width]
    for layer, shape, n in rows:
        lines += [f"{layer:<36}{shape:<26}{n:>12,}", "_" * width]
    lines[-1] = "=" * width
    lines += [f"Total params: {trainable + non_trainable:,}",
              f"Trainable params: {trainable:,}",
              f"Non-trainable params: {non_trainable:,}", "_" * width]
    return "\n".join(lines)
