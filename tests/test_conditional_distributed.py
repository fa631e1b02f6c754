"""DDP with labels (gloo, on the CPU): each rank gathers its slice of the batch's labels with
its slice of the images, so two processes equal one process on the global batch, as for
unconditional runs (test_distributed.py says why without BatchNorm and dropout)."""

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from test_distributed import STEPS, TOLERANCE, free_port, without_batchnorm
from wganlab.config import apply_overrides, get_preset
from wganlab.models import build_models
from wganlab.training.distributed import Shard
from wganlab.training.optim import make_optimizer
from wganlab.training.runner import make_runner
from wganlab.training.schedule import epoch_order

NAMES = tuple("abcde")


def train_steps(rank: int, world: int, kind: str, port: int, out: str) -> None:
    """STEPS conditional steps of the runner train.py uses; rank 0 saves its weights."""
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    cfg = apply_overrides(get_preset("wgan-gp"), {
        "model": dict(g_filters=8, c_filters=4, dropout=0.0, conditional=kind,
                      class_names=NAMES),
        "train": dict(batch_size=8)})
    torch.manual_seed(0)
    G, C = (without_batchnorm(net) for net in build_models(cfg.model, (1, 28, 28)))
    images = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, len(NAMES), (200,), generator=torch.Generator().manual_seed(2))
    g_opt = make_optimizer(cfg, G.parameters(), cfg.train.g_lr)
    c_opt = make_optimizer(cfg, C.parameters(), cfg.train.c_lr)
    cpu = torch.device("cpu")
    runner = make_runner(cfg, G, C, g_opt, c_opt, images, torch.Generator().manual_seed(5),
                         cpu, Shard(rank, world), labels=labels)
    order = epoch_order(len(images), 1, 0, cpu)
    for i in range(STEPS):
        runner.step(order, i * cfg.train.n_critic)
    if rank == 0:
        torch.save(torch.cat([p.detach().flatten() for p in [*G.parameters(),
                                                            *C.parameters()]]), out)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
        # A spawned rank ends here: skipping the interpreter's teardown avoids gloo's
        # threads being destroyed while joinable ("terminate called", SIGABRT).
        os._exit(0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["projection", "acgan"])
def test_two_processes_with_labels_equal_one(tmp_path, kind):
    mp.spawn(train_steps, args=(2, kind, free_port(), str(tmp_path / "two.pt")), nprocs=2)
    train_steps(0, 1, kind, 0, str(tmp_path / "one.pt"))
    two = torch.load(tmp_path / "two.pt", weights_only=True)
    one = torch.load(tmp_path / "one.pt", weights_only=True)
    assert (two - one).abs().max() <= TOLERANCE
