"""Build and talk to the harness drivers (tests/cuda_emu/drivers/<family>.cpp).

build(family, mode) compiles csrc/cuda/<family>.cu with g++ against the emulator
(include/ first on the include path, NVIDIA's headers after it) into a cached binary;
Driver(binary).call(op, gpu, numbers, arrays) runs one launcher on the emulated GPU.
Modes: plain (-O2), tsan (ThreadSanitizer), asan (AddressSanitizer + UBSan).
"""
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CUDA_INCLUDE = Path(os.environ.get("FASTIQA_CUDA_INCLUDE", "/usr/local/cuda-13.0/include"))
BUILD = Path(os.environ.get("FASTIQA_EMU_BUILD", ROOT / "build" / "cuda_emu"))
FAMILIES = ("pixel", "psnr", "ssim", "ssim_volume", "gram", "perceptual", "ssim_masked")
GPUS = ("sm_75", "sm_80", "sm_86", "sm_89", "sm_90", "sm_100", "sm_120")
MODES = {
    "plain": ["-O2"],
    "tsan": ["-O1", "-g", "-fsanitize=thread"],
    "asan": ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
             "-fno-omit-frame-pointer"],
}
DTYPES = {"float32": 0, "float64": 1, "float16": 2, "bfloat16": 3}


def missing_tools():
    """Why the harness cannot run here, or None."""
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        return "g++ not found"
    if not (CUDA_INCLUDE / "cuda_fp16.h").exists():
        return f"CUDA headers not found in {CUDA_INCLUDE} (set FASTIQA_CUDA_INCLUDE)"
    return None


def _sources_digest(src_dir, family, flags):
    h = hashlib.sha256(" ".join(flags).encode())
    for p in sorted(list((ROOT / "csrc").rglob("*")) + list(HERE.rglob("*"))):
        if p.is_file() and p.suffix in (".h", ".cuh", ".cu", ".cpp"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    if src_dir is not None:
        for p in sorted(Path(src_dir).rglob("*")):
            if p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()[:16] + "-" + family


def build(family, mode="plain", src_root=None):
    """Path of the driver binary of `family` (compiled if needed). src_root: a copy of the
    repository's csrc/ parent to build from instead (the mutation test)."""
    flags = ["-std=c++17", "-g0", "-w"] + MODES[mode]
    root = Path(src_root) if src_root else ROOT
    digest = _sources_digest(root / "csrc" if src_root else None, family, flags)
    out = BUILD / f"{family}-{mode}-{digest}"
    if out.exists():
        return out
    BUILD.mkdir(parents=True, exist_ok=True)
    driver = HERE / "drivers" / f"{family}.cpp"
    tmp = out.with_suffix(".tmp")
    cmd = [os.environ.get("CXX", "g++"), *flags, f"-I{HERE / 'include'}", f"-I{root / 'csrc' / 'cuda'}",
           "-idirafter", str(CUDA_INCLUDE), f"-DFASTIQA_EMU_CU=\"{root / 'csrc' / 'cuda' / (family + '.cu')}\"",
           str(driver), "-o", str(tmp)]
    subprocess.run(cmd, check=True)
    tmp.rename(out)
    return out


def _memory_order(t):
    """A view of dense t whose contiguous order is t's memory order."""
    return t.permute(*sorted(range(t.dim()), key=lambda d: -t.stride(d))) if t.dim() else t


def to_bytes(t):
    return _memory_order(t.detach()).contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def from_bytes(data, like):
    out = torch.empty_like(like)
    flat = torch.frombuffer(bytearray(data), dtype=like.dtype)
    view = _memory_order(out)
    view.copy_(flat.view(view.shape))
    return out


class EmuError(RuntimeError):
    """The launcher returned an error (a launch-configuration fault on the emulated GPU)."""


class Driver:
    def __init__(self, binary, env=None):
        e = dict(os.environ)
        e.update(env or {})
        e.setdefault("ASAN_OPTIONS", "detect_leaks=0:abort_on_error=1")
        e.setdefault("TSAN_OPTIONS", "halt_on_error=1:abort_on_error=1")
        self.proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=e)

    def call(self, op, gpu, numbers, arrays, offsets=None):
        """Runs `op`; arrays (name -> dense tensor or None for a null pointer) are sent in
        their memory order, the launcher writes in place; returns name -> tensor (same
        shape, dtype and strides). offsets (name -> elements): that array starts so many
        elements into its (16-byte aligned) buffer, a misaligned start when the bytes are
        not a multiple of 16. self.vector_ops: the 16-byte global loads and stores the call
        made. Raises EmuError for a launcher error and RuntimeError when the driver died
        (an emulator or sanitizer report, in the message)."""
        offsets = {k: v for k, v in (offsets or {}).items() if v and arrays.get(k) is not None}
        pads = {k: v * arrays[k].element_size() for k, v in offsets.items()}
        numbers = dict(numbers, **{f"{k}_off": b for k, b in pads.items()})
        head = f"{op} {gpu}\n" + " ".join(f"{k}={float(v)!r}" for k, v in numbers.items()) + f"\n{len(arrays)}\n"
        payload = [head.encode()]
        for name, a in arrays.items():
            data = b"" if a is None else b"\xff" * pads.get(name, 0) + to_bytes(a)
            payload.append(f"{name} {len(data)}\n".encode())
            payload.append(data)
        try:
            self.proc.stdin.write(b"".join(payload))
            self.proc.stdin.flush()
            line = self.proc.stdout.readline().decode()
        except BrokenPipeError:
            line = ""
        if not line:
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace")
            raise RuntimeError(f"driver died during {op} on {gpu}:\n{err[-6000:]}")
        if line.startswith("err "):
            raise EmuError(line[4:].strip())
        words = line.split()
        self.vector_ops = int(words[2])
        out = {}
        for _ in range(int(words[1])):
            name, size = self.proc.stdout.readline().decode().split()
            data = self.proc.stdout.read(int(size))
            if arrays[name] is not None:
                out[name] = from_bytes(data[pads.get(name, 0):], arrays[name])
        return out

    def close(self):
        """Ends the driver; returns its stderr (a sanitizer's report, if any)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        err = self.proc.stderr.read().decode(errors="replace")
        rc = self.proc.wait()
        if rc != 0:
            raise RuntimeError(f"driver exited with {rc}:\n{err[-6000:]}")
        return err
