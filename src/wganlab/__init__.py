"""wganlab: train, inspect and compare DCGAN / Wasserstein GANs."""

__version__ = "0.1.0"

from .config import Config, ModelConfig, RunConfig, TrainConfig, get_preset  # noqa: E402
from .losses import (  # noqa: E402
    critic_wasserstein,
    generator_wasserstein,
    gradient_penalty,
)
from .models import Critic, Generator, build_models  # noqa: E402

__all__ = [
    "Config", "ModelConfig", "TrainConfig", "RunConfig", "get_preset",
    "Generator", "Critic", "build_models",
    "critic_wasserstein", "generator_wasserstein", "gradient_penalty",
    "train",
]


def train(cfg, resume=False):
    """Train a run from a Config; see wganlab.train.train."""
    from .training.loop import train as _train

    return _train(cfg, resume)
