"""wganlab: train, inspect and compare DCGAN / Wasserstein GANs.

From a notebook:

    import wganlab
    generator = wganlab.load_generator("runs/cpu-demo")   # run, checkpoint, export, hf://
    images = wganlab.sample(generator, 64, seed=0)         # uint8 (64, C, H, W)
    record = wganlab.evaluate_images(images, dataset="fashion-mnist")

`train(cfg, data=...)` trains on a named data set or on your own images; `get_preset` gives
a Config to start from. The command line (`wganlab --help`) calls the same functions.
"""

from typing import TYPE_CHECKING

from .version import __version__

# Where each public name lives. Each is imported on first use (PEP 562): `import wganlab`
# loads no PyTorch, so the command can catch a Ctrl-C while PyTorch loads (__main__.py).
_HOMES = {
    # Configuration.
    "Config": "config", "ModelConfig": "config", "TrainConfig": "config",
    "RunConfig": "config", "get_preset": "config",
    # Training, loading, sampling, measuring, sharing.
    "train": "api", "load_dataset": "api", "load_generator": "api", "sample": "api",
    "evaluate_images": "api", "evaluate_run": "api", "export": "api",
    # The networks and losses, for your own loops.
    "Generator": "models", "Critic": "models", "build_models": "models",
    "critic_wasserstein": "losses", "generator_wasserstein": "losses",
    "gradient_penalty": "losses",
}
# Written out, not derived from _HOMES: linters and type checkers read __all__ literally.
__all__ = [
    "__version__",
    "Config", "ModelConfig", "TrainConfig", "RunConfig", "get_preset",
    "train", "load_dataset", "load_generator", "sample", "evaluate_images", "evaluate_run",
    "export",
    "Generator", "Critic", "build_models",
    "critic_wasserstein", "generator_wasserstein", "gradient_penalty",
]

if TYPE_CHECKING:
    from .api import (
        evaluate_images,
        evaluate_run,
        export,
        load_dataset,
        load_generator,
        sample,
        train,
    )
    from .config import Config, ModelConfig, RunConfig, TrainConfig, get_preset
    from .losses import critic_wasserstein, generator_wasserstein, gradient_penalty
    from .models import Critic, Generator, build_models


def __getattr__(name: str):
    """Import a public name's module on first use."""
    if name not in _HOMES:
        raise AttributeError(f"module 'wganlab' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, the lazily imported ones included."""
    return sorted(set(globals()) | set(_HOMES))
