"""Inception-v3 features for RGB data sets (CIFAR-10, image folders), the standard FID network.

Used only when torch-fidelity (the `fid` extra) or pytorch-fid is importable and its weights
file is already on disk; wganlab never downloads it. Both ports load the TensorFlow FID
weights from torch's hub cache ($TORCH_HOME/hub/checkpoints).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn as nn

INSTALL_HINT = "pip install -e '.[fid]'"  # from the clone; wganlab is not on PyPI
FIDELITY_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name
PYTORCH_FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's file name


class InceptionUnavailable(RuntimeError):
    """No Inception-v3 port is installed, or its weights are not on disk."""


def hub_checkpoints() -> Path:
    """torch's hub cache, where both Inception ports look for their weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _to_uint8_rgb(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats (N, 1 or 3, H, W) -> uint8 RGB, the input both ports expect."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[1] != 3:
        raise ValueError(f"Inception takes 1 or 3 channels; got {x.shape[1]}")
    return ((x + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


class InceptionEvaluator(nn.Module):
    """The evaluator interface (forward -> (features, logits or None)) over an Inception port.

    Features are the 2048-d pool3 activations; logits are Inception's 1008 ImageNet-ish classes
    (torch-fidelity only), which say little about CIFAR-10 classes: treat mode coverage from
    them with care.
    """

    input_shape = None  # any size: the port resizes to 299 x 299
    feature_dim = 2048

    def __init__(self, net: nn.Module, backend: str, weights: Path):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.backend = backend
        self.info = {"architecture": {"name": f"inception-v3 ({backend})"},
                     "weights_file": str(weights)}
        self.num_classes = 1008 if backend == "torch-fidelity" else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(pool3 features (N, 2048), logits or None) for floats in [-1, 1]."""
        images = _to_uint8_rgb(x)
        if self.backend == "torch-fidelity":
            features, logits = self.net(images)
            return features, logits
        # pytorch-fid takes floats in [0, 1] and returns [(N, 2048, 1, 1)].
        features = self.net(images.to(torch.float32) / 255.0)[0]
        return features.flatten(1), None


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def load_inception(device="cpu") -> InceptionEvaluator:
    """An InceptionEvaluator from torch-fidelity, else pytorch-fid; InceptionUnavailable with
    what to install or where to put the weights when neither can run offline."""
    found = []
    if _installed("torch_fidelity"):
        weights = hub_checkpoints() / FIDELITY_WEIGHTS
        if weights.is_file():
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

            net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048", "logits_unbiased"],
                                              feature_extractor_weights_path=str(weights))
            return InceptionEvaluator(net, "torch-fidelity", weights).to(device)
        found.append(f"torch-fidelity is installed but {weights} is missing")
    if _installed("pytorch_fid"):
        weights = hub_checkpoints() / PYTORCH_FID_WEIGHTS
        if weights.is_file():
            # With the file in the hub cache, pytorch-fid loads it instead of downloading.
            from pytorch_fid.inception import InceptionV3

            net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]])
            return InceptionEvaluator(net, "pytorch-fid", weights).to(device)
        found.append(f"pytorch-fid is installed but {weights} is missing")
    if not found:
        raise InceptionUnavailable(
            "RGB metrics need Inception-v3 features: install a torchvision built for your "
            f"torch, then the extra with `{INSTALL_HINT}`, and put its weights file "
            f"({FIDELITY_WEIGHTS}) in {hub_checkpoints()}; wganlab does not download it")
    raise InceptionUnavailable("; ".join(found) + " (wganlab does not download weights: "
                               "copy the file there from a machine with internet)")
