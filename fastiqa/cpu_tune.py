"""The fastest CPU ISA level per kernel family on this CPU, measured once: `fastiqa cpu-tune`.

A wider vector level is not always faster: a Zen 4 core runs 512-bit FMAs at half rate, so
its avx512 variant can tie with (or lose to) avx2 on FMA-bound kernels (SSIM, Gram) while
it still wins on others. `tune()` times one representative call of each family on every
level this CPU supports (rounds alternate between the levels; the best time of each level
counts) and keeps the default level (the widest) unless another one is faster by more than
MARGIN. The result is saved per CPU model and fastiqa version in a JSON file (`tune_file()`)
and applied at import by `apply()`, so a machine always runs the same levels (results are
bitwise reproducible for a given level and thread count). FASTIQA_CPU_ISA and
fastiqa.cpu_isa.select still force one level for every family; FASTIQA_CPU_TUNE_FILE=none
ignores the file.
"""
import datetime
import json
import os
import time
import warnings
from typing import Callable, Dict, Optional

import torch

from . import _ext, cpu_isa
from ._version import __version__

MARGIN = 0.05  # another level replaces the widest one only when faster by more than this
FORMAT = 1

# family -> the reason its current level was chosen (filled by apply / tune; read by info)
REASONS: Dict[str, str] = {}


def tune_file() -> Optional[str]:
    """FASTIQA_CPU_TUNE_FILE, else $XDG_CACHE_HOME/fastiqa/cpu_tune.json (~/.cache); None when disabled."""
    path = os.environ.get("FASTIQA_CPU_TUNE_FILE")
    if path is not None:
        return None if path.strip().lower() in ("", "none", "off") else path
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "fastiqa", "cpu_tune.json")


def machine_key() -> str:
    """CPU model and the levels built and supported: an entry is used only where both match."""
    return f"{cpu_isa.cpu_model()} | {','.join(cpu_isa.available())}"


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    return x, (x + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1)


def _probes(scale: float) -> Dict[str, Callable[[], Callable[[], object]]]:
    """family -> a factory of one representative call (inputs made once). `scale` shrinks the
    spatial sides (tests); 1.0 is the bar shapes' neighbourhood, about 1-20 ms a call here."""
    import fastiqa.functional as F

    def side(n):
        return max(16, int(n * scale))

    def pixel():
        x, y = _pair((4, 3, side(256), side(256)))
        x.requires_grad_(True)
        return lambda: F.charbonnier_loss(x, y, backend="cpu").backward()

    def psnr():
        x, y = _pair((8, 3, side(256), side(256)))
        return lambda: F.psnr(x, y, y_channel=True, crop_border=4, quantize=True, backend="cpu")

    def ssim():
        x, y = _pair((2, 3, side(192), side(192)))
        x.requires_grad_(True)
        return lambda: F.ssim_loss(x, y, backend="cpu").backward()

    def ssim_masked():
        x, y = _pair((2, 3, side(192), side(192)))
        m = torch.rand((2, 1, side(192), side(192)), generator=torch.Generator().manual_seed(2)) > 0.2
        x.requires_grad_(True)
        return lambda: F.ssim_loss(x, y, mask=m, backend="cpu").backward()

    def gram():
        x, y = _pair((4, 64, side(64), side(64)))
        x.requires_grad_(True)
        return lambda: F.style_loss(x, y, backend="cpu").backward()

    def perceptual():
        from .functional import _heads

        x, y = _pair((4, 64, side(128), side(128)))
        x.requires_grad_(True)
        w = torch.rand(64, generator=torch.Generator().manual_seed(1))
        return lambda: _heads.lpips_head([x], [y], [w], "cpu").sum().backward()

    return {"pixel": pixel, "psnr": psnr, "ssim": ssim, "ssim_masked": ssim_masked, "gram": gram,
            "perceptual": perceptual}


