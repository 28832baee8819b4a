// Row kernels shared by the SSIM kernels (csrc/cpu/ssim_impl.h) and the masked SSIM's banded
// kernels (csrc/cpu/ssim_masked_band.h): scratch row pitches, the vertical blur of NQ quantities
// (one output row, or two from win + 1 rows), the transposed horizontal blur, the pairing of
// output rows. Included inside a variant's namespace after simd.h (Vec<A> loops: accumulators
// in registers; each lane is one column, nothing reassociated across lanes).
#pragma once

// Pitch (elements) of a block of scratch rows of at least n elements: an odd number of
// 64-byte lines, so that row q of the block starts in another L1 set than row 0 for every
// q < 64. The blurs stream up to 5 x win rows at once; with a pitch of a multiple of 4 KiB
// (e.g. 512 doubles: 504-pixel images in float64) they all fall in one set and thrash it.
template <typename A> int64_t row_pitch(int64_t n) {
  constexpr int64_t line = 64 / static_cast<int64_t>(sizeof(A));
  int64_t p = (n + line - 1) / line * line;
  if ((p / line) % 2 == 0) p += line;
  return p;
}

// Output rows in pairs: the ring row u (u0 = the first) completes output row p = u - win + 1;
// an even p - u0 waits for its successor when there is one (p + 1 < p_end). Returns how many
// rows to compute now (0, 1: p alone, 2: p - 1 and p).
FASTIQA_INLINE int rows_due(int64_t p, int64_t u0, int64_t p_end) {
  if (((p - u0) & 1) == 1) return 2;
  return p + 1 < p_end ? 0 : 1;
}

// Vertical blur: st[q * P + j] = sum_k g[k] rows[k][q * P + j] for the nq quantities
// (stats_of<A>(): the statistics from the ring of horizontal blurs; 4: the gradient's vertical adjoint
// from the ring of coefficient rows, taps k_lo .. k_hi only).
// ADD: out += the blur (the gradient's vertical adjoint into the band's accumulator rows).
template <int NQ, int U, bool ADD, typename A>
FASTIQA_INLINE void vblur_at(const A* const* rows, const A* g, int win, int k_lo, int k_hi, int64_t j, int64_t P,
                             A* out, int64_t out_stride) {
  using V = Vec<A>;
  constexpr int NV = vec_lanes<A>();
  V a[NQ][U];
  for (int q = 0; q < NQ; ++q)
    for (int u = 0; u < U; ++u) a[q][u] = V{};
  for (int k = k_lo; k <= k_hi; ++k) {
    const V gk = vsplat(g[k]);
    const A* r = rows[k] + j;
    for (int q = 0; q < NQ; ++q)
      for (int u = 0; u < U; ++u) a[q][u] += gk * vload(r + q * P + u * NV);
  }
  for (int q = 0; q < NQ; ++q)
    for (int u = 0; u < U; ++u) {
      A* o = out + q * out_stride + j + u * NV;
      if constexpr (ADD) a[q][u] += vload(o);
      vstore(o, a[q][u]);
    }
}

template <int NQ, bool ADD = false, typename A>
FASTIQA_INLINE void vblur(const A* const* rows, const A* g, int win, int k_lo, int k_hi, int64_t LW, int64_t P,
                          A* out, int64_t out_stride) {
  constexpr int NV = vec_lanes<A>();
  constexpr int U = kVecBytes == 64 || NQ <= 5 ? 2 : 1;  // 2 NQ accumulators within the registers
  int64_t j = 0;
  for (; j + U * NV <= LW; j += U * NV) vblur_at<NQ, U, ADD>(rows, g, win, k_lo, k_hi, j, P, out, out_stride);
  for (; j < LW; j += NV) vblur_at<NQ, 1, ADD>(rows, g, win, k_lo, k_hi, j, P, out, out_stride);
}

