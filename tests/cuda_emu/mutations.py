"""Proof that the harness can fail: each mutation injects one fault class into a copy of
the sources; the harness must catch it (functional mismatch, emulator assertion,
ThreadSanitizer or AddressSanitizer report)."""

import shutil
from pathlib import Path

from emu import ROOT

# (name, file under csrc/, text, replacement, family, mode, level)
MUTATIONS = [
    (
        "perceptual-broadcast-without-barrier",
        "cuda/perceptual.cu",
        "  if (threadIdx.x == 0) *slot = value;\n  __syncthreads();",
        "  if (threadIdx.x == 0) *slot = value;",
        "perceptual",
        "tsan",
        "sanitize",
    ),
    (
        "removed-syncthreads",
        "cuda/ssim.cu",
        "    load_source(x, y, P, n, c, s0r, s0c, SR, S, sx, sy);\n    __syncthreads();",
        "    load_source(x, y, P, n, c, s0r, s0c, SR, S, sx, sy);",
        "ssim",
        "plain",
        "sanitize",
    ),
    (
        "wrong-shuffle-offset",
        "cuda/cuda_types.cuh",
        "v += __shfl_down_sync(0xffffffffu, v, off);",
        "v += __shfl_down_sync(0xffffffffu, v, off + 1);",
        "pixel",
        "plain",
        "sanitize",
    ),
    (
        "off-by-one-index",
        "cuda/psnr.cu",
        "    load_chunk(g + i0, whole, rest, tv);\n    int64_t r;",
        "    load_chunk(g + i0, whole, rest + 1, tv);\n    int64_t r;",
        "psnr",
        "asan",
        "sanitize",
    ),
    (
        "undersized-dynamic-smem",
        "cuda/ssim.cu",
        "  return 2 * SR * S + 5 * SR * M;",
        "  return 2 * SR * S + 5 * SR * M - 1;",
        "ssim",
        "asan",
        "sanitize",
    ),
    (
        "divergent-barrier",
        "cuda/cuda_types.cuh",
        "  if (lane == 0) shared[warp] = v;\n  __syncthreads();",
        "  if (lane == 0) shared[warp] = v;\n  if (warp != 1) __syncthreads();",
        "pixel",
        "plain",
        "sanitize",
    ),
    (
        "wrong-wmma-layout",
        "cuda/gram.cu",
        "wmma_stage<T, wmma::col_major>(si, kLdA,",
        "wmma_stage<T, wmma::row_major>(si, kLdA,",
        "gram",
        "plain",
        "sanitize",
    ),
    (
        "wrong-wmma-ldm",
        "cuda/gram.cu",
        "wmma::load_matrix_sync(a, sa + fr * 16 * kLdA + kk, kLdA);",
        "wmma::load_matrix_sync(a, sa + fr * 16 * kLdA + kk, kLdA - 4);",
        "gram",
        "plain",
        "sanitize",
    ),
    # reductions over more than 256 partial blocks (the "large" cases of cases.py)
    (
        "psnr-finalize-first-256-blocks",
        "cuda/psnr.cu",
        "for (int64_t k = threadIdx.x; k < blocks; k += kThreads) s += partials[img * blocks + k];",
        "for (int64_t k = threadIdx.x; k < blocks && k < kThreads; k += kThreads) s += partials[img * blocks + k];",
        "psnr",
        "plain",
        "large",
    ),
    (
        "pixel-finalize-first-256-blocks",
        "cuda/pixel.cu",
        "  for (int64_t k = threadIdx.x; k < blocks; k += kThreads) {",
        "  for (int64_t k = threadIdx.x; k < blocks && k < kThreads; k += kThreads) {",
        "pixel",
        "plain",
        "large",
    ),
    (
        "gram-loss-first-256-partials",
        "cuda/gram.cu",
        "for (int64_t k = threadIdx.x; k < count_parts; k += kThreads) s += loss_part[k];",
        "for (int64_t k = threadIdx.x; k < count_parts && k < kThreads; k += kThreads) s += loss_part[k];",
        "gram",
        "plain",
        "large",
    ),
    (
        "gram-first-256-k-splits",
        "cuda/gram.cu",
        "for (int64_t s = 0; s < splits; ++s) g += pn[s * stride + i * C + j];",
        "for (int64_t s = 0; s < splits && s < 256; ++s) g += pn[s * stride + i * C + j];",
        "gram",
        "plain",
        "large",
    ),
    (
        "ssim-partials-tile-index-wraps-at-256",
        "cuda/ssim.cu",
        "partials + (pl * gridDim.x * gridDim.y + tile) * NP,",
        "partials + (pl * gridDim.x * gridDim.y + (tile & 255)) * NP,",
        "ssim",
        "plain",
        "large",
    ),
    (
        "gram-diagonal-double-write",
        "cuda/gram.cu",
        "      if (!diag) on[j * C + i] = g;",
        "      on[j * C + i] = g;",
        "gram",
        "tsan",
        "sanitize",
    ),
    # the 128-bit load paths (csrc/cuda/vec.cuh): never taken, taken on a misaligned pointer or
    # row, a chunk read past the end, a tile chunk that does not start on a 16-byte boundary
    (
        "vector-path-never-taken",
        "cuda/pixel.cu",
        "  const bool vec = vec_ptr_ok(a) && vec_ptr_ok(b)",
        "  const bool vec = false && vec_ptr_ok(a) && vec_ptr_ok(b)",
        "pixel",
        "plain",
        "sanitize",
    ),
    (
        "vector-path-ignores-grad-alignment",
        "cuda/psnr.cu",
        "  g.vec = g.flat && vec_ptr_ok(x) && vec_ptr_ok(y) && vec_ptr_ok(grad)",
        "  g.vec = g.flat && vec_ptr_ok(x) && vec_ptr_ok(y)",
        "psnr",
        "plain",
        "fast",
    ),
    (
        "vector-chunk-past-the-end",
        "cuda/pixel.cu",
        "    const bool whole = vec && i0 + V <= n;\n    T ta[V]",
        "    const bool whole = vec && i0 < n;\n    T ta[V]",
        "pixel",
        "asan",
        "sanitize",
    ),
    (
        "ssim-components-grad-y-with-dbx",
        "cuda/ssim.cu",
        "        db = P.comp_y ? by : bx;\n      } else {\n        A sv, cv;",
        "        db = bx;\n      } else {\n        A sv, cv;",
        "ssim",
        "plain",
        "fast",
    ),
    (
        "ssim-tile-chunk-unaligned",
        "cuda/ssim.cu",
        "    const int lead = static_cast<int>(s0c % V);",
        "    const int lead = 0;",
        "ssim",
        "plain",
        "fast",
    ),
    # volumes (csrc/cuda/ssim_volume.cu): the depth ring read one slot off; the adjoint's
    # barrier before t1 is rewritten dropped (a race under ThreadSanitizer)
    (
        "ssim-volume-depth-ring-off-by-one",
        "cuda/ssim_volume.cu",
        "          const A* sl = ring + ((p + k - p0) % P.wd) * 5 * MM + idx;",
        "          const A* sl = ring + ((p + k + 1 - p0) % P.wd) * 5 * MM + idx;",
        "ssim_volume",
        "plain",
        "sanitize",
    ),
    (
        "ssim-volume-adjoint-without-barrier",
        "cuda/ssim_volume.cu",
        "      __syncthreads();  // the previous slice's horizontal adjoint is done with t1\n",
        "",
        "ssim_volume",
        "tsan",
        "sanitize",
    ),
    # the components' gradient of y with x's variance coefficient (the comp_y launch ignored)
    (
        "ssim-volume-components-y-with-x-variance",
        "cuda/ssim_volume.cu",
        "            db = P.comp_y ? by : bx;",
        "            db = bx;",
        "ssim_volume",
        "plain",
        "sanitize",
    ),
    (
        "gram-rows-misaligned",
        "cuda/gram.cu",
        "(N == 1 || vec_stride_ok(sN, elem)) && (C == 1 || vec_stride_ok(sC, elem))",
        "true",
        "gram",
        "plain",
        "fast",
    ),
    (
        "ssim-masked-grad-without-the-weight",
        "cuda/ssim_masked.cu",
        "  if (gx) store_as(gx + go, mv * (kx + A(2) * xv * kb + yv * kc + wl * sg));",
        "  if (gx) store_as(gx + go, (kx + A(2) * xv * kb + yv * kc + wl * sg));",
        "ssim_masked",
        "plain",
        "fast",
    ),
    (
        "ssim-masked-reflect-copies-dropped",
        "cuda/ssim_masked.cu",
        "  const int64_t cand[3] = {q + off, off - q, off + 2 * (L - 1) - q};",
        "  const int64_t cand[3] = {q + off, q + off, q + off};",
        "ssim_masked",
        "plain",
        "fast",
    ),
]


def mutated_tree(name, dest):
    """Copies csrc/ to dest/csrc with mutation `name` applied; returns dest."""
    entry = next(m for m in MUTATIONS if m[0] == name)
    _, rel, old, new = entry[:4]
    shutil.copytree(ROOT / "csrc", Path(dest) / "csrc")
    path = Path(dest) / "csrc" / rel
    text = path.read_text()
    if text.count(old) < 1:
        raise AssertionError(f"mutation {name}: the text to replace is not in csrc/{rel} (source changed?)")
    path.write_text(text.replace(old, new, 1))
    return Path(dest)
