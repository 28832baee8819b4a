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

Objects travel as pickled bytes in uint8 tensors that stay referenced here
(_KEPT) as long as anything else references them, never through torch's
*_object collectives: on torch < 2.8, ProcessGroupGloo's destructor joins its
worker threads with the GIL held, and a worker that still holds the last
reference to a tensor whose Python object is gone waits for the GIL to free it,
so destroy_process_group() (ours, or the caller's after fastiqa.evaluate) hung
in about 1 run of 3 (torch's fix: the GIL released in that destructor, 2.8).
tests/test_dist_teardown.py repeats the teardown.
"""
import os
import pickle
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


# the tensors handed to collectives: a gloo worker may drop its reference after the
# collective returned; while the one here lives, that drop never needs the GIL (module docstring)
_KEPT = []


def _release_kept():
    """Drops the kept tensors that nothing else references any more (use count 1: ours)."""
    _KEPT[:] = [t for t in _KEPT if getattr(t, "_use_count", lambda: 2)() > 1]


def _comm_device(ctx: Context) -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if ctx.backend == "nccl" else torch.device("cpu")


def _all_gather_object(obj, ctx: Context) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank: the sizes, then the pickles
    padded to the largest, by two all_gather of tensors kept in _KEPT."""
    _release_kept()
    device = _comm_device(ctx)
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(ctx.world)]
    _KEPT.extend([size, *sizes])
    dist.all_gather(sizes, size, group=ctx.group)
    lengths = [int(s.item()) for s in sizes]
    mine = torch.zeros(max(lengths), dtype=torch.uint8)
    mine[: len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    mine = mine.to(device)
    parts = [torch.empty_like(mine) for _ in range(ctx.world)]
    _KEPT.extend([mine, *parts])
    dist.all_gather(parts, mine, group=ctx.group)
    out = [pickle.loads(p[:n].cpu().numpy().tobytes()) for p, n in zip(parts, lengths)]
    for t in (mine, *parts):
        t.set_()  # the bytes go now, the tensor objects stay in _KEPT
    return out


def broadcast(obj, ctx: Context):
    """rank 0's obj on every rank."""
    if ctx.world == 1:
        return obj
    return _all_gather_object(obj if ctx.rank == 0 else None, ctx)[0]


def gather(obj, ctx: Context, to_all: bool):
    """[obj of rank 0, obj of rank 1, ...] on rank 0 (on every rank when to_all), None
    on the other ranks."""
    if ctx.world == 1:
        return [obj]
    out = _all_gather_object(obj, ctx)
    return out if to_all or ctx.rank == 0 else None


def teardown(ctx: Context):
    if ctx.owned and dist.is_initialized():
        dist.destroy_process_group()
    if ctx.owned:
        _KEPT.clear()  # after the destructor joined gloo's workers
