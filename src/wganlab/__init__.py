"""wganlab: train, inspect and compare DCGAN / Wasserstein GANs."""

import importlib

__version__ = "0.1.0"

# Exported names and the module holding each. They load on first use (PEP 562), so that
# `import wganlab.cli` stays light: the command starts at once and a Ctrl-C while PyTorch
# loads is caught by the command's own handler instead of ending in a traceback.
_EXPORTS = {
    "Config": "config", "ModelConfig": "config", "TrainConfig": "config",
    "RunConfig": "config", "get_preset": "config",
    "critic_wasserstein": "losses", "generator_wasserstein": "losses",
    "gradient_penalty": "losses",
    "Critic": "models", "Generator": "models", "build_models": "models",
}

__all__ = [
    "Config", "ModelConfig", "TrainConfig", "RunConfig", "get_preset",
    "Generator", "Critic", "build_models",
    "critic_wasserstein", "generator_wasserstein", "gradient_penalty",
    "train",
]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'wganlab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


def train(cfg, resume=False):
    """Train a run from a Config; see wganlab.training.loop.train."""
    from .training.loop import train as _train

    return _train(cfg, resume)
