"""The CUDA fast path: a whole generator step captured as one CUDA graph and replayed.

What one replay does (the same updates, in the same order, as the eager step in runner.py):
- gathers this step's real batches with `index_select` from the uint8 data resident on the
  GPU, through a static index buffer that the host refills before each replay with the
  step's slice of the epoch order (the same order the eager path uses, so both paths see the
  same batches; no host-side batch is built);
- draws z and the penalty's interpolation weights from the run's noise generator, which is
  registered with the graph so each replay advances it like eager draws would;
- runs n_critic critic updates and the generator update (or the tutorial's shared step), with
  `Adam(capturable=True)` (fused by default, kernels.py) or RMSprop stepping on device-side
  step counters;
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

bf16 (--bf16): forward passes and losses under `torch.autocast(dtype=torch.bfloat16)`;
backward passes outside it. The penalty's gradient is taken with respect to the fp32
interpolates, so the gradient and its norm stay fp32.
"""

from __future__ import annotations

import contextlib
import sys

import torch

from ..base.device import same_device
from ..config import Config
from ..data import sample_z, to_float
from .kernels import Speed, cudnn_benchmark, layout
from .steps import clip_weights, critic_terms, generator_loss, generator_terms

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


def check_batches(order: torch.Tensor, first: int, count: int, batch_size: int) -> None:
    """Refuse batches that reach past the epoch order (a short slice would gather nothing, or
    the wrong count, instead of failing)."""
    if first < 0 or (first + count) * batch_size > len(order):
        last = first + count - 1
        which = f"batch {first}" if count == 1 else f"batches {first}-{last}"
        raise IndexError(f"{which} of {batch_size} images need images up to "
                         f"{(last + 1) * batch_size} of the epoch order, but the data set "
                         f"holds {len(order)}")


def _state_tensors(optimizer, params) -> list[torch.Tensor]:
    return [v for p in params for v in optimizer.state.get(p, {}).values()
            if isinstance(v, torch.Tensor)]


def step_unless(optimizer, params: list, bad: torch.Tensor | None) -> None:
    """optimizer.step(), undone on the device where the 0-dim bool `bad` is true."""
    if bad is None:
        optimizer.step()
        return
    saved = {id(t): t.clone() for t in list(params) + _state_tensors(optimizer, params)}
    optimizer.step()
    with torch.no_grad():
        for t in list(params) + _state_tensors(optimizer, params):
            # State born in this very step (the first one) goes back to its fresh zeros.
            old = saved.get(id(t))
            t.copy_(torch.where(bad, torch.zeros_like(t) if old is None else old, t))


