"""Domain evaluators: a small CNN classifier for 28x28 grayscale images whose penultimate layer
is the feature space for FID, KID, precision/recall and coverage, and whose predicted classes
give mode coverage. Weights are stored as safetensors with a JSON sidecar (never pickle).
Which evaluator a data set gets, and training one on demand: evaluator_lookup.py.

    extract_features(ev, images)    (features float64 (N, D), class probabilities (N, K))
    save_evaluator / load_evaluator safetensors + sidecar with the file's SHA-256, checked on load
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from ..data import to_float
from ..errors import CheckpointError

ARCHITECTURE = "wganlab-cnn-v1"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
GRAYSCALE_28 = ("mnist", "fashion-mnist", "synthetic")  # data sets the CNN evaluator serves


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Evaluator(nn.Module):
    """CNN classifier for (N, in_channels, image_size, image_size) floats in [-1, 1].

    features(x) is the penultimate dense layer before its ReLU: pre-activations are closer to
    Gaussian than rectified ones and have no dead (always zero) coordinates, which would make
    the feature covariance singular.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, feature_dim: int = 128,
                 width: int = 32, image_size: int = 28, dropout: float = 0.3):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"Evaluator: image_size must be divisible by 4; got {image_size}")
        self.arch = dict(name=ARCHITECTURE, in_channels=in_channels, num_classes=num_classes,
                         feature_dim=feature_dim, width=width, image_size=image_size,
                         dropout=dropout)
        self.input_shape = (in_channels, image_size, image_size)
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        self.body = nn.Sequential(
            _conv_block(in_channels, width),  # width x 14 x 14 (for 28 x 28 input)
            _conv_block(width, 2 * width),  # (2 width) x 7 x 7
            nn.Flatten(),
            nn.Linear(2 * width * (image_size // 4) ** 2, feature_dim),  # feature_dim
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(feature_dim,
                                                                             num_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(features (N, feature_dim), logits (N, num_classes)) in one pass."""
        features = self.body(x)
        return features, self.head(features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature vectors (N, feature_dim) that FID and the other metrics compare."""
        return self.body(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class scores (N, num_classes), before the softmax."""
        return self.forward(x)[1]


# Weights on disk.

def file_sha256(path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sidecar_path(weights_path) -> Path:
    """The JSON sidecar beside a weights file (same name, .json)."""
    return Path(weights_path).with_suffix(".json")


def save_evaluator(model: Evaluator, path, info: dict) -> dict:
    """Write weights to `path` (.safetensors) and `info` plus the architecture and the file's
    SHA-256 to the sidecar (.json beside it). Returns the sidecar's contents."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata={"architecture": ARCHITECTURE})
    os.replace(tmp, path)  # a reader never sees half a file
    os.chmod(path, 0o644)  # safetensors creates it owner-only; shipped weights must be readable
    sidecar = {"architecture": model.arch, **info, "weights_file": path.name,
               "sha256": file_sha256(path)}
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return sidecar


def read_sidecar(weights_path) -> dict:
    """The sidecar of a weights file; CheckpointError if it is missing or incomplete."""
    side = sidecar_path(weights_path)
    try:
        info = json.loads(side.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{side}: sidecar missing for evaluator weights "
                              f"{weights_path}") from None
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{side}: not valid JSON ({err})") from None
    if not isinstance(info, dict) or "sha256" not in info or "architecture" not in info:
        raise CheckpointError(f"{side}: sidecar lacks 'sha256' or 'architecture'")
    return info


def load_evaluator(path, device="cpu") -> Evaluator:
    """Load an Evaluator from safetensors weights, after checking the file's SHA-256 against
    its sidecar. CheckpointError names the file for any mismatch."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: evaluator weights not found")
    info = read_sidecar(path)
    actual = file_sha256(path)
    if actual != info["sha256"]:
        raise CheckpointError(f"{path}: SHA-256 {actual} does not match {info['sha256']} "
                              f"in {sidecar_path(path).name}; the file is corrupt or replaced")
    arch = dict(info["architecture"])
    if arch.pop("name", None) != ARCHITECTURE:
        raise CheckpointError(f"{path}: architecture {info['architecture'].get('name')!r} "
                              f"is not {ARCHITECTURE!r}")
    try:
        model = Evaluator(**arch)
        model.load_state_dict(load_file(str(path)))
    except (TypeError, RuntimeError, ValueError) as err:
        raise CheckpointError(f"{path}: weights do not fit the evaluator ({err})") from None
    model.info = info
    return model.to(device).eval().requires_grad_(False)


# Features.

def _as_uint8_images(images) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a uint8 torch tensor or NumPy array; "
                        f"got {type(images).__name__}")
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 (N, C, H, W); got {images.dtype} (quantise "
                        "[-1, 1] floats with ((x + 1) * 127.5).round().clamp(0, 255))")
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"images must be 4-D (N, C, H, W) with N >= 1; got shape "
                         f"{tuple(images.shape)}")
    return images


def extract_features(evaluator, images_uint8, batch_size: int = 500, device=None
                     ) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the evaluator over uint8 images (N, C, H, W) in batches, without gradients.

    Returns (features float64 (N, feature_dim), class probabilities float64 (N, num_classes));
    the probabilities are None for an evaluator without a classifier head. `device` defaults
    to the evaluator's own.
    """
    images = _as_uint8_images(images_uint8)
    expected = getattr(evaluator, "input_shape", None)
    if expected is not None and tuple(images.shape[1:]) != tuple(expected):
        raise ValueError(f"images have shape {tuple(images.shape[1:])} per image; this "
                         f"evaluator takes {tuple(expected)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    if device is None:
        device = next(evaluator.parameters()).device
    evaluator = evaluator.to(device).eval()
    features, probs = [], []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = to_float(images[start:start + batch_size]).to(device)
            f, logits = evaluator(x)
            features.append(f.double().cpu())
            if logits is not None:
                probs.append(torch.softmax(logits.double(), dim=1).cpu())
    return torch.cat(features).numpy(), (torch.cat(probs).numpy() if probs else None)
