// CUDA kernels of the gram family (torch-free; launched by gram_host.cpp).
// Formulas: csrc/common/gram_math.h.
//
// Forward: one block per (upper-triangle tile (ti <= tj), K split, image) computes a
// 64x64 tile of F_x F_x^T (minus F_y F_y^T for the style loss) over its K range:
// shared-memory tiles converted to the accumulator type (128-bit loads when K is the
// unit-stride axis and rows are 16-byte aligned, load_rows_vec), 4x4 outputs per thread,
// float accumulation (double for double). Only the upper block triangle is
// computed (G is symmetric). A finalize block per tile sums the K-split partials
// in fixed order, scales, and writes the Gram tile and its mirror, or evaluates
// the criterion on the tile and its mirror, writes dloss/dD there and one partial
// loss; a one-block kernel sums the partial losses in fixed order. No atomics:
// bitwise reproducible (block counts depend on the shape only).
// Backward: out = alpha * Q F per image, the same tiled scheme.
// float16 / bfloat16 run on tensor cores (WMMA 16x16x16, float accumulation; in
// backward Q is rounded to the feature dtype for the tensor-core product);
// float32 / float64 use SIMT FMA (exact products, as the reference).
#include <cuda_runtime.h>
#include <mma.h>

#include <type_traits>

#include "../common/gram_math.h"
#include "cuda_types.cuh"
#include "launch.cuh"
#include "gram_launch.h"
#include "vec.cuh"

