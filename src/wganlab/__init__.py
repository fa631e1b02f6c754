"""wganlab: train, inspect and compare DCGAN / Wasserstein GANs.

From a notebook:

    import wganlab
    generator = wganlab.load_generator("runs/cpu-demo")   # run, checkpoint, export, hf://
    images = wganlab.sample(generator, 64, seed=0)         # uint8 (64, C, H, W)
    record = wganlab.evaluate_images(images, dataset="fashion-mnist")

`train(cfg, data=...)` trains on a named data set or on your own images; `get_preset` gives
a Config to start from. The command line (`wganlab --help`) calls the same functions.
"""

from .api import evaluate_images, evaluate_run, export, load_dataset, load_generator, sample, train
from .config import Config, ModelConfig, RunConfig, TrainConfig, get_preset
from .losses import critic_wasserstein, generator_wasserstein, gradient_penalty
from .models import Critic, Generator, build_models
from .version import __version__

__all__ = [
    "__version__",
    # Configuration.
    "Config", "ModelConfig", "TrainConfig", "RunConfig", "get_preset",
    # Training, loading, sampling, measuring, sharing.
    "train", "load_dataset", "load_generator", "sample", "evaluate_images", "evaluate_run",
    "export",
    # The networks and losses, for your own loops.
    "Generator", "Critic", "build_models",
    "critic_wasserstein", "generator_wasserstein", "gradient_penalty",
]
