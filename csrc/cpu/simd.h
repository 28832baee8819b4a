// The native SIMD vector of a variant's ISA level (GCC / clang vector extensions):
// 64 bytes for avx512, 32 for avx2, 16 for the baseline (SSE2, NEON). Loops written
// with Vec<A> keep their accumulators in registers by construction (the lane-blocked
// scalar arrays of the other loops are left to the vectoriser, which spilled them
// to the stack in the SSIM blurs). Each lane is one output column: nothing is
// reassociated, so the results do not depend on the vector width.
//
// Include between FASTIQA_ISA_BEGIN and FASTIQA_ISA_END, inside the namespace
// fastiqa::cpu::FASTIQA_ISA_NS: the helpers are then compiled for the variant's level.
// No includes here on purpose (a header included inside a target region would be
// compiled for that target).
#pragma once

#if FASTIQA_ISA_LEVEL == 2
constexpr int kVecBytes = 64;
#elif FASTIQA_ISA_LEVEL == 1
constexpr int kVecBytes = 32;
#else
constexpr int kVecBytes = 16;
#endif

template <typename A> struct VecOf;
template <> struct VecOf<float> { typedef float type __attribute__((vector_size(kVecBytes))); };
template <> struct VecOf<double> { typedef double type __attribute__((vector_size(kVecBytes))); };
template <typename A> using Vec = typename VecOf<A>::type;
// lanes of Vec<A>; every scratch row length is a multiple of kLanes, itself a multiple of this
template <typename A> constexpr int vec_lanes() { return kVecBytes / static_cast<int>(sizeof(A)); }

template <typename A> FASTIQA_INLINE Vec<A> vload(const A* p) {  // unaligned
  Vec<A> v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
template <typename A> FASTIQA_INLINE void vstore(A* p, Vec<A> v) { __builtin_memcpy(p, &v, sizeof(v)); }
// a broadcast: a - 0 is a for every a (also -0), so the compiler drops the subtraction and
// emits one broadcast (from memory: a load, no shuffle on the FMA pipes); 0 + a is not the
// identity for -0 and left a scalar add + a register broadcast in every tap of the blurs
template <typename A> FASTIQA_INLINE Vec<A> vsplat(A a) { return a - Vec<A>{}; }
// Keeps a loaded vector in a register: GCC folds a load that feeds two FMAs into both of them
// (two loads; the vertical pair blur, vblur2_at, is then bound by the two loads a cycle of Zen 4)
#if FASTIQA_ISA_LEVEL == 2
template <typename V> FASTIQA_INLINE void vkeep(V& v) { __asm__("" : "+v"(v)); }
#elif defined(__x86_64__) || defined(_M_X64)
template <typename V> FASTIQA_INLINE void vkeep(V& v) { __asm__("" : "+x"(v)); }
#else
template <typename V> FASTIQA_INLINE void vkeep(V&) {}
#endif

// clamp(v, lo, hi) elementwise with a NaN passed through, as the scalar
// v < lo ? lo : (v > hi ? hi : v). x86 max/min return their second operand when one
// is NaN (one instruction each; GCC turns the ternary form into compare + blend).
#if FASTIQA_ISA_LEVEL == 2
FASTIQA_INLINE Vec<float> vclamp(Vec<float> v, Vec<float> lo, Vec<float> hi) {
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));
}
FASTIQA_INLINE Vec<double> vclamp(Vec<double> v, Vec<double> lo, Vec<double> hi) {
  return _mm512_min_pd(hi, _mm512_max_pd(lo, v));
}
#elif FASTIQA_ISA_LEVEL == 1
FASTIQA_INLINE Vec<float> vclamp(Vec<float> v, Vec<float> lo, Vec<float> hi) {
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));
}
FASTIQA_INLINE Vec<double> vclamp(Vec<double> v, Vec<double> lo, Vec<double> hi) {
  return _mm256_min_pd(hi, _mm256_max_pd(lo, v));
}
#elif defined(__SSE2__)
FASTIQA_INLINE Vec<float> vclamp(Vec<float> v, Vec<float> lo, Vec<float> hi) {
  return _mm_min_ps(hi, _mm_max_ps(lo, v));
}
FASTIQA_INLINE Vec<double> vclamp(Vec<double> v, Vec<double> lo, Vec<double> hi) {
  return _mm_min_pd(hi, _mm_max_pd(lo, v));
}
#else
template <typename V> FASTIQA_INLINE V vclamp(V v, V lo, V hi) {
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}
#endif

// Reciprocal square root estimate of float lanes: relative error < 2^-14 on avx512,
// < 1.5 2^-12 on avx2 / SSE, for normal finite lanes; one Newton step (pixel_impl.h)
// squares it. No estimate instruction elsewhere: kHasRsqrt is false and callers keep IEEE
// sqrt and division.
#if FASTIQA_ISA_LEVEL == 2
constexpr bool kHasRsqrt = true;
FASTIQA_INLINE Vec<float> vrsqrt_estimate(Vec<float> q) { return _mm512_rsqrt14_ps(q); }
#elif FASTIQA_ISA_LEVEL == 1
constexpr bool kHasRsqrt = true;
FASTIQA_INLINE Vec<float> vrsqrt_estimate(Vec<float> q) { return _mm256_rsqrt_ps(q); }
#elif defined(__SSE2__)
constexpr bool kHasRsqrt = true;
FASTIQA_INLINE Vec<float> vrsqrt_estimate(Vec<float> q) { return _mm_rsqrt_ps(q); }
#else
constexpr bool kHasRsqrt = false;
FASTIQA_INLINE Vec<float> vrsqrt_estimate(Vec<float> q) { return q; }  // never called
#endif

// The first n lanes of a vector from memory (0 < n <= lanes; the other lanes 0), and a store of
// the first n lanes: masked loads (AVX-512 masks, AVX vmaskmov), which never read the masked
// lanes' memory, so a row's head or tail is one vector step. AMD's vmaskmov stores are slow:
// avx2 stores the lanes one by one. kHasMasked is false where there is no masked load
// (SSE2, NEON): callers keep a scalar tail there.
#if FASTIQA_ISA_LEVEL == 2
constexpr bool kHasMasked = true;
FASTIQA_INLINE Vec<float> vload_first(const float* p, int n) {
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
}
FASTIQA_INLINE Vec<double> vload_first(const double* p, int n) {
  return _mm512_maskz_loadu_pd(static_cast<__mmask8>((1u << n) - 1), p);
}
FASTIQA_INLINE void vstore_first(float* p, Vec<float> v, int n) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
}
FASTIQA_INLINE void vstore_first(double* p, Vec<double> v, int n) {
  _mm512_mask_storeu_pd(p, static_cast<__mmask8>((1u << n) - 1), v);
}
#elif FASTIQA_ISA_LEVEL == 1
constexpr bool kHasMasked = true;
FASTIQA_INLINE Vec<float> vload_first(const float* p, int n) {
  return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}
FASTIQA_INLINE Vec<double> vload_first(const double* p, int n) {
  return _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)));
}
#else
constexpr bool kHasMasked = false;
template <typename A> FASTIQA_INLINE Vec<A> vload_first(const A* p, int n) {  // never called
  Vec<A> v{};
  for (int j = 0; j < n; ++j) v[j] = p[j];
  return v;
}
#endif
#if FASTIQA_ISA_LEVEL != 2
template <typename A> FASTIQA_INLINE void vstore_first(A* p, Vec<A> v, int n) {
  for (int j = 0; j < n; ++j) p[j] = v[j];
}
#endif
