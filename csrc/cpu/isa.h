// Run-time choice of the CPU vector ISA for the hot loops.
// A function marked FASTIQA_CPU_CLONES is compiled three times (AVX-512F, AVX2,
// baseline x86-64) and the dynamic loader picks the best one this CPU and OS
// support (GCC function multiversioning, resolved once through an ifunc), so the
// same binary is fast on new CPUs and never executes an unsupported instruction
// on old ones. The loops are written lane-blocked (kLanes independent
// accumulators) so the compiler vectorises them without reassociating sums:
// results are bitwise reproducible for a given ISA and thread count.
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FASTIQA_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FASTIQA_CPU_CLONES
#endif

namespace fastiqa {
namespace cpu {

constexpr int kLanes = 16;

// Name of the clone the loader picks on this machine.
inline const char* isa_name() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512f";
  if (__builtin_cpu_supports("avx2")) return "avx2";
  return "x86-64 baseline (sse2)";
#else
  return "generic (compiler autovectorisation, no run-time dispatch)";
#endif
}

}  // namespace cpu
}  // namespace fastiqa
