"""Evaluation of folders of images with the published SR metrics, in one process or
across torch.distributed ranks: fastiqa.evaluate (api), `fastiqa eval` (cli).

    pairing       which file is compared with which (the work list, failures included)
    pipeline      decode in threads with bounded prefetch, score on the device
    distributed   torchrun's process group: split, gather, sort back
    report        table, CSV, JSON (identical whatever the number of ranks)
    options       the validated settings; UsageError
"""
from .api import EvalResult, evaluate
from .options import UsageError

__all__ = ["evaluate", "EvalResult", "UsageError"]
