"""Where training runs: the processes under ``torchrun``, the device, and the DDP wrapper.

A plain ``lnmdn train`` is rank 0 of a world of one process. Under ``torchrun --nproc_per_node N``
each process takes a 1/N share of every global batch (``batch_size`` is global),
DistributedDataParallel averages the gradients (gloo on CPU, NCCL on CUDA), and rank 0 validates
and writes the run folder.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import nn

if TYPE_CHECKING:
    from lnmdn_agents.policies import PolicyBase
    from lnmdn_agents.training.config import TrainConfig

__all__ = ["barrier", "resolve_device", "setup_process", "wrap_ddp"]


def _dist_info(device: str) -> tuple[int, int, int]:
    """(rank, local_rank, world_size), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 0, 1
    if not dist.is_initialized():
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size()


def resolve_device(name: str, local_rank: int) -> torch.device:
    """``TrainConfig.device`` as a torch device (``"cuda"``: this process's GPU under torchrun).

    Raises:
        RuntimeError: a CUDA device is asked for and CUDA is not available.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device={name!r} but CUDA is not available; use --device cpu")
        if name == "cuda":
            return torch.device("cuda", local_rank)
    return torch.device(name)


def setup_process(config: TrainConfig) -> tuple[int, int, torch.device]:
    """Join the process group (under torchrun) and set torch's threads.

    Returns:
        ``(rank, world_size, device)`` of this process.

    Raises:
        ValueError: ``batch_size`` does not split evenly across the processes.
    """
    rank, local_rank, world = _dist_info(config.device)
    if config.batch_size % world:
        raise ValueError(
            f"batch_size must be divisible by the number of processes, got "
            f"{config.batch_size=} with {world} processes"
        )
    device = resolve_device(config.device, local_rank)
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    return rank, world, device


def wrap_ddp(policy: PolicyBase, device: torch.device, world: int) -> nn.Module:
    """The module the training steps call: ``policy`` itself, or its DDP wrapper (world > 1)."""
    if world <= 1:
        return policy
    return nn.parallel.DistributedDataParallel(
        policy,
        device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=True,
    )


def barrier(world: int) -> None:
    """Wait for every process (a no-op for a single process)."""
    if world > 1:
        dist.barrier()
