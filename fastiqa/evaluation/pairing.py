"""Which files are compared with which: the work list of an evaluation.

Pairs files by name: reference `NAME.ext` goes with prediction `NAME<suffix>.ext2`
(any supported extension). The list is in one fixed order (references sorted by
name, then predictions that have no reference), and a name that cannot be paired
(no prediction, several candidates, no reference) is an item that carries its error,
so that failures are rows of the results like the others. An entry with an image
extension that is not a readable file (a directory named x.png, a broken symbolic
link, a link loop, a FIFO) is paired like the others and reported as what it is.
"""
import os
from typing import NamedTuple, Optional

from .._imageio import SUPPORTED, file_problem
from .options import UsageError


class Item(NamedTuple):
    index: int  # position in the single-process order: results are sorted back by it
    name: str
    ref: Optional[str]
    pred: Optional[str]
    error: Optional[str] = None  # set when the files could not be paired


def list_images(folder, what):
    """(names, problems): the sorted entries of folder with an image extension, and
    {name: what it is} for those that are not readable files (fastiqa._imageio.file_problem)."""
    if not os.path.isdir(folder):
        raise UsageError(f"--{what} {folder!r} is not a folder")
    names = sorted(f for f in os.listdir(folder) if os.path.splitext(f)[1].lower() in SUPPORTED)
    if not names:
        raise UsageError(f"--{what} {folder!r} holds no images ({', '.join(SUPPORTED)})")
    problems = {}
    for f in names:
        problem = file_problem(os.path.join(folder, f))
        if problem is not None:
            problems[f] = f"{f} in {folder}: {problem}"
    return names, problems


def _by_stem(names):
    out = {}
    for f in names:
        out.setdefault(os.path.splitext(f)[0], []).append(f)
    return out


def pair_folders(ref_dir, pred_dir, suffix=""):
    """[Item] for two folders, pairing by stem (+ suffix)."""
    ref_dir, pred_dir = os.fspath(ref_dir), os.fspath(pred_dir)
    refs, ref_problems = list_images(ref_dir, "ref")
    preds, pred_problems = list_images(pred_dir, "pred")
    pred_stems, ref_stems = _by_stem(preds), _by_stem(refs)
    items, used = [], set()

    def add(name, ref=None, pred=None, error=None):
        items.append(Item(len(items), name, ref, pred, error))

    for f in refs:
        stem = os.path.splitext(f)[0]
        cands = pred_stems.get(stem + suffix, [])
        if len(ref_stems[stem]) > 1:
            used.update(cands)
            add(stem, error=f"{f}: several references share the name {stem!r} ({', '.join(ref_stems[stem])}); "
                            f"keep one")
        elif not cands:
            add(stem, error=f"{f}: no prediction {stem + suffix}.* in {pred_dir}")
        elif len(cands) > 1:
            used.update(cands)
            add(stem, error=f"{f}: several predictions match ({', '.join(cands)}); keep one")
        elif f in ref_problems or cands[0] in pred_problems:
            used.add(cands[0])
            add(stem, error="; ".join(p for p in (ref_problems.get(f), pred_problems.get(cands[0])) if p))
        else:
            used.add(cands[0])
            add(stem, os.path.join(ref_dir, f), os.path.join(pred_dir, cands[0]))
    for f in preds:
        if f not in used:
            why = f"{f}: no reference for this prediction in {ref_dir} (suffix {suffix!r})"
            add(os.path.splitext(f)[0], error=f"{pred_problems[f]}; {why}" if f in pred_problems else why)
    return items


def pair_files(ref_dir, pred_dir, suffix=""):
    """([(name, ref_path, pred_path)], [error messages]): pair_folders split into the
    pairs that can be scored and the names that could not be paired."""
    items = pair_folders(ref_dir, pred_dir, suffix)
    return ([(i.name, i.ref, i.pred) for i in items if i.error is None],
            [i.error for i in items if i.error is not None])


def items_from_pairs(pairs):
    """[Item] for a list of (ref_path, pred_path) or (name, ref_path, pred_path); the
    name defaults to the reference's file name without extension."""
    items = []
    for k, p in enumerate(pairs):
        if not isinstance(p, (tuple, list)) or len(p) not in (2, 3):
            raise UsageError(f"pairs[{k}] must be (ref_path, pred_path) or (name, ref_path, pred_path), got {p!r}")
        name, ref, pred = (None, *p) if len(p) == 2 else p
        ref, pred = os.fspath(ref), os.fspath(pred)
        items.append(Item(k, str(name) if name is not None else os.path.splitext(os.path.basename(ref))[0],
                          ref, pred))
    if not items:
        raise UsageError("pairs is empty; give at least one (ref_path, pred_path)")
    return items