def _best_time(call, repeats: int) -> float:
    """Seconds of one call: the best of `repeats` timings."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - t0)
    return best


def tune(rounds: int = 5, repeats: int = 3, scale: float = 1.0, save: bool = True,
         timer: Callable = _best_time) -> dict:
    """Measures every family on every supported level, applies the choice, saves it (`save`).
    Returns the entry: {"families": {family: {"level", "ms": {level: ms}, "reason"}}, ...}."""
    if not _ext.LOADED:
        raise RuntimeError(f"fastiqa cpu-tune: compiled kernels not loaded ({_ext.LOAD_ERROR})")
    if os.environ.get("FASTIQA_CPU_ISA"):
        raise RuntimeError("fastiqa cpu-tune: FASTIQA_CPU_ISA forces one level for every family; "
                           "unset it to measure the levels")
    for name, value in (("rounds", rounds), ("repeats", repeats)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r}: expected an integer >= 1")
    levels = cpu_isa.available()
    default = levels[0]
    probes = _probes(scale)
    families = {}
    previous = cpu_isa.select("auto")
    try:
        for family in cpu_isa.families():
            if family not in probes:
                families[family] = {"level": default, "ms": {}, "reason": "no probe for this family: widest level"}
                cpu_isa.select_family(family, "auto")
                continue
            call = probes[family]()
            times = {lv: float("inf") for lv in levels}
            for _ in range(rounds):  # alternate the levels: drift from other load hits them alike
                for lv in levels:
                    cpu_isa.select_family(family, lv)
                    call()  # warm: caches, buffer pool
                    times[lv] = min(times[lv], timer(call, repeats))
            fastest = min(levels, key=lambda lv: times[lv])
            level = fastest if times[fastest] < (1.0 - MARGIN) * times[default] else default
            families[family] = {"level": level, "ms": {lv: round(t * 1e3, 4) for lv, t in times.items()},
                                "reason": _reason(level, default, times)}
            cpu_isa.select_family(family, level)
    except BaseException:
        for family in cpu_isa.families():
            cpu_isa.select_family(family, "auto")
        raise
    finally:
        if previous not in ("auto", ""):
            cpu_isa.select(previous)
    entry = {"fastiqa": __version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
             "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
             "families": families}
    REASONS.clear()
    REASONS.update({f: f"cpu-tune {entry['date']}: {v['reason']}" for f, v in families.items()})
    if save:
        path = tune_file()
        if path is None:
            raise RuntimeError("fastiqa cpu-tune: FASTIQA_CPU_TUNE_FILE=none: nowhere to save (use --no-save)")
        _save(path, entry)
        entry["file"] = path
    return entry


def _reason(level, default, times):
    ms = ", ".join(f"{lv} {times[lv] * 1e3:.3g} ms" for lv in times)
    if level == default:
        return f"measured {ms}: the widest level, no other faster by more than {MARGIN:.0%}"
    return f"measured {ms}: {level} faster than {default} by {1 - times[level] / times[default]:.0%}"


def _load(path: str) -> dict:
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("machines"), dict):
        raise ValueError("not a fastiqa cpu-tune file (format 1)")
    return data


def _save(path: str, entry: dict) -> None:
    try:
        data = _load(path)
    except (OSError, ValueError):
        data = {"format": FORMAT, "machines": {}}
    data["machines"][machine_key()] = entry
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)  # readers never see half a file


def apply() -> None:
    """Sets each family's measured level from the tune file (at import). Never raises: a bad
    file is one warning and changes nothing."""
    REASONS.clear()
    if not _ext.LOADED or os.environ.get("FASTIQA_CPU_ISA"):
        return
    path = tune_file()
    if path is None or not os.path.exists(path):
        return
    try:
        entry = _load(path)["machines"].get(machine_key())
        if entry is None:
            return
        if entry.get("fastiqa") != __version__:
            REASONS.update({f: f"not applied: {path} was measured by fastiqa {entry.get('fastiqa')}; "
                               "rerun `fastiqa cpu-tune`" for f in cpu_isa.families()})
            return
        known = set(cpu_isa.families())
        for family, choice in entry["families"].items():
            if family in known and choice["level"] in cpu_isa.available():
                cpu_isa.select_family(family, choice["level"])
                REASONS[family] = f"cpu-tune {entry.get('date')}: {choice.get('reason', '')}"
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
        warnings.warn(f"fastiqa: ignoring the CPU tune file {path}: {exc}", RuntimeWarning, stacklevel=2)


def reason(family: str) -> str:
    """Why `family` runs the level it runs (for `fastiqa info`)."""
    if os.environ.get("FASTIQA_CPU_ISA"):
        return "forced by FASTIQA_CPU_ISA"
    if cpu_isa.forced():
        return "forced in this process (fastiqa.cpu_isa.select)"
    return REASONS.get(family, "the widest level of this CPU (not tuned: `fastiqa cpu-tune` measures them)")
