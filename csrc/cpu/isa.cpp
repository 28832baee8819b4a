// Choice of the CPU ISA level (see isa.h) and the ops that report and switch it.
#include "isa.h"

#include <c10/util/Exception.h>
#include <torch/library.h>

#include <atomic>
#if FASTIQA_X86_VARIANTS
#include <cpuid.h>
#endif
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

namespace fastiqa {
namespace cpu {
namespace {

constexpr const char* kEnv = "FASTIQA_CPU_ISA";

#if FASTIQA_X86_VARIANTS
// CPUID bit (leaf, subleaf, register 0..3 = eax..edx): for the features that not every
// compiler's __builtin_cpu_supports names (clang 14 lacks "f16c" and "lzcnt").
bool cpuid_bit(unsigned leaf, unsigned sub, int reg, int bit) {
  unsigned r[4] = {0, 0, 0, 0};
  if (!__get_cpuid_count(leaf, sub, &r[0], &r[1], &r[2], &r[3])) return false;
  return (r[reg] >> bit) & 1u;
}
#endif

bool cpu_has(Isa isa) {
#if FASTIQA_X86_VARIANTS
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512cd") && cpu_has(Isa::kAvx2);
    case Isa::kAvx2:
      // avx2 also means the OS saves the AVX state (the builtin checks XGETBV)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
             __builtin_cpu_supports("popcnt") && cpuid_bit(1, 0, 2, 29) /* F16C */ &&
             cpuid_bit(0x80000001u, 0, 2, 5) /* LZCNT (ABM) */;
    case Isa::kBaseline:
      return true;
  }
  return false;
#else
  return isa == Isa::kBaseline;
#endif
}

// compiled into this extension (isa.h: FASTIQA_CPU_LEVELS of setup.py may leave levels out)
bool built(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return FASTIQA_BUILT_AVX512;
    case Isa::kAvx2: return FASTIQA_BUILT_AVX2;
    case Isa::kBaseline: break;
  }
  return true;
}

std::string joined(const std::vector<Isa>& v) {
  std::string s;
  for (Isa i : v) s += (s.empty() ? "" : ", ") + std::string(isa_label(i));
  return s;
}

// name -> level, with the errors the variable and the op share
Isa parse(const std::string& name, const char* source) {
  const Isa all[] = {Isa::kAvx512, Isa::kAvx2, Isa::kBaseline};
  for (Isa i : all) {
    if (name != isa_label(i)) continue;
    TORCH_CHECK(built(i), source, "=", name, ": this extension was built without the ", name,
                " level (FASTIQA_CPU_LEVELS at build time); supported here: ", joined(supported_isas()));
    TORCH_CHECK(cpu_has(i), source, "=", name, ": this CPU (or this build",
                FASTIQA_X86_VARIANTS ? "" : ", which has no x86 variants", ") does not support ", name,
                "; supported here: ", joined(supported_isas()));
    return i;
  }
  TORCH_CHECK(false, source, "=", name, ": unknown CPU ISA level; expected one of avx512, avx2, baseline");
  return Isa::kBaseline;
}

std::atomic<int> chosen{-1};     // the process level; -1 = not decided yet
std::atomic<bool> forced{false};  // chosen came from FASTIQA_CPU_ISA or cpu_isa_select
std::mutex choose_mutex;

// The kernel families (one per kernel table) and their own levels (-1 = the process level).
constexpr int kMaxFamilies = 16;
struct Families {
  std::mutex mutex;
  std::vector<std::string> names;
  std::atomic<int> level[kMaxFamilies];
  Families() {
    for (auto& l : level) l.store(-1);
  }
};
Families& families() {
  static Families f;
  return f;
}

int find_family(const std::string& name) {
  Families& f = families();
  std::lock_guard<std::mutex> lock(f.mutex);
  for (size_t i = 0; i < f.names.size(); ++i)
    if (f.names[i] == name) return static_cast<int>(i);
  std::string known;
  for (const auto& n : f.names) known += (known.empty() ? "" : ", ") + n;
  TORCH_CHECK(false, "fastiqa_C::cpu_isa_select_family: family=", name, ": unknown kernel family; known: ", known);
  return -1;
}

}  // namespace

const char* isa_label(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    case Isa::kBaseline: break;
  }
  return "baseline";
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa i : {Isa::kAvx512, Isa::kAvx2, Isa::kBaseline})
    if (built(i) && cpu_has(i)) out.push_back(i);
  return out;
}

Isa active_isa() {
  int level = chosen.load(std::memory_order_acquire);
  if (level >= 0) return static_cast<Isa>(level);
  std::lock_guard<std::mutex> lock(choose_mutex);
  level = chosen.load(std::memory_order_relaxed);
  if (level >= 0) return static_cast<Isa>(level);
  const char* env = std::getenv(kEnv);
  // an invalid variable throws here, on every use, until it is fixed or overridden
  const bool from_env = env && *env;
  const Isa isa = from_env ? parse(env, kEnv) : supported_isas().front();
  forced.store(from_env, std::memory_order_relaxed);
  chosen.store(static_cast<int>(isa), std::memory_order_release);
  return isa;
}