namespace fastiqa {
namespace cuda {
namespace {

using namespace fastiqa::gram;

constexpr int kT = kGramTile;  // 64
constexpr int kBK = 16;
constexpr int kThreads = 256;  // 16 x 16 threads, 4 x 4 outputs each
constexpr int kPad = 4;
constexpr int64_t kTargetBlocks = 264;  // ~2 waves of 132 SMs
constexpr int64_t kMinSplitK = 256;

__device__ __forceinline__ void tile_coords(int t, int ntiles, int& ti, int& tj) {
  int row = ntiles;
  ti = 0;
  while (t >= row) {
    t -= row;
    ++ti;
    --row;
  }
  tj = ti + t;
}

// The share of a products block (tiles_kernel, tiles_wmma_kernel): tile (ti, tj) of the
// upper triangle, K split s over [kb, ke), image n.
struct ProductsBlock {
  int ti, tj;
  int64_t s, n, kb, ke;
  __device__ __forceinline__ ProductsBlock(int ntiles, int64_t K, int64_t kper) {
    tile_coords(blockIdx.x, ntiles, ti, tj);
    s = blockIdx.y;
    n = blockIdx.z;
    kb = s * kper;
    ke = kb + kper < K ? kb + kper : K;
  }
};

// The K loop of a products block, STEP columns a stage: load(xn, k0) puts the stage's row
// tiles ti and tj of x in shared memory, then product(std::false_type) accumulates their
// product; with HAS_Y the same for y, then product(std::true_type).
template <int STEP, bool HAS_Y, typename T, typename Load, typename Product>
__device__ __forceinline__ void products_k_loop(const ProductsBlock& b, const T* xn, const T* yn, Load load,
                                                Product product) {
  for (int64_t k0 = b.kb; k0 < b.ke; k0 += STEP) {
    load(xn, k0);
    __syncthreads();
    product(std::false_type());
    __syncthreads();
    if (HAS_Y) {
      load(yn, k0);
      __syncthreads();
      product(std::true_type());
      __syncthreads();
    }
  }
}

// Position (r, kk) of element idx of a (rows x kspan) tile load: with unit stride along K
// neighbouring threads read neighbouring k, else neighbouring rows (coalesced either way).
__device__ __forceinline__ void tile_pos(int idx, bool k_fast, int kspan, int rspan, int& r, int& kk) {
  if (k_fast) {
    kk = idx % kspan;
    r = idx / kspan;
  } else {
    r = idx % rspan;
    kk = idx / rspan;
  }
}

// put(r, kk, v) for every element of the ROWS x SPAN tile at rows r0.., columns k0.. of a
// matrix with strides (sR, sK), element by element at tile_pos: v = the element as V
// (load_as), `zero` outside [0, R) x [k0, kend). UNROLL: the unroll factor of the loop over
// the thread's ROWS * SPAN / kThreads elements (that count: the whole loop).
template <int ROWS, int SPAN, int UNROLL, typename T, typename V, typename Put>
__device__ __forceinline__ void load_elems(const T* __restrict__ f, int64_t sR, int64_t sK, int64_t R, int64_t r0,
                                           int64_t k0, int64_t kend, bool k_fast, V zero, Put put) {
  static_assert((ROWS * SPAN) % kThreads == 0, "a tile is whole rounds of the block");
#pragma unroll UNROLL
  for (int it = 0; it < (ROWS * SPAN) / kThreads; ++it) {
    const int idx = threadIdx.x + it * kThreads;
    int r, kk;
    tile_pos(idx, k_fast, SPAN, ROWS, r, kk);
    const int64_t gr = r0 + r, gk = k0 + kk;
    put(r, kk, (gr < R && gk < kend) ? load_as<V>(f + gr * sR + gk * sK) : zero);
  }
}

// put(r, kk, v) for every element of the ROWS x SPAN tile at rows r0.., columns k0.. of a
// matrix with unit column stride and row stride sR: v converted to A, zero outside
// [0, R) x [k0, kend). In 16-byte chunks along the row, one 128-bit load per chunk inside
// the matrix (the caller's vec: every row start and k0 16-byte aligned; csrc/cuda/vec.cuh).
template <typename T, typename A, int ROWS, int SPAN, typename Put>
__device__ __forceinline__ void load_rows_vec(const T* __restrict__ f, int64_t sR, int64_t R, int64_t r0,
                                              int64_t k0, int64_t kend, Put put) {
  constexpr int V = Vec<T>::kN, PER = SPAN / V, ITEMS = ROWS * PER;
  static_assert(SPAN % V == 0, "a tile row is whole 16-byte chunks");
#pragma unroll 1
  for (int it = 0; it < (ITEMS + kThreads - 1) / kThreads; ++it) {
    const int idx = threadIdx.x + it * kThreads;
    if (ITEMS % kThreads != 0 && idx >= ITEMS) break;
    const int r = idx / PER, kk0 = (idx % PER) * V;
    const int64_t gr = r0 + r, gk = k0 + kk0;
    if (gr < R && gk + V <= kend) {
      T t[V];
      load16(f + gr * sR + gk, t);
#pragma unroll
      for (int u = 0; u < V; ++u) put(r, kk0 + u, load_as<A>(&t[u]));
    } else {
#pragma unroll
      for (int u = 0; u < V; ++u) put(r, kk0 + u, (gr < R && gk + u < kend) ? load_as<A>(f + gr * sR + gk + u) : A(0));
    }
  }
}

// Loads rows [r0, r0 + kT) x cols [k0, k0 + kBK) of a (rows, K) feature matrix
// into s[kk][r] (accumulator type), zero outside [0, R) x [k0, kend).
// vec: unit stride along K with 16-byte aligned rows (load_rows_vec).
template <typename T, typename A>
__device__ __forceinline__ void load_tile(const T* __restrict__ f, int64_t sR, int64_t sK, int64_t R,
                                          int64_t r0, int64_t k0, int64_t kend, bool k_fast,
                                          A (*s)[kT + kPad], bool vec) {
  if (vec) {
    load_rows_vec<T, A, kT, kBK>(f, sR, R, r0, k0, kend, [&](int r, int kk, A v) { s[kk][r] = v; });
    return;
  }
  load_elems<kT, kBK, kT * kBK / kThreads>(f, sR, sK, R, r0, k0, kend, k_fast, A(0),
                                           [&](int r, int kk, A v) { s[kk][r] = v; });
}

template <typename A, bool SUB>
__device__ __forceinline__ void mma_tile(const A (*a)[kT + kPad], const A (*b)[kT + kPad], A (&acc)[4][4]) {
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
  for (int kk = 0; kk < kBK; ++kk) {
    A av[4], bv[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      av[u] = a[kk][ty * 4 + u];
      bv[u] = b[kk][tx * 4 + u];
    }
#pragma unroll
    for (int u = 0; u < 4; ++u)
#pragma unroll
      for (int v = 0; v < 4; ++v) acc[u][v] = SUB ? fma(-av[u], bv[v], acc[u][v]) : fma(av[u], bv[v], acc[u][v]);
  }
}

// The thread's 4 x 4 accumulators of a 64 x 64 SIMT tile (mma_tile): zeroed, and handed out
// as put(i, j, value) at the global row i0 + .. and column j0 + .. of the tile.
template <typename A> __device__ __forceinline__ void zero_acc(A (&acc)[4][4]) {
#pragma unroll
  for (int u = 0; u < 4; ++u)
#pragma unroll
    for (int v = 0; v < 4; ++v) acc[u][v] = A(0);
}
template <typename A, typename Put>
__device__ __forceinline__ void tile_outputs(const A (&acc)[4][4], int64_t i0, int64_t j0, Put put) {
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
  for (int u = 0; u < 4; ++u) {
    const int64_t i = i0 + ty * 4 + u;
#pragma unroll
    for (int v = 0; v < 4; ++v) put(i, j0 + tx * 4 + v, acc[u][v]);
  }
}

template <typename T, typename A, bool HAS_Y>
__global__ void __launch_bounds__(kThreads)
    tiles_kernel(const T* __restrict__ x, const T* __restrict__ y, A* __restrict__ part, int64_t N,
                 int64_t C, int64_t K, int64_t sN, int64_t sC, int64_t sK, int64_t kper, int ntiles, bool vec) {
  __shared__ A si[kBK][kT + kPad];
  __shared__ A sj[kBK][kT + kPad];
  const ProductsBlock b(ntiles, K, kper);
  const int ti = b.ti, tj = b.tj;
  const int64_t s = b.s, n = b.n;
  const bool k_fast = sK == 1;
  A acc[4][4];
  zero_acc(acc);
  products_k_loop<kBK, HAS_Y>(b, x + n * sN, HAS_Y ? y + n * sN : nullptr, [&](const T* fn, int64_t k0) {
    load_tile<T, A>(fn, sC, sK, C, int64_t(ti) * kT, k0, b.ke, k_fast, si, vec);
    load_tile<T, A>(fn, sC, sK, C, int64_t(tj) * kT, k0, b.ke, k_fast, sj, vec);
  }, [&](auto sub) { mma_tile<A, decltype(sub)::value>(si, sj, acc); });
  A* out = part + (s * N + n) * C * C;
  tile_outputs(acc, int64_t(ti) * kT, int64_t(tj) * kT, [&](int64_t i, int64_t j, A v) {
    if (i < C && j < C) out[i * C + j] = v;
  });
}

// MODE 0: Gram; 1: style with y; 2: style against a target Gram.
template <typename A, int MODE, int CR>
__global__ void __launch_bounds__(kThreads)
    finalize_kernel(const A* __restrict__ part, const A* __restrict__ target, int64_t tN,
                    A* __restrict__ out, A* __restrict__ loss_part, int64_t N, int64_t C,
                    int64_t splits, A scale, A gmul, int ntiles) {
  __shared__ A shared[kThreads / 32];
  int ti, tj;
  tile_coords(blockIdx.x, ntiles, ti, tj);
  const int64_t n = blockIdx.y;
  const A* pn = part + n * C * C;
  const int64_t stride = N * C * C;
  A* on = out ? out + n * C * C : nullptr;
  const A* tn = MODE == 2 ? target + (tN == 1 ? 0 : n) * C * C : nullptr;
  const bool diag = ti == tj;
  A total = 0;
  for (int e = threadIdx.x; e < kT * kT; e += kThreads) {
    const int64_t i = int64_t(ti) * kT + e / kT, j = int64_t(tj) * kT + e % kT;
    if (i >= C || j >= C) continue;
    A g = 0;
    for (int64_t s = 0; s < splits; ++s) g += pn[s * stride + i * C + j];
    if (diag) {  // both (i, j) and (j, i) were computed: average, exactly symmetric
      A gt = 0;
      for (int64_t s = 0; s < splits; ++s) gt += pn[s * stride + j * C + i];
      g = A(0.5) * (g + gt);
    }
    g *= scale;
    if (MODE == 0) {  // on a diagonal tile the mirror is the element of another thread
      on[i * C + j] = g;
      if (!diag) on[j * C + i] = g;
      continue;
    }
    const A d = MODE == 2 ? g - tn[i * C + j] : g;
    A v, dv;
    entry<CR, A>(d, v, dv);
    total += v;
    if (on) on[i * C + j] = dv * gmul;
    if (!diag) {
      const A dm = MODE == 2 ? g - tn[j * C + i] : g;
      entry<CR, A>(dm, v, dv);
      total += v;
      if (on) on[j * C + i] = dv * gmul;
    }
  }
  if (MODE != 0) {
    total = block_sum<kThreads>(total, shared);
    if (threadIdx.x == 0) loss_part[n * gridDim.x + blockIdx.x] = total;
  }
}

// loss = sum of the partials (fixed order); mean for l1/l2, sqrt for fro.
// inv (for fro): 1 / loss, 0 when the loss is 0.
template <typename A>
__global__ void __launch_bounds__(kThreads)
    loss_kernel(const A* __restrict__ loss_part, int64_t count_parts, A* loss, A* inv, int criterion,
                A count) {
  __shared__ A shared[kThreads / 32];
  A s = 0;
  for (int64_t k = threadIdx.x; k < count_parts; k += kThreads) s += loss_part[k];
  s = block_sum<kThreads>(s, shared);
  if (threadIdx.x == 0) {
    if (criterion == kCriterionFro) {
      const A r = sqrt(s);
      *loss = r;
      *inv = r > A(0) ? A(1) / r : A(0);
    } else {
      *loss = s / count;
    }
  }
}

template <typename A>
__global__ void __launch_bounds__(kThreads) scale_kernel(A* __restrict__ p, const A* __restrict__ inv, int64_t n) {
  const A s = *inv;
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads)
    p[i] *= s;
}

// The share of an apply block (apply_kernel, apply_wmma_kernel): the output tile of rows
// (channels) r0.. and columns k0.. of image n; qn, fn, on: the image's Q (one Q for all
// images when qN == 1), features and output.
template <typename Q, typename T> struct ApplyBlock {
  int64_t n, r0, k0;
  const Q* qn;
  const T* fn;
  T* on;
  __device__ __forceinline__ ApplyBlock(const Q* q, int64_t qN, const T* f, T* out, int64_t C, int64_t sN)
      : n(blockIdx.z), r0(int64_t(blockIdx.y) * kT), k0(int64_t(blockIdx.x) * kT),
        qn(q + (qN == 1 ? 0 : n) * C * C), fn(f + n * sN), on(out + n * sN) {}
};

// out (C, K) = alpha * Q (C, C) @ F (C, K) per image.
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    apply_kernel(const A* __restrict__ q, int64_t qN, const T* __restrict__ f, T* __restrict__ out,
                 int64_t C, int64_t K, int64_t sN, int64_t sC, int64_t sK, A alpha) {
  __shared__ A sq[kBK][kT + kPad];  // sq[cc][c] = Q[c][c0 + cc]
  __shared__ A sf[kBK][kT + kPad];  // sf[cc][k] = F[c0 + cc][k]
  const ApplyBlock<A, T> b(q, qN, f, out, C, sN);
  const bool k_fast = sK == 1;
  A acc[4][4];
  zero_acc(acc);
  for (int64_t c0 = 0; c0 < C; c0 += kBK) {
    // Q block rows r0.., cols c0..: Q is row-major, unit stride along the c0 axis
    // element loads: with the 128-bit path this SIMT kernel took 150 registers instead of 128
    // on sm_75 ... sm_89 (half the occupancy); its loads are few next to its FMAs
    load_tile<A, A>(b.qn, C, 1, C, b.r0, c0, C, true, sq, false);
    load_elems<kBK, kT, kT * kBK / kThreads>(b.fn, sC, sK, C, c0, b.k0, K, k_fast, A(0),
                                             [&](int cc, int kk, A v) { sf[cc][kk] = v; });
    __syncthreads();
    mma_tile<A, false>(sq, sf, acc);
    __syncthreads();
  }
  tile_outputs(acc, b.r0, b.k0, [&](int64_t c, int64_t k, A v) {
    if (c < C && k < K) store_as(b.on + c * sC + k * sK, v * alpha);
  });
}


// ---------------------------------------------------------------------------- tensor cores
// 256 threads = 8 warps over a 64x64 output tile: warp w owns rows 16*(w/2).. and the two
// 16-column fragments 32*(w%2).. and 32*(w%2)+16..; K advances by kWK per stage.

namespace wmma = nvcuda::wmma;
constexpr int kWK = 32;
constexpr int kLdA = kWK + 8;  // halves per row of a (64 x kWK) tile; multiple of 8 (WMMA ldm)
constexpr int kLdB = kT + 8;   // halves per row of a (kWK x 64) tile
constexpr int kLdC = kT + 4;   // floats per row of the staged 64x64 result; multiple of 4

template <typename T> __device__ __forceinline__ T to_t(float v);
template <> __device__ __forceinline__ __half to_t<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 to_t<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

template <typename T> struct IsTensorCore {
  static constexpr bool value = std::is_same<T, __half>::value || std::is_same<T, __nv_bfloat16>::value;
};

// WMMA exists for half from sm_70 and for bfloat16 from sm_80; the kernels compile to a
// trap elsewhere and the launchers pick the SIMT kernels on such devices.
template <typename T> __device__ constexpr bool wmma_ok() {
#if defined(__CUDA_ARCH__)
  return std::is_same<T, __half>::value ? (__CUDA_ARCH__ >= 700) : (__CUDA_ARCH__ >= 800);
#else
  return true;
#endif
}

template <typename T> bool tensor_cores_here() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
  return std::is_same<T, __half>::value ? major >= 7 : major >= 8;
}

// s[r * kLdA + kk] = f[r0 + r, k0 + kk] (zero outside [0, R) x [k0, kend)), 64 x kWK.
template <typename T>
__device__ __forceinline__ void load_rows_k(const T* __restrict__ f, int64_t sR, int64_t sK, int64_t R,
                                            int64_t r0, int64_t k0, int64_t kend, bool k_fast, T* s, bool vec) {
  if (vec) {
    load_rows_vec<T, float, kT, kWK>(f, sR, R, r0, k0, kend, [&](int r, int kk, float v) { s[r * kLdA + kk] = to_t<T>(v); });
    return;
  }
  load_elems<kT, kWK, 1>(f, sR, sK, R, r0, k0, kend, k_fast, to_t<T>(0.f), [&](int r, int kk, T v) { s[r * kLdA + kk] = v; });
}

// acc[f] += A B_f over one kWK stage, for the warp's 16 rows of A (the row-major 64 x kWK tile
// sa) and its two 16-column fragments f of B: fragment (kk, 16-column block fc) of B at
// b_at(kk, fc), layout LayoutB, leading dimension ldb.
template <typename T, typename LayoutB, typename BAt>
__device__ __forceinline__ void wmma_stage(const T* sa, unsigned ldb, BAt b_at,
                                           wmma::fragment<wmma::accumulator, 16, 16, 16, float> (&acc)[2]) {
  const int warp = threadIdx.x / 32;
  const int fr = warp / 2, fc0 = (warp % 2) * 2;
#pragma unroll
  for (int kk = 0; kk < kWK; kk += 16) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
    wmma::load_matrix_sync(a, sa + fr * 16 * kLdA + kk, kLdA);
#pragma unroll
    for (int f = 0; f < 2; ++f) {
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, LayoutB> b;
      wmma::load_matrix_sync(b, b_at(kk, fc0 + f), ldb);
      wmma::mma_sync(acc[f], a, b, acc[f]);
    }
  }
}

