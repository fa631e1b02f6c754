"""The CUDA fast path: a whole generator step captured as one CUDA graph and replayed.

What one replay does (the same updates, in the same order, as the eager step in runner.py):
- gathers this step's real batches with `index_select` from the uint8 data resident on the
  GPU, through a static index buffer that the host refills before each replay with the
  step's slice of the epoch order (the same order the eager path uses, so both paths see the
  same batches; no host-side batch is built);
- gathers the batches' class labels (conditional runs) the same way, from the label tensor
  resident beside the images;
- draws z and the penalty's interpolation weights (and, with --xflip / --augment, the flips
  and augmentations) from the run's noise generator, which is registered with the graph so
  each replay advances it like eager draws would; --augment-p auto's p is a device tensor
  the replay reads, adjusted in place between replays;
- runs steps.Step, the step every runner runs: n_critic critic updates and the generator
  update (or the tutorial's shared step), with `Adam(capturable=True)` (fused by default,
  kernels.py) or RMSprop stepping on device-side step counters;
- packs every logged value into one static vector, which the host clones after the replay.

Nothing in the step reads a value back on the host, so it needs no synchronisation; the price
is how --on-nan works (the eager path checks finiteness before every optimizer step):
- on_nan=stop: each step records whether any logged value or gradient norm was non-finite;
  the training loop reads that flag with the metrics every --log-every steps and stops there,
  naming the first bad step. Up to log_every - 1 further steps run on the damaged weights,
  but no checkpoint is written from them: every checkpoint follows that check.
- on_nan=skip: exact, on the device. The parameters and optimizer state are copied before
  each optimizer step and put back with `torch.where` when the step was not finite (a few
  percent of a step's time; paid only with --on-nan skip).

Warm-up: the first WARMUP_STEPS steps run the same static step uncaptured on a side stream
(they are real training steps; they create the optimizer state and let cuDNN pick its
kernels), the next one is captured and replayed, and every later step is one replay. If the
capture raises, the run continues eagerly and says why. Several steps per graph would save
one graph launch (microseconds) per step of several milliseconds, at the price of the loop's
per-step logging and stopping, so one step per graph it is.

bf16 (--bf16) means what it means on every path (steps.Step): forward passes and losses
under `torch.autocast(dtype=torch.bfloat16)`, backward passes outside it.
"""

from __future__ import annotations

import sys

import torch

from ..base.device import same_device
from ..config import Config
from .batches import BatchMaker
from .kernels import cudnn_benchmark
from .members import expand, make_check
from .steps import DeviceCheck, Step

WARMUP_STEPS = 3


def graph_blockers(cfg: Config, device: torch.device, images: torch.Tensor, world: int,
                   enabled: bool = True) -> list[str]:
    """Why the step cannot run as a CUDA graph here (empty when it can)."""
    reasons = []
    if not enabled:
        reasons.append("--no-cuda-graph")
    if device.type != "cuda":
        reasons.append(f"device is {device.type}; CUDA graphs need a CUDA device")
    if world > 1:
        reasons.append("several processes: DDP's gradient all-reduce is not captured here")
    if device.type == "cuda" and not same_device(images.device, device):
        if images.device.type == "cpu":
            reasons.append("the data set (over 4 GiB) stays in host memory; the graph "
                           "gathers batches on the device")
        else:
            reasons.append(f"the data is on {images.device}, the run on {device}")
    if not hasattr(getattr(torch.cuda, "CUDAGraph", None), "register_generator_state"):
        reasons.append(f"PyTorch {torch.__version__} cannot register a torch.Generator with "
                       "a CUDA graph")
    return reasons