class StaticStep:
    """One generator step as device work only: no value is read back on the host.

    `load(order, first)` fills the static index buffer (outside any graph); calling the
    object runs the step and returns one vector of logged values, named by `keys`.
    """

    def __init__(self, cfg: Config, generator, critic, g_opt, c_opt, images: torch.Tensor,
                 noise: torch.Generator, device: torch.device, speed: Speed = Speed()):
        self.t, self.cfg = cfg.train, cfg
        self.generator, self.critic, self.g_opt, self.c_opt = generator, critic, g_opt, c_opt
        self.images, self.noise, self.device, self.speed = images, noise, device, speed
        self.n_batches = 1 if self.t.shared_step else self.t.n_critic
        self.idx = torch.zeros(self.n_batches * self.t.batch_size, dtype=torch.long,
                               device=device)
        self.skip = cfg.run.on_nan == "skip"
        self.keys: list[str] | None = None
        self.last_real: torch.Tensor | None = None  # in a graph: a buffer each replay refills

    def load(self, order: torch.Tensor, first: int) -> None:
        """Fills the index buffer with the step's batches from batch `first` of `order`."""
        b = self.t.batch_size
        check_batches(order, first, self.n_batches, b)
        self.idx.copy_(order[first * b:(first + self.n_batches) * b], non_blocking=True)

    def _autocast(self):
        if not self.speed.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _z(self) -> torch.Tensor:
        return sample_z(self.t.batch_size, self.cfg.model.z_dim, self.t.z_dist, self.noise,
                        self.device)

    def _update(self, optimizer, params, terms: dict, prefix: str) -> torch.Tensor:
        """Step the optimizer; returns the 0-dim bool "every term and gradient finite"."""
        grads = [p.grad for p in params if p.grad is not None]
        terms[f"{prefix}_grad_norm"] = torch.nn.utils.get_total_norm(grads)
        finite = torch.isfinite(torch.stack([v.float() for v in terms.values()])).all()
        step_unless(optimizer, params, ~finite if self.skip else None)
        return finite

    def _critic_update(self, real: torch.Tensor) -> tuple[dict, torch.Tensor]:
        t, critic = self.t, self.critic
        z = self._z()
        with torch.no_grad(), self._autocast():
            fake = self.generator(z)
        with self._autocast():
            loss, terms = critic_terms(t, critic, real, fake, self.noise,
                                       self.speed.concat_critic)
        terms.pop("_d_fake")
        params = [p for p in critic.parameters() if p.requires_grad]
        self.c_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        ok = self._update(self.c_opt, params, terms, "c")
        if t.clip is not None:  # a no-op on weights a skipped step put back: they were clipped
            terms["clip_share"] = clip_weights(critic, t.clip)
        return terms, ok

    def _generator_update(self, real: torch.Tensor) -> tuple[dict, torch.Tensor]:
        z = self._z()
        with self._autocast():
            loss, terms = generator_terms(self.t, self.critic, self.generator(z), real)
        params = [p for p in self.generator.parameters() if p.requires_grad]
        self.g_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=params)
        return terms, self._update(self.g_opt, params, terms, "g")

    def _shared_update(self, real: torch.Tensor) -> tuple[dict, torch.Tensor]:
        """steps.shared_update without its host check: both gradients, then both steps."""
        t, z = self.t, self._z()
        with self._autocast():
            fake = self.generator(z)
            c_loss, terms = critic_terms(t, self.critic, real, fake, self.noise,
                                         self.speed.concat_critic)
            d_fake = terms.pop("_d_fake")
            if t.feature_matching:
                g_loss, g_terms = generator_terms(t, self.critic, fake, real)
            else:  # the scores the critic's loss used, as steps.shared_update does
                g_loss = generator_loss(t, d_fake)
                g_terms = {"g_loss": g_loss.detach()}
        terms.update(g_terms)
        c_params = [p for p in self.critic.parameters() if p.requires_grad]
        g_params = [p for p in self.generator.parameters() if p.requires_grad]
        self.c_opt.zero_grad(set_to_none=True)
        self.g_opt.zero_grad(set_to_none=True)
        c_loss.backward(inputs=c_params, retain_graph=True)
        g_loss.backward(inputs=g_params)
        terms["c_grad_norm"] = torch.nn.utils.get_total_norm(
            [p.grad for p in c_params if p.grad is not None])
        ok = self._update(self.g_opt, g_params, terms, "g")
        step_unless(self.c_opt, c_params, ~ok if self.skip else None)
        return terms, ok

    def __call__(self) -> torch.Tensor:
        b = self.t.batch_size
        images = torch.index_select(self.images, 0, self.idx)
        reals = layout(to_float(images), self.speed.channels_last).unflatten(
            0, (self.n_batches, b))
        self.last_real = reals[-1]
        if self.t.shared_step:
            terms, ok = self._shared_update(reals[0])
        else:
            c_terms, oks = [], []
            for j in range(self.n_batches):
                ct, ok = self._critic_update(reals[j])
                c_terms.append(ct)
                oks.append(ok)
            terms = {k: torch.stack([c[k] for c in c_terms]).mean() for k in c_terms[-1]}
            g_terms, g_ok = self._generator_update(reals[-1])
            terms.update(g_terms)
            ok = torch.stack(oks + [g_ok]).all()
        terms["nonfinite"] = ~ok
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
        graph.register_generator_state(self.static.noise)
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
