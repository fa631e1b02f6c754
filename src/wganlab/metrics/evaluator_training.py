"""Train the CNN evaluator of a grayscale 28x28 data set, deterministically, and save it as
safetensors + JSON sidecar. The shipped Fashion-MNIST weights were made with:

    python -m wganlab.metrics.make_evaluator --dataset fashion-mnist \\
        --out src/wganlab/weights/fashion-mnist-evaluator.safetensors

Same seed, torch version, device and thread count give the same bytes: the data order comes
from a seeded generator, dropout from the seeded global RNG (restored afterwards), and
PyTorch's deterministic algorithms are switched on for the duration.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from ..data import load_dataset, to_float
from .evaluator import Evaluator, save_evaluator

BATCH_SIZE = 256
MAX_LR = 3e-3  # peak of the one-cycle schedule (Adam)
# Per data set: epochs; whether left-right flips are a fair augmentation (clothes: yes; digits
# and the oriented bars of `synthetic`: no); the test accuracy the evaluator should reach.
RECIPES = {
    "fashion-mnist": {"epochs": 10, "flip": True, "target": 0.92},
    "mnist": {"epochs": 4, "flip": False, "target": 0.99},
    "synthetic": {"epochs": 3, "flip": False, "target": 0.9},
}


@contextmanager
def _deterministic():
    """PyTorch's deterministic algorithms on for the block, then back as they were."""
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def accuracy(model: Evaluator, images: torch.Tensor, labels: torch.Tensor, device,
             batch_size: int = 1000) -> float:
    """Share of uint8 images (N, C, H, W) whose predicted class equals the label."""
    model.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = to_float(images[start:start + batch_size]).to(device)
            predicted = model.logits(x).argmax(dim=1).cpu()
            correct += int((predicted == labels[start:start + batch_size]).sum())
    return correct / len(images)


def _train_epochs(model, images, labels, epochs: int, flip: bool, generator, device,
                  progress: Callable[[str], None] | None) -> None:
    n = len(images)
    steps_per_epoch = math.ceil(n / BATCH_SIZE)
    optimizer = torch.optim.Adam(model.parameters(), lr=MAX_LR / 25)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, MAX_LR,
                                                   total_steps=epochs * steps_per_epoch)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        for step in range(steps_per_epoch):
            batch = order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE]
            x = to_float(images[batch])
            if flip:
                mirror = torch.rand(len(batch), generator=generator) < 0.5
                x = torch.where(mirror[:, None, None, None], x.flip(3), x)
            loss = F.cross_entropy(model.logits(x.to(device)), labels[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        if progress is not None:
            progress(f"epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.4f}")


def train_evaluator(dataset: str, out_path, epochs: int | None = None, seed: int = 0,
                    device="cpu", data_dir=None,
                    progress: Callable[[str], None] | None = None) -> dict:
    """Train an Evaluator on `dataset`'s train split, measure it on the test split, and save it.

    Returns the sidecar written beside the weights: test_accuracy, sha256, the command that
    reproduces the file, and the training details. `progress`, if given, is called with a
    line of text after each epoch.
    """
    if dataset not in RECIPES:
        raise ValueError(f"train_evaluator: no CNN evaluator recipe for {dataset!r}; "
                         f"choose from {', '.join(RECIPES)}")
    recipe = RECIPES[dataset]
    epochs = recipe["epochs"] if epochs is None else epochs
    if epochs < 1:
        raise ValueError(f"train_evaluator: epochs must be >= 1; got {epochs}")
    train = load_dataset(dataset, "train", data_dir=data_dir)
    test = load_dataset(dataset, "test", data_dir=data_dir)
    device = torch.device(device)

    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]), _deterministic():
        torch.manual_seed(seed)
        model = Evaluator(in_channels=train.images.shape[1], num_classes=train.num_classes,
                          image_size=train.images.shape[-1]).to(device)
        generator = torch.Generator().manual_seed(seed)
        _train_epochs(model, train.images, train.labels, epochs, recipe["flip"], generator,
                      device, progress)
    seconds = time.perf_counter() - started
    test_accuracy = accuracy(model, test.images, test.labels, device)

    command = (f"python -m wganlab.metrics.make_evaluator --dataset {dataset} "
               f"--out {out_path} --epochs {epochs} --seed {seed} --device {device.type}")
    info = {
        "dataset": dataset, "train_source": train.source, "train_size": len(train),
        "test_size": len(test), "test_accuracy": test_accuracy, "epochs": epochs,
        "seed": seed, "batch_size": BATCH_SIZE, "optimizer": f"Adam, one-cycle to {MAX_LR}",
        "flip_augmentation": recipe["flip"], "target_accuracy": recipe["target"],
        "train_seconds": round(seconds, 1),
        "device": device.type, "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(), "command": command,
    }
    return save_evaluator(model, out_path, info)