class StaticStep:
    """One generator step as device work only: no value is read back on the host.

    `load(order, first)` fills the static index buffer (outside any graph); calling the
    object makes the batch (batches.BatchMaker) and runs the step (steps.Step, with a
    DeviceCheck), returning one vector of logged values, named by `keys`.
    """

    def __init__(self, cfg: Config, generator, critic, g_opt, c_opt, images: torch.Tensor,
                 noise: torch.Generator, device: torch.device, augment_state=None,
                 labels: torch.Tensor | None = None):
        self.cfg, self.device, self.noise = cfg, device, noise
        self.speed = cfg.speed
        self.maker = BatchMaker(cfg, images, noise, device, augment_state=augment_state,
                                labels=labels)
        self.body = Step(cfg, generator, critic, g_opt, c_opt, make_check(cfg, DeviceCheck),
                         device.type, self.maker.augmenter)
        self.idx = torch.zeros(self.maker.updates * cfg.train.batch_size * cfg.train.ensemble,
                               dtype=torch.long, device=device)
        # Every generator the step draws from, each registered with the graph: the noise
        # stream(s), the augmentation's, and an ensemble critic's dropout streams (ensemble.py).
        augmenter = self.maker.augmenter
        self.generators = list(self.maker.noises) + (augmenter.streams if augmenter else []) \
            + list(getattr(critic, "generators", []))
        self.keys: list[str] | None = None
        self.last_real: torch.Tensor | None = None  # in a graph: a buffer each replay refills
        self.last_labels: torch.Tensor | None = None  # its labels (conditional runs), alike

    def load(self, order: torch.Tensor, first: int) -> None:
        """Fills the index buffer with the step's batches from batch `first` of `order`."""
        self.idx.copy_(self.maker.indices(order, first), non_blocking=True)

    def __call__(self) -> torch.Tensor:
        batch = self.maker.make(self.idx)
        self.last_real = batch.reals[-1]
        self.last_labels = None if batch.labels is None else batch.labels[-1]
        terms, ok = self.body(batch)
        terms = expand(terms) if self.body.members > 1 else terms
        terms["nonfinite"] = ~ok.all()
        if self.keys is None:
            self.keys = list(terms)
        return torch.stack([terms[k].float() for k in self.keys])


class GraphStep:
    """Runs a StaticStep: a few uncaptured warm-up steps, then one CUDA-graph replay a step."""

    mode = "cuda-graph"

    def __init__(self, static: StaticStep, fallback, warmup: int = WARMUP_STEPS):
        self.static, self.fallback, self.warmup = static, fallback, warmup
        self.calls, self.graph, self.out, self.eager = 0, None, None, None
        self.reason = ""
        self.side = torch.cuda.Stream(static.device)

    @property
    def last_real(self) -> torch.Tensor | None:
        """The real batch of the last step's generator update."""
        return (self.eager or self.static).last_real

    @property
    def last_labels(self) -> torch.Tensor | None:
        """The labels of that batch (conditional runs; else None)."""
        return (self.eager or self.static).last_labels

    def step(self, order: torch.Tensor, first: int) -> dict[str, torch.Tensor]:
        """One step from batch `first`: eager warm-up, then graph replays; the values to log."""
        if self.eager is not None:
            return self.eager.step(order, first)
        self.static.load(order, first)
        if self.graph is None and self.calls >= self.warmup:
            try:
                with cudnn_benchmark(self.static.speed.cudnn_benchmark):
                    self._capture()
            except Exception as e:  # any capture failure: carry on eagerly, and say why
                return self._fall_back(f"capture failed: {type(e).__name__}: {e}", order,
                                       first)
        if self.graph is not None:
            self.graph.replay()
            out = self.out
        else:
            with cudnn_benchmark(self.static.speed.cudnn_benchmark):
                out = self._warm()
        self.calls += 1
        values = out.clone()  # the next replay overwrites self.out
        return {k: values[i] for i, k in enumerate(self.static.keys)}

    def _warm(self) -> torch.Tensor:
        main = torch.cuda.current_stream(self.static.device)
        self.side.wait_stream(main)
        with torch.cuda.stream(self.side):
            out = self.static()
        # No record_stream needed: the next side-stream work waits for the main stream,
        # which has cloned `out` by then.
        main.wait_stream(self.side)
        return out

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        for generator in self.static.generators:
            graph.register_generator_state(generator)
        main = torch.cuda.current_stream(self.static.device)
        try:
            with torch.cuda.graph(graph):
                self.out = self.static()
        finally:
            # A capture_end that raises skips torch's own restore of the current stream.
            torch.cuda.set_stream(main)
        self.graph = graph

    def _fall_back(self, reason: str, order, first) -> dict[str, torch.Tensor]:
        torch.cuda.synchronize(self.static.device)
        self.graph, self.out = None, None
        self.eager = self.fallback()
        self.mode, self.reason = "eager", reason
        print(f"wganlab: CUDA graph not used ({reason}); continuing with eager steps",
              file=sys.stderr)
        return self.eager.step(order, first)