// Two output rows of the vertical blur from win + 1 input rows: out0 from rows 0 .. win - 1, out1
// from rows 1 .. win; each loaded vector feeds both (half the loads of two single rows).
// ADD: out0 / out1 (rows of out_stride) += the blurs (the gradient's vertical adjoint).
template <int NQ, int U, bool ADD, typename A>
FASTIQA_INLINE void vblur2_at(const A* const* rows, const A* g, int win, int64_t j, int64_t P, A* out0, A* out1,
                              int64_t out_stride) {
  using V = Vec<A>;
  constexpr int NV = vec_lanes<A>();
  V a[NQ][U], b[NQ][U];
  {
    const V g0 = vsplat(g[0]);
    for (int q = 0; q < NQ; ++q)
      for (int u = 0; u < U; ++u) {
        a[q][u] = g0 * vload(rows[0] + q * P + j + u * NV);
        b[q][u] = V{};
      }
  }
  for (int k = 1; k < win; ++k) {
    const V gk = vsplat(g[k]), gl = vsplat(g[k - 1]);
    const A* r = rows[k] + j;
    for (int q = 0; q < NQ; ++q)
      for (int u = 0; u < U; ++u) {
        V v = vload(r + q * P + u * NV);
        vkeep(v);  // one load for both rows
        a[q][u] += gk * v;
        b[q][u] += gl * v;
      }
  }
  {
    const V gl = vsplat(g[win - 1]);
    const A* r = rows[win] + j;
    for (int q = 0; q < NQ; ++q)
      for (int u = 0; u < U; ++u) b[q][u] += gl * vload(r + q * P + u * NV);
  }
  for (int q = 0; q < NQ; ++q)
    for (int u = 0; u < U; ++u) {
      A* o0 = out0 + q * out_stride + j + u * NV;
      A* o1 = out1 + q * out_stride + j + u * NV;
      if constexpr (ADD) {
        a[q][u] += vload(o0);
        b[q][u] += vload(o1);
      }
      vstore(o0, a[q][u]);
      vstore(o1, b[q][u]);
    }
}

template <int NQ, bool ADD, typename A>
FASTIQA_INLINE void vblur2(const A* const* rows, const A* g, int win, int64_t len, int64_t P, A* out0, A* out1,
                           int64_t out_stride) {
  constexpr int NV = vec_lanes<A>();
  // 2 NQ accumulators per vector: two vectors per pass where the registers hold them (32 on
  // avx512; 16 elsewhere: 12 accumulators + 2 taps + a load for the gradient's 3 coefficient rows)
  constexpr int U = (kVecBytes == 64 && NQ <= 6) || NQ <= 3 ? 2 : 1;
  int64_t j = 0;
  for (; j + U * NV <= len; j += U * NV) vblur2_at<NQ, U, ADD>(rows, g, win, j, P, out0, out1, out_stride);
  for (; j < len; j += NV) vblur2_at<NQ, 1, ADD>(rows, g, win, j, P, out0, out1, out_stride);
}

// Transposed horizontal blur of NQ zero-margined rows (the window is symmetric,
// so the adjoint is the same correlation on rows padded by win-1 zeros).
template <int NQ, int U, typename A>
FASTIQA_INLINE void hblur_adj_at(const A* in, int64_t in_stride, const A* g, int win, int64_t j, int64_t LWp,
                                 A* out) {
  using V = Vec<A>;
  constexpr int NV = vec_lanes<A>();
  V a[NQ][U];
  for (int q = 0; q < NQ; ++q)
    for (int u = 0; u < U; ++u) a[q][u] = V{};
  const int half = win / 2;  // symmetric taps folded (hblur_stats_at)
  for (int k = 0; k < half; ++k) {
    const V gk = vsplat(g[k]);
    for (int q = 0; q < NQ; ++q)
      for (int u = 0; u < U; ++u) {
        const A* r = in + q * in_stride + j + u * NV;
        a[q][u] += gk * (vload(r + k) + vload(r + win - 1 - k));
      }
  }
  const V gc = vsplat(g[half]);
  for (int q = 0; q < NQ; ++q)
    for (int u = 0; u < U; ++u) a[q][u] += gc * vload(in + q * in_stride + j + half + u * NV);
  for (int q = 0; q < NQ; ++q)
    for (int u = 0; u < U; ++u) vstore(out + q * LWp + j + u * NV, a[q][u]);
}

// Not inlined: inlined into the band functions (run_band), whose live values crowd the 16
// registers of avx2, it kept a tap or an accumulator on the stack (a spill in the inner loop:
// the gradient's largest avx2 hot spot outside grad_strips). Once per source row: the call is free.
#if FASTIQA_ISA_LEVEL == 1
// x[K .. K + 7] from A0 = x[0 .. 7], A1 = x[8 .. 15] and M = x[4 .. 11] (vpalignr per 128-bit lane)
template <int K> FASTIQA_INLINE __m256 shifted8(__m256 A0, __m256 M, __m256 A1) {
  if constexpr (K == 4) return M;
  else if constexpr (K < 4)
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(M), _mm256_castps_si256(A0), 4 * K));
  else
    return _mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(A1), _mm256_castps_si256(M), 4 * (K - 4)));
}