__device__ __forceinline__ void stage_result(float* sc, wmma::fragment<wmma::accumulator, 16, 16, 16, float> (&acc)[2]) {
  const int warp = threadIdx.x / 32;
  const int fr = warp / 2, fc0 = (warp % 2) * 2;
#pragma unroll
  for (int f = 0; f < 2; ++f)
    wmma::store_matrix_sync(sc + fr * 16 * kLdC + (fc0 + f) * 16, acc[f], kLdC, wmma::mem_row_major);
}

template <typename T, bool HAS_Y>
__global__ void __launch_bounds__(kThreads)
    tiles_wmma_kernel(const T* __restrict__ x, const T* __restrict__ y, float* __restrict__ part, int64_t N,
                      int64_t C, int64_t K, int64_t sN, int64_t sC, int64_t sK, int64_t kper, int ntiles, bool vec) {
  if constexpr (!wmma_ok<T>()) {
    __trap();
  } else {
  __shared__ __align__(128) T si[kT * kLdA];
  __shared__ __align__(128) T sj[kT * kLdA];
  __shared__ __align__(128) float sc[kT * kLdC];
  const ProductsBlock b(ntiles, K, kper);
  const int ti = b.ti, tj = b.tj;
  const int64_t s = b.s, n = b.n;
  const bool k_fast = sK == 1;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2], accy[2];
#pragma unroll
  for (int f = 0; f < 2; ++f) {
    wmma::fill_fragment(acc[f], 0.f);
    wmma::fill_fragment(accy[f], 0.f);
  }
  products_k_loop<kWK, HAS_Y>(b, x + n * sN, HAS_Y ? y + n * sN : nullptr, [&](const T* fn, int64_t k0) {
    load_rows_k<T>(fn, sC, sK, C, int64_t(ti) * kT, k0, b.ke, k_fast, si, vec);
    load_rows_k<T>(fn, sC, sK, C, int64_t(tj) * kT, k0, b.ke, k_fast, sj, vec);
  }, [&](auto sub) {
    // B[k][n] = rows-j tile[n][k]: the (64 x kWK) row-major tile read column-major
    wmma_stage<T, wmma::col_major>(si, kLdA, [&](int kk, int fc) { return sj + fc * 16 * kLdA + kk; },
                                   decltype(sub)::value ? accy : acc);
  });
  if (HAS_Y) {
#pragma unroll
    for (int f = 0; f < 2; ++f)
#pragma unroll
      for (int e = 0; e < acc[f].num_elements; ++e) acc[f].x[e] -= accy[f].x[e];
  }
  stage_result(sc, acc);
  __syncthreads();
  float* out = part + (s * N + n) * C * C;
  for (int e = threadIdx.x; e < kT * kT; e += kThreads) {
    const int r = e / kT, c = e % kT;
    const int64_t i = int64_t(ti) * kT + r, j = int64_t(tj) * kT + c;
    if (i < C && j < C) out[i * C + j] = sc[r * kLdC + c];
  }
  }
}

