// Explicit CPU ISA dispatch of the hot loops.
//
// Every kernel family's code (csrc/cpu/<family>_impl.h) is compiled once per ISA
// level by a variant translation unit (csrc/cpu/variant_<isa>.cpp) that
// sets FASTIQA_ISA_LEVEL and includes it: the code then lives in the namespace
// fastiqa::cpu::<isa> and, between FASTIQA_ISA_BEGIN and FASTIQA_ISA_END, every
// function is compiled for that level's instruction set (a GCC / clang target
// pragma; all headers are included before it, so no inline function of torch or
// the standard library is ever compiled with a wider ISA than the baseline: the
// linker cannot pick an AVX-512 copy of a shared inline function for baseline code):
//   avx512    x86-64-v4: AVX-512F/BW/DQ/VL/CD + AVX2 + FMA + F16C + BMI1/2
//   avx2      x86-64-v3: AVX2 + FMA + F16C + BMI1/2
//   baseline  the compiler's default target (x86-64: SSE2; aarch64: NEON)
// The level that runs is chosen once, on first use, from the CPU's features
// (__builtin_cpu_supports: never an unsupported instruction) and can be forced
// with FASTIQA_CPU_ISA=avx512|avx2|baseline (a level this CPU lacks, or an unknown
// value, is an error naming the variable) or switched in-process with the op
// fastiqa_C::cpu_isa_select (tests, benchmarks).
// One kernel family (pixel, psnr, ssim, gram, ...) may use another level than the
// process (fastiqa_C::cpu_isa_select_family; fastiqa/cpu_tune.py sets the fastest
// level it measured on this CPU): that choice counts only while no level is forced
// for the whole process (FASTIQA_CPU_ISA or cpu_isa_select).
//
// The loops are written lane-blocked (kLanes independent accumulators) so the
// compiler vectorises them without reassociating sums: results are bitwise
// reproducible for a given ISA level and thread count.
#pragma once

#include <string>
#include <utility>
#include <vector>
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>  // used by simd.h inside the variants' target regions
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
#define FASTIQA_X86_VARIANTS 1  // avx512 / avx2 / baseline variants are built
#else
#define FASTIQA_X86_VARIANTS 0  // one (baseline) variant: aarch64 NEON, MSVC, others
#endif

namespace fastiqa {
namespace cpu {

constexpr int kLanes = 16;

enum class Isa : int { kBaseline = 0, kAvx2 = 1, kAvx512 = 2 };
constexpr int kNumIsa = 3;

const char* isa_label(Isa isa);           // "baseline", "avx2", "avx512"
std::vector<Isa> supported_isas();        // levels built and supported by this CPU, best first
Isa active_isa();                         // the process level (FASTIQA_CPU_ISA or the best)
void select_isa(const std::string& name); // switch in-process (same rules as the variable;
                                          // "auto" drops the choice: the variable or the best)
bool isa_forced();                        // a level is forced for the process (variable or select)
int family_slot(const char* table_name);  // registers the family of a table ("ssim_kernels" -> "ssim")
Isa active_isa(int family);               // the level family `family` (a family_slot) uses now

// The kernel table of the active level. Table is a struct of function pointers that
// each variant fills (fastiqa::cpu::<isa>::kernels(Table*)).
template <typename Table> struct Variants {
  Table by_level[kNumIsa];
  int family;  // family_slot of this table
  Variants(const char* name, void (*base)(Table*), void (*v3)(Table*), void (*v4)(Table*))
      : family(family_slot(name)) {
    base(&by_level[0]);
    (v3 ? v3 : base)(&by_level[1]);
    (v4 ? v4 : base)(&by_level[2]);
  }
  const Table& active() const { return by_level[static_cast<int>(active_isa(family))]; }
};

}  // namespace cpu
}  // namespace fastiqa

