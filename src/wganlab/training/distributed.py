"""Several processes, one run: DistributedDataParallel started by torchrun.

    torchrun --nproc-per-node 4 -m wganlab train --preset wgan-gp ...
    # two machines, 8 GPUs each; run this on both with the same --rdzv-endpoint:
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \
        --rdzv-endpoint HOST:29500 --rdzv-id RUN -m wganlab train ...

How the work is split (the choices, and why):
- The global batch is --batch-size, split evenly: rank r takes images
  [r*b, (r+1)*b) of each batch of the epoch order, b = batch_size / world_size. The union over
  ranks of a batch is the one-process batch, so the learning rates mean the same thing at any
  world size.
- Every rank draws the *global* batch's z from the shared noise stream and keeps its slice; for
  the gradient penalty's interpolation weights it skips the other ranks' draws. All ranks'
  noise streams stay identical (and equal to a one-process run's), so a checkpoint resumes
  at any world size. On CPU the draws are the one-process run's exactly; on CUDA Philox
  offsets make them different but identically distributed.
- DDP averages gradients over ranks. Every loss here is a mean over samples, so without
  batch-coupled layers the averaged gradient is the one-process gradient of the global batch.
- BatchNorm (the generator's always, the critic's with --critic-norm batch) normalises over a
  rank's local b images, and running statistics stay per rank (broadcast_buffers=False:
  broadcasting rank 0's buffers in place at each forward would also break the gradient
  penalty's second backward through eval-mode BatchNorm). Rank 0's statistics are saved.
- Only rank 0 writes files, samples, plots and logs; logged values are averaged over ranks.
- Whether to stop (signal, --minutes) is agreed by all ranks after every step, so no rank
  waits forever in a collective the others have left.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..base.device import pick_device
from ..errors import ConfigError


@dataclass(frozen=True)
class Shard:
    """This process's place in the run: rank r of world processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the process that writes files and logs."""
        return self.rank == 0

    def local(self, n: int) -> int:
        """This rank's share of n items (n divides evenly; see check_batch)."""
        return n // self.world

    def take(self, x: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global-batch tensor."""
        n = self.local(len(x))
        return x[self.rank * n:(self.rank + 1) * n]


def world_from_env() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) as torchrun sets them; (0, 1, 0) outside torchrun."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as e:
        raise ConfigError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers ({e})") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ConfigError(f"bad torchrun environment: RANK={rank} WORLD_SIZE={world} "
                          f"LOCAL_RANK={local}")
    return rank, world, local


def backend_for(device: torch.device) -> str:
    """The process-group backend for a device: NCCL on CUDA, else Gloo."""
    return "nccl" if device.type == "cuda" else "gloo"


def setup(device_name: str) -> tuple[Shard, torch.device]:
    """The shard and device of this process; joins the process group when world_size > 1."""
    rank, world, local = world_from_env()
    device = pick_device(device_name)
    if world == 1:
        return Shard(), device
    if device.type == "mps":
        raise ConfigError("--device: several processes need cuda or cpu, not mps")
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local}: this machine has "
                              f"{torch.cuda.device_count()} CUDA devices")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        # torchrun's MASTER_ADDR/MASTER_PORT (or its rendezvous) via the env:// method.
        dist.init_process_group(backend_for(device), rank=rank, world_size=world)
    return Shard(rank, world), device


def teardown(shard: Shard) -> None:
    """With several processes: wait for every rank, then leave the process group."""
    if shard.world > 1 and dist.is_initialized():
        # No rank leaves before rank 0 has saved: torchrun stops the others when one exits.
        try:
            dist.barrier()
        except RuntimeError:  # a peer is gone already; nothing left to wait for
            pass
        dist.destroy_process_group()


def check_batch(batch_size: int, shard: Shard) -> None:
    """Refuse a batch size that does not split evenly over ranks or gives a rank under 2 images."""
    if batch_size % shard.world:
        raise ConfigError(f"--batch-size: {batch_size} does not split evenly over "
                          f"{shard.world} processes")
    if batch_size // shard.world < 2:
        raise ConfigError(f"--batch-size: {batch_size} leaves fewer than 2 images per process")


def wrap(module: nn.Module, device: torch.device, shard: Shard) -> nn.Module:
    """The module as DDP when there are several processes; unchanged otherwise."""
    if shard.world == 1:
        return module
    ids = [device.index] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # torch >= 2.13 renames broadcast_buffers; both mean "no buffer sync at each forward".
    if "forward_sync_buffers" in inspect.signature(ddp.__init__).parameters:
        return ddp(module, device_ids=ids, forward_sync_buffers=False)
    return ddp(module, device_ids=ids, broadcast_buffers=False)


def mean_across(values: torch.Tensor, shard: Shard) -> torch.Tensor:
    """The mean over ranks of a tensor every rank holds (unchanged with one process)."""
    if shard.world == 1:
        return values
    values = values.clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values / shard.world


def any_across(flag: bool, shard: Shard, device: torch.device) -> bool:
    """True on every rank when it is true on any rank."""
    if shard.world == 1:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())