// out (C, K) = alpha * Q @ F per image, Q rounded to T for the tensor-core product.
// (at least 2 resident blocks: ptxas spilled 8-16 bytes on sm_80 without the bound)
template <typename T>
__global__ void __launch_bounds__(kThreads, 2)
    apply_wmma_kernel(const float* __restrict__ q, int64_t qN, const T* __restrict__ f, T* __restrict__ out,
                      int64_t C, int64_t K, int64_t sN, int64_t sC, int64_t sK, float alpha, bool vec_q, bool vec_f) {
  if constexpr (!wmma_ok<T>()) {
    __trap();
  } else {
  __shared__ __align__(128) T sq[kT * kLdA];   // sq[c * kLdA + cc] = Q[r0 + c][c0 + cc]
  __shared__ __align__(128) T sf[kWK * kLdB];  // sf[cc * kLdB + k] = F[c0 + cc][k0 + k]
  __shared__ __align__(128) float sc[kT * kLdC];
  const ApplyBlock<float, T> b(q, qN, f, out, C, sN);
  const bool k_fast = sK == 1;
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2];
#pragma unroll
  for (int u = 0; u < 2; ++u) wmma::fill_fragment(acc[u], 0.f);
  for (int64_t c0 = 0; c0 < C; c0 += kWK) {
    if (vec_q) {
      load_rows_vec<float, float, kT, kWK>(b.qn, C, C, b.r0, c0, C, [&](int c, int cc, float v) { sq[c * kLdA + cc] = to_t<T>(v); });
    } else {
      load_elems<kT, kWK, 4>(b.qn, C, 1, C, b.r0, c0, C, true, 0.f, [&](int c, int cc, float v) { sq[c * kLdA + cc] = to_t<T>(v); });
    }
    if (vec_f) {
      load_rows_vec<T, float, kWK, kT>(b.fn, sC, C, c0, b.k0, K, [&](int cc, int k, float v) { sf[cc * kLdB + k] = to_t<T>(v); });
    } else {
      load_elems<kWK, kT, 4>(b.fn, sC, sK, C, c0, b.k0, K, k_fast, to_t<T>(0.f), [&](int cc, int k, T v) { sf[cc * kLdB + k] = v; });
    }
    __syncthreads();
    wmma_stage<T, wmma::row_major>(sq, kLdB, [&](int kk, int fc) { return sf + kk * kLdB + fc * 16; }, acc);
    __syncthreads();
  }
  stage_result(sc, acc);
  __syncthreads();
  for (int e = threadIdx.x; e < kT * kT; e += kThreads) {
    int r, c;
    if (k_fast) {  // neighbouring threads write neighbouring k
      r = e / kT;
      c = e % kT;
    } else {
      c = e / kT;
      r = e % kT;
    }
    const int64_t gr = b.r0 + r, gk = b.k0 + c;
    if (gr < C && gk < K) b.on[gr * sC + gk * sK] = to_t<T>(sc[r * kLdC + c] * alpha);
  }
  }
}