// The levels compiled into this build: all three on x86-64 with GCC / clang, unless
// setup.py's FASTIQA_CPU_LEVELS left one out (it then defines FASTIQA_NO_AVX2 or
// FASTIQA_NO_AVX512 and does not compile csrc/cpu/*_<isa>.cpp); baseline always.
#if FASTIQA_X86_VARIANTS && !defined(FASTIQA_NO_AVX2)
#define FASTIQA_BUILT_AVX2 1
#define FASTIQA_AVX2_DECL(Table, FN) namespace avx2 { void FN(Table*); }
#define FASTIQA_AVX2_FN(FN) &avx2::FN
#else
#define FASTIQA_BUILT_AVX2 0
#define FASTIQA_AVX2_DECL(Table, FN)
#define FASTIQA_AVX2_FN(FN) nullptr
#endif
#if FASTIQA_X86_VARIANTS && !defined(FASTIQA_NO_AVX512)
#define FASTIQA_BUILT_AVX512 1
#define FASTIQA_AVX512_DECL(Table, FN) namespace avx512 { void FN(Table*); }
#define FASTIQA_AVX512_FN(FN) &avx512::FN
#else
#define FASTIQA_BUILT_AVX512 0
#define FASTIQA_AVX512_DECL(Table, FN)
#define FASTIQA_AVX512_FN(FN) nullptr
#endif

// Declares fastiqa::cpu::<isa>::FN(Table*) for every variant built, and defines
// fastiqa::cpu::FN##_table(): the Variants of Table (built once; a level not built
// takes baseline's entries, and supported_isas() never offers it).
#define FASTIQA_CPU_VARIANTS(Table, FN)                                                 \
  namespace baseline { void FN(Table*); }                                               \
  FASTIQA_AVX2_DECL(Table, FN)                                                          \
  FASTIQA_AVX512_DECL(Table, FN)                                                        \
  inline const Variants<Table>& FN##_table() {                                          \
    static const Variants<Table> v(#FN, &baseline::FN, FASTIQA_AVX2_FN(FN), FASTIQA_AVX512_FN(FN)); \
    return v;                                                                           \
  }                                                                                     \
  inline const int FN##_family = family_slot(#FN); /* listed before the first call */

// Forwards a registered op to the active level's table entry: FASTIQA_CPU_OP(table_fn, member).
namespace fastiqa {
namespace cpu {
template <typename Sig> struct Forward;
template <typename R, typename... Args> struct Forward<R (*)(Args...)> {
  template <typename Table, const Variants<Table>& (*Get)(), R (*Table::*M)(Args...)>
  static R call(Args... args) {
    return (Get().active().*M)(std::forward<Args>(args)...);
  }
};
}  // namespace cpu
}  // namespace fastiqa
#define FASTIQA_CPU_OP(Table, FN, member)                                                \
  (&::fastiqa::cpu::Forward<decltype(Table::member)>::template call<Table, &FN##_table, &Table::member>)

// Inside a variant translation unit: the namespace and target of FASTIQA_ISA_LEVEL.
#ifdef FASTIQA_ISA_LEVEL
#if FASTIQA_ISA_LEVEL == 2
#define FASTIQA_ISA_NS avx512
#define FASTIQA_ISA_TARGET "avx512f,avx512bw,avx512dq,avx512vl,avx512cd,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt"
#elif FASTIQA_ISA_LEVEL == 1
#define FASTIQA_ISA_NS avx2
#define FASTIQA_ISA_TARGET "avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt"
#else
#define FASTIQA_ISA_NS baseline
#endif

#define FASTIQA_PRAGMA_S(x) _Pragma(#x)
#define FASTIQA_PRAGMA(x) FASTIQA_PRAGMA_S(x)  // expands x first
#if defined(FASTIQA_ISA_TARGET) && defined(__clang__)
#define FASTIQA_ISA_BEGIN \
  FASTIQA_PRAGMA(clang attribute push(__attribute__((target(FASTIQA_ISA_TARGET))), apply_to = function))
#define FASTIQA_ISA_END FASTIQA_PRAGMA(clang attribute pop)
#elif defined(FASTIQA_ISA_TARGET)
#define FASTIQA_ISA_BEGIN \
  FASTIQA_PRAGMA(GCC push_options) FASTIQA_PRAGMA(GCC target(FASTIQA_ISA_TARGET))
#define FASTIQA_ISA_END FASTIQA_PRAGMA(GCC pop_options)
#else
#define FASTIQA_ISA_BEGIN
#define FASTIQA_ISA_END
#endif
#endif  // FASTIQA_ISA_LEVEL
