// The harness's <mma.h>: nvcuda::wmma 16x16x16 on the emulator. A fragment holds 8 of
// the 256 elements per lane (element e of lane l is (row, col) = divmod(8 l + e, 16));
// load / store / mma are warp-synchronous (all 32 lanes, one call site) and check the
// rules of the CUDA programming guide: pointer 256-bit aligned, ldm a multiple of 16
// bytes. mma_sync gathers the operands of all lanes and accumulates in float, k in order.
#pragma once
#include <cuda_runtime.h>

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "cuda_emu: only 16x16x16 fragments");
  static constexpr int num_elements = 8;
  T x[8];
};

namespace detail {
inline int lane() { return static_cast<int>(::fastiqa_emu::thread_linear()) & 31; }
inline void check(const void* p, unsigned ldm, size_t elem, const char* what, const char* file, int line) {
  const std::string at = std::string(" at ") + file + ":" + std::to_string(line);
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0) ::fastiqa_emu::fail(std::string(what) + ": pointer not 256-bit aligned" + at);
  if ((ldm * elem) % 16 != 0) ::fastiqa_emu::fail(std::string(what) + ": ldm " + std::to_string(ldm) + " not a multiple of 16 bytes" + at);
}
template <typename T> float to_float(T v) { return static_cast<float>(v); }
template <> inline float to_float<__half>(__half v) { return __half2float(v); }
template <> inline float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
}  // namespace detail

template <typename T> void fill_fragment(fragment<accumulator, 16, 16, 16, T>& f, T v) {
  for (int e = 0; e < 8; ++e) f.x[e] = v;
}

template <typename Use, typename T, typename Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm,
                      const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  detail::check(p, ldm, sizeof(T), "wmma::load_matrix_sync", file, line);
  ::fastiqa_emu::warp_barrier(file, line);
  const int l = detail::lane();
  for (int e = 0; e < 8; ++e) {
    const int r = (8 * l + e) / 16, c = (8 * l + e) % 16;
    f.x[e] = std::is_same<Layout, row_major>::value ? p[r * ldm + c] : p[c * ldm + r];
  }
}

template <typename T>
void store_matrix_sync(T* p, const fragment<accumulator, 16, 16, 16, T>& f, unsigned ldm, layout_t layout,
                       const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  detail::check(p, ldm, sizeof(T), "wmma::store_matrix_sync", file, line);
  ::fastiqa_emu::warp_barrier(file, line);
  const int l = detail::lane();
  for (int e = 0; e < 8; ++e) {
    const int r = (8 * l + e) / 16, c = (8 * l + e) % 16;
    (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[e];
  }
}

template <typename T, typename LA, typename LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
              const fragment<matrix_b, 16, 16, 16, T, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c,
              const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  ::fastiqa_emu::Runtime& r = ::fastiqa_emu::rt();
  const int tid = static_cast<int>(::fastiqa_emu::thread_linear()), l = tid & 31;
  const void** slot = &r.warp_ptrs[(tid - l) * 4];
  slot[l * 4 + 0] = &a;
  slot[l * 4 + 1] = &b;
  slot[l * 4 + 2] = &c;
  ::fastiqa_emu::warp_barrier(file, line);
  auto at = [&](int which, int row, int col) -> float {  // element (row, col) of a, b (T) or c (float)
    const int i = row * 16 + col;
    const void* frag = slot[(i / 8) * 4 + which];
    if (which == 2) return static_cast<const fragment<accumulator, 16, 16, 16, float>*>(frag)->x[i % 8];
    if (which == 0) return detail::to_float(static_cast<const fragment<matrix_a, 16, 16, 16, T, LA>*>(frag)->x[i % 8]);
    return detail::to_float(static_cast<const fragment<matrix_b, 16, 16, 16, T, LB>*>(frag)->x[i % 8]);
  };
  float out[8];
  for (int e = 0; e < 8; ++e) {
    const int m = (8 * l + e) / 16, n = (8 * l + e) % 16;
    float s = at(2, m, n);
    for (int k = 0; k < 16; ++k) s += at(0, m, k) * at(1, k, n);
    out[e] = s;
  }
  ::fastiqa_emu::warp_barrier(file, line);  // every lane has read the operands (d may alias c)
  for (int e = 0; e < 8; ++e) d.x[e] = out[e];
}

}  // namespace wmma
}  // namespace nvcuda