int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t split_len(int64_t K, int64_t splits) { return cdiv(cdiv(K, splits), kBK) * kBK; }

// Features whose rows (fixed n, c) load in 16-byte chunks: unit K stride, 16-byte aligned
// start, image and channel strides that keep it (a dimension of size 1 moves nothing). The
// tiles start at multiples of 16 along K (split lengths are multiples of kBK), so each
// chunk is aligned. A null pointer (no y) does not count.
bool rows_vec_ok(const void* f, int64_t N, int64_t C, int64_t sN, int64_t sC, int64_t sK, size_t elem) {
  if (f == nullptr) return true;
  return sK == 1 && vec_ptr_ok(f) && (N == 1 || vec_stride_ok(sN, elem)) && (C == 1 || vec_stride_ok(sC, elem));
}

template <typename T, typename A>
void launch_products(const T* x, const T* y, A* part, int64_t N, int64_t C, int64_t K, int64_t sN,
                     int64_t sC, int64_t sK, int64_t splits, cudaStream_t st) {
  const int ntiles = static_cast<int>(cdiv(C, kT));
  const dim3 grid(static_cast<unsigned>(gram_triangle_tiles(C)), static_cast<unsigned>(splits),
                  static_cast<unsigned>(N));
  const int64_t kper = split_len(K, splits);
  const bool vec = rows_vec_ok(x, N, C, sN, sC, sK, sizeof(T)) && rows_vec_ok(y, N, C, sN, sC, sK, sizeof(T));
  if constexpr (IsTensorCore<T>::value) {
    if (tensor_cores_here<T>()) {
      if (y) launch_kernel(tiles_wmma_kernel<T, true>, grid, kThreads, 0, st, x, y, part, N, C, K, sN, sC, sK, kper, ntiles, vec);
      else launch_kernel(tiles_wmma_kernel<T, false>, grid, kThreads, 0, st, x, nullptr, part, N, C, K, sN, sC, sK, kper, ntiles, vec);
      return;
    }
  }
  if (y) launch_kernel(tiles_kernel<T, A, true>, grid, kThreads, 0, st, x, y, part, N, C, K, sN, sC, sK, kper, ntiles, vec);
  else launch_kernel(tiles_kernel<T, A, false>, grid, kThreads, 0, st, x, nullptr, part, N, C, K, sN, sC, sK, kper, ntiles, vec);
}

