"""torch.distributed for evaluations: one rank per process (torchrun), the items
split by rank, the result rows gathered and sorted back into the single-process
order.

    torchrun --nproc-per-node 4 -m fastiqa eval --ref HR --pred SR ...

Under torchrun (RANK / WORLD_SIZE / LOCAL_RANK in the environment, WORLD_SIZE > 1)
`fastiqa eval` initialises the default process group itself: nccl when it runs on
CUDA (device cuda:LOCAL_RANK), gloo on CPU. An already-initialised process group
(a training job calling fastiqa.evaluate) is used as it is and left initialised.
Rank r scores items r, r + W, r + 2W, ... (strided by index: neighbouring files,
often of similar size, spread over the ranks).
"""
import os
from typing import NamedTuple, Optional

import torch
import torch.distributed as dist


class Context(NamedTuple):
    rank: int = 0
    world: int = 1
    group: Optional[object] = None
    owned: bool = False  # initialised here: destroyed by teardown()
    backend: str = ""


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def current(group=None) -> Context:
    """The context of an already-initialised process group (`group` or the default
    one), else a single process."""
    if not (dist.is_available() and dist.is_initialized()):
        return Context()
    return Context(dist.get_rank(group), dist.get_world_size(group), group, False, str(dist.get_backend(group)))


def init_from_env(device=None):
    """(Context, device) for `fastiqa eval`: joins torchrun's process group when
    launched by torchrun and none is initialised yet. device: 'cpu', 'cuda' or None
    (CUDA when available); on CUDA each rank takes the GPU of its LOCAL_RANK."""
    if dist.is_available() and dist.is_initialized():
        return current(), device
    if not launched_by_torchrun():
        return Context(), device
    if not dist.is_available():
        raise RuntimeError("launched by torchrun, but this torch has no torch.distributed")
    use_cuda = device != "cpu" and torch.cuda.is_available()
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend)
    return Context(dist.get_rank(), dist.get_world_size(), None, True, backend), device


def shard(items, ctx: Context):
    return items[ctx.rank::ctx.world]


def _global(ctx: Context, rank: int) -> int:
    """The global rank of `rank` of the context's group (what src= / dst= take)."""
    return rank if ctx.group is None else dist.get_global_rank(ctx.group, rank)


def broadcast(obj, ctx: Context):
    """rank 0's obj on every rank."""
    if ctx.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=_global(ctx, 0), group=ctx.group)
    return box[0]


def gather(obj, ctx: Context, to_all: bool):
    """[obj of rank 0, obj of rank 1, ...] on rank 0 (on every rank when to_all), None
    on the other ranks."""
    if ctx.world == 1:
        return [obj]
    out = [None] * ctx.world
    if to_all:
        dist.all_gather_object(out, obj, group=ctx.group)
        return out
    dist.gather_object(obj, out if ctx.rank == 0 else None, dst=_global(ctx, 0), group=ctx.group)
    return out if ctx.rank == 0 else None


def teardown(ctx: Context):
    if ctx.owned and dist.is_initialized():
        dist.destroy_process_group()
