"""Several processes on the CPU (gloo): DDP keeps ranks identical and equals one process.

The equality with a one-process run uses networks without BatchNorm and without dropout:
BatchNorm normalises over each rank's half of the batch (the one-process run normalises over
all of it), and dropout masks come from each process's own random stream. Every other part of
the step is a mean over samples, so averaging the ranks' gradients gives the one-process
gradient of the global batch, up to float rounding.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from wganlab.config import apply_overrides, get_preset
from wganlab.errors import ConfigError
from wganlab.models import build_models
from wganlab.training import distributed
from wganlab.training.distributed import Shard
from wganlab.training.optim import make_optimizer
from wganlab.training.runner import make_runner
from wganlab.training.schedule import epoch_order

STEPS = 2
TOLERANCE = 1e-5  # |two processes - one process| per weight, after STEPS steps (seen: 3e-7)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def without_batchnorm(module: nn.Module) -> nn.Module:
    for name, child in module.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            setattr(module, name, nn.Identity())
        else:
            without_batchnorm(child)
    return module


def train_steps(rank: int, world: int, preset: str, plain: bool, port: int, out: str) -> None:
    """STEPS steps of the runner training/loop.py uses; every rank checks all ranks hold the same
    weights after each step, and rank 0 saves its weights."""
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    model = dict(g_filters=8, c_filters=4) | (dict(dropout=0.0) if plain else {})
    cfg = apply_overrides(get_preset(preset), {"model": model, "train": dict(batch_size=8)})
    torch.manual_seed(0)
    G, C = build_models(cfg.model, (1, 28, 28))
    if plain:
        G, C = without_batchnorm(G), without_batchnorm(C)
    images = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    g_opt = make_optimizer(cfg, G.parameters(), cfg.train.g_lr)
    c_opt = make_optimizer(cfg, C.parameters(), cfg.train.c_lr)
    noise = torch.Generator().manual_seed(5)
    cpu = torch.device("cpu")
    runner = make_runner(cfg, G, C, g_opt, c_opt, images, noise, cpu, Shard(rank, world))
    order = epoch_order(len(images), 1, 0, cpu)
    per_step = 1 if cfg.train.shared_step else cfg.train.n_critic
    history = []
    for i in range(STEPS):
        runner.step(order, i * per_step)
        weights = torch.cat([p.detach().flatten() for p in [*G.parameters(),
                                                            *C.parameters()]])
        if world > 1:
            every = [torch.empty_like(weights) for _ in range(world)]
            dist.all_gather(every, weights)
            same = all(torch.equal(w, every[0]) for w in every)
            assert same, f"rank {rank}: weights differ between ranks after step {i + 1}"
        history.append(weights)
    if rank == 0:
        torch.save({"weights": torch.stack(history), "noise": noise.get_state()}, out)
    if world > 1:
        dist.barrier()  # leaving while a peer still talks to us aborts gloo ("terminate called")
        dist.destroy_process_group()
        # A spawned rank ends here: skipping the interpreter's teardown avoids gloo's
        # threads being destroyed while joinable ("terminate called", SIGABRT).
        os._exit(0)


def two_processes(preset, plain, out):
    mp.spawn(train_steps, args=(2, preset, plain, free_port(), str(out)), nprocs=2)
    return torch.load(out, weights_only=True)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["wgan-gp", "seed"])
def test_two_processes_equal_one_with_the_same_global_batch(tmp_path, preset):
    two = two_processes(preset, True, tmp_path / "two.pt")
    train_steps(0, 1, preset, True, 0, str(tmp_path / "one.pt"))
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    assert (two["weights"][0] != two["weights"][-1]).any()  # the weights did move
    assert (two["weights"] - one["weights"]).abs().max() <= TOLERANCE
    # every rank drew the global batch's z and skipped the others' alphas: same stream
    assert torch.equal(two["noise"], one["noise"])


@pytest.mark.slow
def test_ranks_stay_identical_with_batchnorm_and_dropout(tmp_path):
    # The seed recipe: BatchNorm critic and generator (per-rank statistics) and dropout.
    two = two_processes("seed", False, tmp_path / "two.pt")
    assert torch.isfinite(two["weights"]).all()


@pytest.mark.slow
def test_torchrun_trains_with_only_rank_0_writing(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", str(free_port()), "-m", "wganlab", "train", "--preset", "wgan-gp",
           "--device", "cpu", "--dataset", "synthetic", "--steps", "2", "--batch-size", "8",
           "--g-filters", "8", "--c-filters", "4", "--log-every", "1", "--no-progress",
           "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["world_size"] == 2 and run["step_mode"] == "eager"
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "g_loss" in r] == [1, 2]  # one line per step
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000002.pt"]
    assert not list(Path(tmp_path).glob("run-*"))


def test_shard_takes_its_slice():
    x = torch.arange(12)
    assert torch.equal(Shard(1, 3).take(x), torch.tensor([4, 5, 6, 7]))
    assert Shard(0, 1).take(x) is not None and torch.equal(Shard().take(x), x)
    assert Shard(0, 2).is_main and not Shard(1, 2).is_main


def test_batch_must_split_evenly():
    distributed.check_batch(8, Shard(1, 4))
    with pytest.raises(ConfigError, match="--batch-size: 10 does not split evenly over 4"):
        distributed.check_batch(10, Shard(0, 4))
    with pytest.raises(ConfigError, match="fewer than 2 images"):
        distributed.check_batch(4, Shard(0, 4))


def test_world_from_env(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.world_from_env() == (0, 1, 0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ConfigError, match="RANK=5 WORLD_SIZE=4"):
        distributed.world_from_env()
    monkeypatch.setenv("RANK", "two")
    with pytest.raises(ConfigError, match="must be integers"):
        distributed.world_from_env()


def test_one_process_needs_no_process_group(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    shard, device = distributed.setup("cpu")
    assert shard == Shard() and device.type == "cpu" and not dist.is_initialized()
    assert distributed.backend_for(torch.device("cuda", 0)) == "nccl"
    assert distributed.backend_for(device) == "gloo"
    values = torch.tensor([1.0, 2.0])
    assert distributed.mean_across(values, shard) is values
    assert distributed.any_across(True, shard, device) is True
    module = nn.Linear(2, 2)
    assert distributed.wrap(module, device, shard) is module