template <typename T, typename A>
void gram_fwd_typed(Typed<T, A>, const void* f, void* part, void* g, int64_t N, int64_t C, int64_t K, int64_t sN,
                    int64_t sC, int64_t sK, int64_t splits, double scale, cudaStream_t st) {
  launch_products<T, A>(static_cast<const T*>(f), nullptr, static_cast<A*>(part), N, C, K, sN, sC, sK,
                        splits, st);
  const dim3 grid(static_cast<unsigned>(gram_triangle_tiles(C)), static_cast<unsigned>(N));
  launch_kernel(finalize_kernel<A, 0, kCriterionL1>, grid, kThreads, 0, st, static_cast<const A*>(part), nullptr, 1,
                                                        static_cast<A*>(g), nullptr, N, C, splits,
                                                        static_cast<A>(scale), A(1),
                                                        static_cast<int>(cdiv(C, kT)));
}

template <typename A, int MODE>
void launch_finalize(int criterion, dim3 grid, cudaStream_t st, const A* part, const A* target, int64_t tN,
                     A* p, A* loss_part, int64_t N, int64_t C, int64_t splits, A scale, A gmul, int ntiles) {
  if (criterion == kCriterionL1)
    launch_kernel(finalize_kernel<A, MODE, kCriterionL1>, grid, kThreads, 0, st, part, target, tN, p, loss_part, N, C, splits, scale, gmul, ntiles);
  else if (criterion == kCriterionL2)
    launch_kernel(finalize_kernel<A, MODE, kCriterionL2>, grid, kThreads, 0, st, part, target, tN, p, loss_part, N, C, splits, scale, gmul, ntiles);
  else
    launch_kernel(finalize_kernel<A, MODE, kCriterionFro>, grid, kThreads, 0, st, part, target, tN, p, loss_part, N, C, splits, scale, gmul, ntiles);
}