void select_isa(const std::string& name) {
  std::lock_guard<std::mutex> lock(choose_mutex);
  if (name == "auto") {  // decided again on next use: FASTIQA_CPU_ISA, else the best
    forced.store(false, std::memory_order_relaxed);
    chosen.store(-1, std::memory_order_release);
    return;
  }
  const Isa isa = parse(name, "fastiqa_C::cpu_isa_select: level");
  forced.store(true, std::memory_order_relaxed);
  chosen.store(static_cast<int>(isa), std::memory_order_release);
}

bool isa_forced() {
  active_isa();  // reads FASTIQA_CPU_ISA if nothing was decided yet
  return forced.load(std::memory_order_relaxed);
}

int family_slot(const char* table_name) {
  std::string name(table_name);
  const std::string suffix = "_kernels";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    name.resize(name.size() - suffix.size());
  Families& f = families();
  std::lock_guard<std::mutex> lock(f.mutex);
  for (size_t i = 0; i < f.names.size(); ++i)
    if (f.names[i] == name) return static_cast<int>(i);
  TORCH_CHECK(f.names.size() < static_cast<size_t>(kMaxFamilies), "fastiqa: more than ", kMaxFamilies,
              " CPU kernel families");
  f.names.push_back(name);
  return static_cast<int>(f.names.size()) - 1;
}

Isa active_isa(int family) {
  const Isa process = active_isa();
  if (forced.load(std::memory_order_relaxed) || family < 0) return process;
  const int own = families().level[family].load(std::memory_order_relaxed);
  return own >= 0 ? static_cast<Isa>(own) : process;
}

}  // namespace cpu
}  // namespace fastiqa

TORCH_LIBRARY_FRAGMENT(fastiqa_C, m) {
  // the CPU ISA level the kernels use ("avx512", "avx2" or "baseline"; baseline is
  // NEON on aarch64); raises when FASTIQA_CPU_ISA asks for one this CPU lacks
  m.def("cpu_isa() -> str", [] { return std::string(fastiqa::cpu::isa_label(fastiqa::cpu::active_isa())); });
  // the levels built into this extension and supported by this CPU, best first
  m.def("cpu_isa_available() -> str[]", [] {
    std::vector<std::string> out;
    for (auto i : fastiqa::cpu::supported_isas()) out.emplace_back(fastiqa::cpu::isa_label(i));
    return out;
  });
  // switches the level for this process (tests, benchmarks); returns the previous one.
  // "auto" (also returned when no level was forced) lets FASTIQA_CPU_ISA, else the
  // families' own levels and the best level, decide again
  m.def("cpu_isa_select(str level) -> str", [](const std::string& level) {
    std::string previous;
    try {
      previous = fastiqa::cpu::isa_forced() ? fastiqa::cpu::isa_label(fastiqa::cpu::active_isa()) : "auto";
    } catch (const c10::Error&) {
      previous = "";  // FASTIQA_CPU_ISA was invalid: nothing was in use
    }
    fastiqa::cpu::select_isa(level);
    return previous;
  });
  // true when FASTIQA_CPU_ISA or cpu_isa_select fixes the level of every family
  m.def("cpu_isa_forced() -> bool", [] { return fastiqa::cpu::isa_forced(); });
  // the kernel families of this build ("pixel", "psnr", "ssim", "gram", ...)
  m.def("cpu_isa_families() -> str[]", [] {
    auto& f = fastiqa::cpu::families();
    std::lock_guard<std::mutex> lock(f.mutex);
    return f.names;
  });
  // the level a family uses now
  m.def("cpu_isa_family(str family) -> str", [](const std::string& family) {
    return std::string(fastiqa::cpu::isa_label(fastiqa::cpu::active_isa(fastiqa::cpu::find_family(family))));
  });
  // sets a family's own level ("auto": the process level); returns the previous setting.
  // It counts only while no level is forced for the whole process
  m.def("cpu_isa_select_family(str family, str level) -> str", [](const std::string& family,
                                                                   const std::string& level) {
    const int slot = fastiqa::cpu::find_family(family);
    const int value = level == "auto" ? -1
        : static_cast<int>(fastiqa::cpu::parse(level, "fastiqa_C::cpu_isa_select_family: level"));
    const int before = fastiqa::cpu::families().level[slot].exchange(value);
    return std::string(before < 0 ? "auto" : fastiqa::cpu::isa_label(static_cast<fastiqa::cpu::Isa>(before)));
  });
}