// Tap k (0 .. 10) of the vector at r from A0 = r[0 .. 7], M = r[4 .. 11], A1 = r[8 .. 15]; taps 9
// and 10 load (at mid-line they do not split)
template <int k> FASTIQA_INLINE Vec<float> tap11(const float* r, __m256 A0, __m256 M, __m256 A1) {
  if constexpr (k == 0) return Vec<float>(A0);
  else if constexpr (k < 8) return Vec<float>(shifted8<k>(A0, M, A1));
  else if constexpr (k == 8) return Vec<float>(A1);
  else return vload(r + k);
}

// a window tap as a vector: a scalar tap broadcast, a pre-broadcast one as it is
FASTIQA_INLINE Vec<float> tap_vec(float g) { return vsplat(g); }
FASTIQA_INLINE Vec<float> tap_vec(Vec<float> g) { return g; }

// a += the 11-tap symmetric blur of the mid-line vector at r (taps from tap11): taps k and 10 - k
// summed first, k = 0 .. 4, then the centre. G: the 6 taps, scalar or broadcast.
template <int k = 0, typename G>
FASTIQA_INLINE void hblur_sym11(const float* r, const G* g, __m256 A0, __m256 M, __m256 A1, Vec<float>& a) {
  if constexpr (k < 5) {
    a += tap_vec(g[k]) * (tap11<k>(r, A0, M, A1) + tap11<10 - k>(r, A0, M, A1));
    hblur_sym11<k + 1>(r, g, A0, M, A1, a);
  } else {
    a += tap_vec(g[5]) * tap11<5>(r, A0, M, A1);
  }
}

// One vector of hblur_adj_at for an 11-tap float window (g: the 6 taps broadcast), the same sums in
// the same order. A vector that starts mid-line would split 8 of its 11 loads (k = 1 .. 7 and the
// centre) across two lines, and a split load costs about two on Zen 4: those taps come from two
// whole-line-half loads shifted in registers instead (a vector on a line splits only k = 9, 10).
FASTIQA_INLINE Vec<float> hblur_adj11(const float* r, const Vec<float>* g) {
  Vec<float> a = Vec<float>{};
  if ((reinterpret_cast<uintptr_t>(r) & 63) == 32) {
    const __m256 A0 = _mm256_loadu_ps(r), A1 = _mm256_loadu_ps(r + 8);
    hblur_sym11(r, g, A0, _mm256_permute2f128_ps(A0, A1, 0x21), A1, a);
  } else {
    for (int k = 0; k < 5; ++k) a += g[k] * (vload(r + k) + vload(r + 10 - k));
    a += g[5] * vload(r + 5);
  }
  return a;
}
#endif

template <int NQ, typename A>
__attribute__((noinline)) void hblur_adj(const A* in, int64_t in_stride, const A* g, int win, int64_t LWp, A* out) {
  constexpr int NV = vec_lanes<A>();
#if FASTIQA_ISA_LEVEL == 1
  if constexpr (std::is_same_v<A, float>) {
    if (win == 11) {
      Vec<float> gv[6];
      for (int k = 0; k < 6; ++k) gv[k] = vsplat(g[k]);
      for (int q = 0; q < NQ; ++q)
        for (int64_t j = 0; j < LWp; j += NV) vstore(out + q * LWp + j, hblur_adj11(in + q * in_stride + j, gv));
      return;
    }
  }
#endif
  // U vectors per pass while U x NQ accumulators + a tap + a sum fit the 16 (avx2) / 32 (avx512)
  // vector registers
  constexpr int U = NQ <= 3 ? 4 : NQ <= 4 ? 2 : 1;
  int64_t j = 0;
  for (; j + U * NV <= LWp; j += U * NV) hblur_adj_at<NQ, U>(in, in_stride, g, win, j, LWp, out);
  for (; j < LWp; j += NV) hblur_adj_at<NQ, 1>(in, in_stride, g, win, j, LWp, out);
}