template <typename T, typename A>
void style_fwd_typed(Typed<T, A>, const void* x, const void* y, const void* target, int64_t tN, void* part, void* p,
                     void* loss_part, void* loss, int64_t N, int64_t C, int64_t K, int64_t sN,
                     int64_t sC, int64_t sK, int64_t splits, double scale, int criterion,
                     cudaStream_t st) {
  launch_products<T, A>(static_cast<const T*>(x), static_cast<const T*>(y), static_cast<A*>(part), N, C,
                        K, sN, sC, sK, splits, st);
  const int64_t ntri = gram_triangle_tiles(C);
  const dim3 grid(static_cast<unsigned>(ntri), static_cast<unsigned>(N));
  const A count = static_cast<A>(N) * static_cast<A>(C) * static_cast<A>(C);
  const A gmul = criterion == kCriterionFro ? A(1) : A(1) / count;
  auto* lp = static_cast<A*>(loss_part);
  const int ntiles = static_cast<int>(cdiv(C, kT));
  if (y)
    launch_finalize<A, 1>(criterion, grid, st, static_cast<const A*>(part), nullptr, 1, static_cast<A*>(p), lp,
                          N, C, splits, static_cast<A>(scale), gmul, ntiles);
  else
    launch_finalize<A, 2>(criterion, grid, st, static_cast<const A*>(part), static_cast<const A*>(target), tN,
                          static_cast<A*>(p), lp, N, C, splits, static_cast<A>(scale), gmul, ntiles);
  A* inv = lp + N * ntri;  // one spare accumulator after the partials
  launch_kernel(loss_kernel<A>, 1, kThreads, 0, st, lp, N * ntri, static_cast<A*>(loss), inv, criterion, count);
  if (p && criterion == kCriterionFro) {
    const int64_t total = N * C * C;
    const int64_t blocks = cdiv(total, kThreads) < 4096 ? cdiv(total, kThreads) : 4096;
    launch_kernel(scale_kernel<A>, static_cast<unsigned>(blocks), kThreads, 0, st, static_cast<A*>(p), inv, total);
  }
}

