"""Static GPU audit of the CUDA kernels, no GPU needed:

    python tests/gpu/gpu_audit.py            print the table
    python tests/gpu/gpu_audit.py --write    also regenerate it in benchmarks/RESULTS.md (between markers)

For every kernel of csrc/cuda/*.cu and every arch of setup.py's default list that the
nvcc in use supports: registers, static shared memory and spills (nvcc -Xptxas -v), the
theoretical occupancy they allow (registers / shared memory / threads per block against
the arch's per-SM limits, CUDA occupancy calculator rules), and the 128-bit global loads
(ld.global.v4 of 32-bit or .v2 of 64-bit words) in each arch's PTX, the one ptxas compiled
(nvcc -keep). Template instances of a kernel are folded into one row (the worst instance
shown). Exits 1 on any register spill not allowed by --allow-spills (and on an allowed
kernel@arch that no longer spills: the list is stale), and when a kernel of VECTOR_LOADS
has an instance without a 128-bit global load on some arch (csrc/cuda/vec.cuh: the
memory-bound kernels, the SSIM source tiles and the Gram tiles load 16-byte chunks where
the launcher finds them aligned; the audit proves the vector path is compiled in).
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NVCC = os.environ.get("NVCC", "/usr/local/cuda-13.0/bin/nvcc")
THREADS = 256  # every kernel: __launch_bounds__(kThreads = 256)
ARCHS = ("75", "80", "86", "89", "90", "100", "120")  # setup.py DEFAULT_ARCHS
# per SM: max warps, max blocks, shared memory (bytes), reserved shared memory per block
# (CUDA C++ programming guide, "Technical specifications per compute capability")
LIMITS = {
    "75": (32, 16, 64 * 1024, 0),
    "80": (64, 32, 164 * 1024, 1024),
    "86": (48, 16, 100 * 1024, 1024),
    "89": (48, 24, 100 * 1024, 1024),
    "90": (64, 32, 228 * 1024, 1024),
    "100": (64, 32, 228 * 1024, 1024),
    "120": (48, 24, 100 * 1024, 1024),
}
REGS_PER_SM, REG_UNIT = 65536, 256  # registers are allocated per warp in units of 256
MEMORY_BOUND = ("pixel_fwd_kernel", "pixel_bwd_kernel", "psnr_fwd_kernel", "psnr_bwd_kernel", "scale_kernel")
# kernels that must keep 128-bit global loads in every template instance on every arch, but
# the instances whose first template argument is listed (SSIM: float64 tiles load element by
# element, their vector path spilled registers). scale_kernel scales an N x C x C Gram in
# place (small), and the SIMT Gram apply_kernel (a 128-bit path cost it 22 registers and half
# its occupancy; its loads are few next to its FMAs): element loads.
VECTOR_LOADS = {
    "pixel_fwd_kernel": (), "pixel_bwd_kernel": (), "psnr_fwd_kernel": (), "psnr_bwd_kernel": (),
    "ssim_fwd_kernel": ("double",), "ssim_grad_kernel": ("double",),
    "tiles_kernel": (), "tiles_wmma_kernel": (), "apply_wmma_kernel": (),
}
# kernels with dynamic shared memory: occupancy shown for the static part only
DYNAMIC_SMEM = ("ssim_fwd_kernel", "ssim_grad_kernel", "ssim_adjoint_kernel", "ssim_volume_fwd_kernel",
                "ssim_volume_adjoint_kernel")
BEGIN, END = "<!-- gpu-audit:begin -->", "<!-- gpu-audit:end -->"


def supported_archs():
    out = subprocess.run([NVCC, "--list-gpu-arch"], capture_output=True, text=True, check=True).stdout
    known = {a.replace("compute_", "") for a in out.split()}
    return [a for a in ARCHS if a in known]


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True).stdout.splitlines()
    return dict(zip(names, out)) if len(out) == len(names) else {n: n for n in names}


def base_name(demangled):
    m = re.search(r"(\w+)(?:<[^()]*>)?\(", demangled)
    return m.group(1) if m else demangled


def ptxas(cu, archs):
    """({(mangled kernel, arch): dict(regs, smem, spill)} from nvcc -Xptxas -v,
    {(mangled kernel, arch): (128-bit global loads, other global loads)} from the PTX of each arch)."""
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    with tempfile.TemporaryDirectory() as tmp:
        res = subprocess.run(
            [NVCC, "-O3", "-std=c++17", *gencode, "-Xptxas", "-v", "-keep", "-keep-dir", tmp, "-c", str(cu),
             "-o", os.path.join(tmp, "k.o")],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise RuntimeError(f"nvcc failed on {cu.name}:\n{res.stderr[-3000:]}")
        loads = {}
        for a in archs:
            ptx = Path(tmp, f"{cu.stem}.compute_{a}.ptx")  # one arch: nvcc drops the infix
            ptx = ptx if ptx.exists() else Path(tmp, f"{cu.stem}.ptx")
            for k, v in vector_loads(ptx.read_text()).items():
                loads[(k, a)] = v
    out, cur = {}, None
    for line in res.stderr.splitlines():
        m = re.search(r"Compiling entry function '(\S+)' for 'sm_(\d+)'", line)
        if m:
            cur = (m.group(1), m.group(2))
            out[cur] = dict(regs=0, smem=0, spill=0)
            continue
        if cur is None:
            continue
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            out[cur]["spill"] = int(m.group(1)) + int(m.group(2))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            out[cur]["regs"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            out[cur]["smem"] = int(s.group(1)) if s else 0
    return out, loads


WIDE = re.compile(r"ld\.global(?:\.[\w:]+)*?\.(?:v4\.[usbf]32|v2\.[usbf]64)\b")


def vector_loads(ptx):
    """{mangled kernel: (128-bit global loads, other global loads)} in one PTX text."""
    out = {}
    for m in re.finditer(r"\.entry (\S+)\((.*?)\n}\n", ptx, re.S):
        body = m.group(2)
        wide = len(WIDE.findall(body))
        out[m.group(1)] = (wide, len(re.findall(r"ld\.global", body)) - wide)
    return out


def first_template_arg(demangled):
    m = re.search(r"<([^,<>]+)", demangled)
    return m.group(1).strip() if m else ""


def occupancy(regs, smem, arch):
    """Theoretical occupancy (fraction of the SM's warps) of a THREADS-thread block."""
    max_warps, max_blocks, smem_sm, reserved = LIMITS[arch]
    warps = THREADS // 32
    regs_per_warp = -(-max(regs, 1) * 32 // REG_UNIT) * REG_UNIT
    by_regs = REGS_PER_SM // (regs_per_warp * warps)
    by_smem = smem_sm // (smem + reserved) if smem + reserved > 0 else max_blocks
    blocks = min(max_blocks, max_warps // warps, by_regs, by_smem)
    return blocks * warps / max_warps


def audit(archs):
    files = sorted((ROOT / "csrc" / "cuda").glob("*.cu"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=int(os.environ.get("MAX_JOBS", "2"))) as pool:
        results = list(pool.map(lambda cu: ptxas(cu, archs), files))
    rows = defaultdict(lambda: dict(arch={}, spill=0, loads={}, family=""))
    for cu, (st, loads) in zip(files, results):
        names = demangle(sorted({k for k, _ in st} | {k for k, _ in loads}))
        for (k, arch), s in st.items():
            r = rows[(cu.stem, base_name(names[k]))]
            r["family"] = cu.stem
            prev = r["arch"].get(arch)
            occ = occupancy(s["regs"], s["smem"], arch)
            if prev is None:
                r["arch"][arch] = (s["regs"], s["smem"], occ, s["spill"])
            else:
                r["arch"][arch] = (
                    max(prev[0], s["regs"]),
                    max(prev[1], s["smem"]),
                    min(prev[2], occ),
                    max(prev[3], s["spill"]),
                )
            r["spill"] = max(r["spill"], s["spill"])
        for (k, arch), (wide, other) in loads.items():
            kernel = base_name(names[k])
            r = rows[(cu.stem, kernel)]
            # per arch: (128-bit loads, other loads, instances that must have 128-bit loads but have none)
            w, o, missing = r["loads"].get(arch, (0, 0, []))
            exempt = first_template_arg(names[k]) in VECTOR_LOADS.get(kernel, ())
            # an instance with no global load at all is a trap stub (WMMA bfloat16 below sm_80)
            if kernel in VECTOR_LOADS and not exempt and wide == 0 and other > 0:
                missing = missing + [names[k]]
            r["loads"][arch] = (w + wide, o + other, missing)
    return rows


def table(rows, archs):
    head = (
        "| family | kernel | "
        + " | ".join(f"sm_{a}" for a in archs)
        + " | most spilled (B) | global loads: 128-bit / other (sm_90 PTX); 128-bit in every instance |"
    )
    lines = [head, "|" + "---|" * (len(archs) + 4)]
    for (family, kernel), r in sorted(rows.items()):
        cells = []
        for a in archs:
            if a not in r["arch"]:
                cells.append("-")
                continue
            regs, smem, occ, spill = r["arch"][a]
            dyn = "+dyn" if kernel in DYNAMIC_SMEM else ""
            cells.append(f"{regs} r, {smem} B{dyn}, {occ:.0%}" + (f", **{spill} B spilled**" if spill else ""))
        w, o, _ = r["loads"].get("90", (0, 0, []))
        loads = f"{w} / {o}" + (" (memory-bound)" if kernel in MEMORY_BOUND else "")
        if kernel in VECTOR_LOADS:
            lost = [a for a in archs if r["loads"].get(a, (0, 0, ["-"]))[2]]
            exempt = ", ".join(VECTOR_LOADS[kernel])
            loads += ("; **none on " + ", ".join(f"sm_{a}" for a in lost) + "**" if lost else
                      "; yes, every arch" + (f" (not {exempt})" if exempt else ""))
        lines.append(f"| {family} | {kernel} | " + " | ".join(cells) + f" | {r['spill']} | {loads} |")
    lines.append("")
    lines.append(
        f"Cells: registers per thread, static shared memory per block, theoretical occupancy of a "
        f"{THREADS}-thread block (worst template instance; +dyn: plus the dynamic shared memory chosen "
        f"at launch, not in the occupancy). Regenerate: `python tests/gpu/gpu_audit.py --write`."
    )
    return "\n".join(lines)


def write_results(text):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from results_md import replace_block  # benchmarks/results_md.py

    replace_block(BEGIN, END, text, "Static GPU audit (ptxas, no GPU)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="regenerate the table in benchmarks/RESULTS.md")
    ap.add_argument("--arch", action="append", help="archs (e.g. 90); default: setup.py's list that nvcc supports")
    ap.add_argument(
        "--allow-spills",
        default="",
        help="comma-separated archs (100) or kernel@arch "
        "(ssim_adjoint_kernel@80) whose spills are reported, not failed (known findings; default: "
        "none, any spill fails); a listed kernel@arch that no longer spills fails too (a stale list)",
    )
    args = ap.parse_args(argv)
    if not Path(NVCC).exists() and shutil.which("nvcc") is None:
        print("gpu_audit: nvcc not found (set NVCC)")
        return 2
    archs = args.arch or supported_archs()
    rows = audit(archs)
    text = table(rows, archs)
    print(text)
    if args.write:
        write_results(text)
    allowed = {a.strip().replace("sm_", "") for a in args.allow_spills.split(",") if a.strip()}
    spills = [(k, f"sm_{a}") for k, r in rows.items() for a, cell in r["arch"].items() if cell[3]]
    # an entry is an arch ("100") or one kernel on one arch ("ssim_adjoint_kernel@80")
    known = [x for x in spills if x[1][3:] in allowed or f"{x[0][1]}@{x[1][3:]}" in allowed]
    failed = False
    if known:
        print(f"gpu_audit: register spills reported (allowed by --allow-spills): {known}")
    if len(known) < len(spills):
        print(f"gpu_audit: FAIL, register spills in {[x for x in spills if x not in known]}")
        failed = True
    # a listed kernel@arch that no longer spills: the list (and what the README says) is stale
    spilling = {f"{k[1]}@{a[3:]}" for k, a in spills}
    stale = sorted(a for a in allowed if "@" in a and a.split("@")[1] in archs and a not in spilling)
    if stale:
        print(f"gpu_audit: FAIL, listed in --allow-spills but spill-free now: {stale} (update the list and "
              "the README's Static GPU audit section)")
        failed = True
    lost = vector_failures(rows, archs)
    if lost:
        print(f"gpu_audit: FAIL, 128-bit global loads lost (csrc/cuda/vec.cuh): {lost}")
        failed = True
    if failed:
        return 1
    print(
        f"gpu_audit: {len(rows)} kernels x {len(archs)} archs, 128-bit global loads in every kernel that must "
        f"have them, no spills" + (f" beyond {len(known)} allowed (kernel, arch) pairs" if known else "")
    )
    return 0


def vector_failures(rows, archs, required=VECTOR_LOADS):
    """'kernel@sm_XX: instance' for every required kernel instance without a 128-bit global
    load, and 'kernel: not found' for a required kernel that is not in rows."""
    found = {kernel for _, kernel in rows}
    out = [f"{k}: not found" for k in required if k not in found]
    for (_, kernel), r in sorted(rows.items()):
        for a in archs:
            out += [f"{kernel}@sm_{a}: {inst}" for inst in r["loads"].get(a, (0, 0, []))[2]]
    return out


if __name__ == "__main__":
    sys.exit(main())