template <typename T, typename A>
void apply_typed(Typed<T, A>, const void* q, int64_t qN, const void* f, void* out, int64_t N, int64_t C, int64_t K,
                 int64_t sN, int64_t sC, int64_t sK, double alpha, cudaStream_t st) {
  const dim3 grid(static_cast<unsigned>(cdiv(K, kT)), static_cast<unsigned>(cdiv(C, kT)), static_cast<unsigned>(N));
  if constexpr (IsTensorCore<T>::value) {
    if (tensor_cores_here<T>()) {
      // Q (qN, C, C) row-major in accumulators: rows of C, images of C * C
      const bool vec_q = rows_vec_ok(q, qN, C, C * C, C, 1, sizeof(A));
      const bool vec_f = rows_vec_ok(f, N, C, sN, sC, sK, sizeof(T));
      launch_kernel(apply_wmma_kernel<T>, grid, kThreads, 0, st, static_cast<const float*>(q), qN, static_cast<const T*>(f),
                                                      static_cast<T*>(out), C, K, sN, sC, sK, static_cast<float>(alpha), vec_q, vec_f);
      return;
    }
  }
  launch_kernel(apply_kernel<T, A>, grid, kThreads, 0, st, static_cast<const A*>(q), qN, static_cast<const T*>(f),
                                                static_cast<T*>(out), C, K, sN, sC, sK, static_cast<A>(alpha));
}

}  // namespace

int64_t gram_triangle_tiles(int64_t C) {
  const int64_t t = cdiv(C, kT);
  return t * (t + 1) / 2;
}

int64_t gram_splits(int64_t N, int64_t C, int64_t K) {
  const int64_t blocks = N * gram_triangle_tiles(C);
  int64_t want = cdiv(kTargetBlocks, blocks > 0 ? blocks : 1);
  const int64_t most = K / kMinSplitK > 1 ? K / kMinSplitK : 1;
  if (want > most) want = most;
  if (want > 65535) want = 65535;
  return want < 1 ? 1 : want;
}

const char* gram_fwd_launch(int dtype, const void* f, void* part, void* g, int64_t N, int64_t C, int64_t K,
                            int64_t sN, int64_t sC, int64_t sK, int64_t splits, double scale, void* stream) {
  if (N == 0 || C == 0) return nullptr;
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa gram_fwd_launch: unsupported dtype", [&](auto t) {
    gram_fwd_typed(t, f, part, g, N, C, K, sN, sC, sK, splits, scale, st);
  });
}

const char* style_fwd_launch(int dtype, const void* x, const void* y, const void* target, int64_t tN,
                             void* part, void* p, void* loss_part, void* loss, int64_t N, int64_t C,
                             int64_t K, int64_t sN, int64_t sC, int64_t sK, int64_t splits, double scale,
                             int criterion, void* stream) {
  if (N == 0 || C == 0) return "fastiqa style_fwd_launch: empty features";
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa style_fwd_launch: unsupported dtype", [&](auto t) {
    style_fwd_typed(t, x, y, target, tN, part, p, loss_part, loss, N, C, K, sN, sC, sK, splits, scale, criterion, st);
  });
}

const char* gram_apply_launch(int dtype, const void* q, int64_t qN, const void* f, void* out, int64_t N,
                              int64_t C, int64_t K, int64_t sN, int64_t sC, int64_t sK, double alpha,
                              void* stream) {
  if (N == 0 || C == 0 || K == 0) return nullptr;
  auto st = static_cast<cudaStream_t>(stream);
  return for_dtype(dtype, "fastiqa gram_apply_launch: unsupported dtype", [&](auto t) {
    apply_typed(t, q, qN, f, out, N, C, K, sN, sC, sK, alpha, st);
  });
}

}  // namespace cuda
}  // namespace fastiqa
