// CUDA execution model on x86-64 with g++ (fastiqa's CUDA-on-CPU harness).
//
// Each CUDA thread is a fiber (own stack, ~10-instruction context switch below); the
// blocks of a launch run one after another; within a block the fibers run in turn
// until each reaches a barrier:
//   __syncthreads       block barrier; every live thread must reach the same call site
//                       (else "divergent barrier"), an exited thread makes it an error
//   __shfl_*_sync, wmma warp barrier with an exchange slot per lane (all 32 lanes)
// Static __shared__ variables live in one ELF section that is filled with 0xFF (NaN
// for every float type) before every block; dynamic shared memory is an exact-size
// heap buffer (ASan sees overflows); launch configurations are checked against the
// emulated GPU (compute capability, opt-in shared memory per block: set_gpu()).
// Under ThreadSanitizer the fibers are TSan fibers, switched without implied
// synchronisation, and each barrier is a release/acquire pair: a missing barrier
// shows up as a data race. Under AddressSanitizer the stack switches are announced.
// Faults the emulator sees itself (divergence, deadlock, bad WMMA ldm or alignment,
// __trap) print "cuda_emu: ..." and abort.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__SANITIZE_THREAD__)
#define FASTIQA_EMU_TSAN 1
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
#endif
// The emulator's own bookkeeping (current fiber, states) is shared by the scheduler and
// the fibers by construction: hidden from ThreadSanitizer, which checks the kernels.
#if FASTIQA_EMU_TSAN
#define FASTIQA_EMU_INTERNAL __attribute__((noinline, no_sanitize("thread")))
#else
#define FASTIQA_EMU_INTERNAL inline
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FASTIQA_EMU_ASAN 1
extern "C" {
void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old, size_t* size_old);
void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
}
#endif

// Saves the callee-saved registers on the current stack, stores the stack pointer in
// *save, loads `next` and restores the registers saved there (System V x86-64).
extern "C" void fastiqa_emu_switch(void** save, void* next);
asm(R"(
  .text
  .globl fastiqa_emu_switch
  .type fastiqa_emu_switch, @function
fastiqa_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size fastiqa_emu_switch, .-fastiqa_emu_switch
  .section .note.GNU-stack,"",@progbits
  .text
)");

extern "C" char __start_fastiqa_emu_shared[] __attribute__((weak));
extern "C" char __stop_fastiqa_emu_shared[] __attribute__((weak));

namespace fastiqa_emu {

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "cuda_emu: %s\n", what.c_str());
  std::fflush(stderr);
  std::abort();
}

// ------------------------------------------------------------------ emulated GPUs
struct Gpu {
  const char* name;
  int major, minor;
  int smem_optin;  // cudaDevAttrMaxSharedMemoryPerBlockOptin (bytes)
};
// The GPUs of setup.py's default arch list (CUDA programming guide, compute capabilities table).
inline const std::vector<Gpu>& gpus() {
  static const std::vector<Gpu> g = {
      {"sm_75", 7, 5, 64 * 1024},  {"sm_80", 8, 0, 163 * 1024}, {"sm_86", 8, 6, 99 * 1024},
      {"sm_89", 8, 9, 99 * 1024},  {"sm_90", 9, 0, 227 * 1024}, {"sm_100", 10, 0, 227 * 1024},
      {"sm_120", 12, 0, 99 * 1024}};
  return g;
}
constexpr int kDefaultSmem = 48 * 1024;  // dynamic shared memory allowed without the opt-in attribute

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

enum State : int { kReady, kAtBlockBarrier, kAtWarpBarrier, kDone };

struct Fiber {
  void* sp = nullptr;
  char* stack = nullptr;
  int tid = 0;
  State state = kReady;
  const char* file = "";
  int line = 0;
  unsigned block_gen = 0, warp_gen = 0;  // barriers passed (TSan: which sync object)
#if FASTIQA_EMU_TSAN
  void* tsan = nullptr;
#endif
};

constexpr size_t kStackBytes =
#if FASTIQA_EMU_ASAN || FASTIQA_EMU_TSAN
    512 * 1024;
#else
    128 * 1024;
#endif

struct Runtime {
  const Gpu* gpu = &gpus()[1];
  int last_error = 0;  // cudaError_t value
  std::map<const void*, int> max_dynamic_smem;
  // current launch
  Dim3 grid, block, block_idx;
  std::vector<Fiber> fibers;
  Fiber* cur = nullptr;
  void* sched_sp = nullptr;
  void* dyn_smem = nullptr;
  std::vector<unsigned char> warp_slots;  // 32 lanes x 8 words per warp
  std::vector<const void*> warp_ptrs;     // 32 lanes x 4 pointers per warp (WMMA operands)
  // TSan synchronisation objects: block start (scheduler -> fibers), block end (fibers ->
  // scheduler), and two per barrier kind, alternating by generation, so that a fiber
  // resuming from barrier g never sees what another fiber did after barrier g.
  char block_start = 0, block_end = 0, block_bar[2] = {0, 0};
  std::vector<char> warp_bar;  // 2 per warp
#if FASTIQA_EMU_TSAN
  void* sched_tsan = nullptr;
#endif
#if FASTIQA_EMU_ASAN
  void* fake_stack = nullptr;
  const void* sched_bottom = nullptr;
  size_t sched_size = 0;
#endif
  void (*entry)(void*) = nullptr;
  void* entry_arg = nullptr;
  unsigned long long vector_ops = 0;  // 16-byte global loads / stores (csrc/cuda/vec.cuh) since the request began
};

inline Runtime& rt() {
  static Runtime r;
  return r;
}

inline bool set_gpu(const std::string& name) {
  for (const Gpu& g : gpus())
    if (name == g.name) {
      rt().gpu = &g;
      return true;
    }
  return false;
}

// ------------------------------------------------------------------ fiber switching
FASTIQA_EMU_INTERNAL void switch_to_fiber(Fiber& f) {
  Runtime& r = rt();
  r.cur = &f;
#if FASTIQA_EMU_TSAN
  __tsan_switch_to_fiber(f.tsan, 1 /* __tsan_switch_to_fiber_no_sync */);
#endif
#if FASTIQA_EMU_ASAN
  __sanitizer_start_switch_fiber(&r.fake_stack, f.stack, kStackBytes);
#endif
  fastiqa_emu_switch(&r.sched_sp, f.sp);
#if FASTIQA_EMU_ASAN
  __sanitizer_finish_switch_fiber(r.fake_stack, nullptr, nullptr);
#endif
  r.cur = nullptr;
}

// From a fiber back to the scheduler (the fiber resumes here later unless it is done).
FASTIQA_EMU_INTERNAL void yield_to_scheduler() {
  Runtime& r = rt();
  Fiber* f = r.cur;
#if FASTIQA_EMU_TSAN
  __tsan_switch_to_fiber(r.sched_tsan, 1);
#endif
#if FASTIQA_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(f->state == kDone ? nullptr : &fake, r.sched_bottom, r.sched_size);
#endif
  fastiqa_emu_switch(&f->sp, r.sched_sp);
#if FASTIQA_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

FASTIQA_EMU_INTERNAL void fiber_main() {
  Runtime& r = rt();
#if FASTIQA_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &r.sched_bottom, &r.sched_size);
#endif
#if FASTIQA_EMU_TSAN
  __tsan_acquire(&r.block_start);
#endif
  r.entry(r.entry_arg);
#if FASTIQA_EMU_TSAN
  __tsan_release(&r.block_end);
#endif
  r.cur->state = kDone;
  yield_to_scheduler();
  fail("a finished fiber was resumed");
}

inline void init_fiber(Fiber& f) {
  if (!f.stack) f.stack = static_cast<char*>(std::malloc(kStackBytes));
#if FASTIQA_EMU_ASAN
  __asan_unpoison_memory_region(f.stack, kStackBytes);  // the previous thread's frames left redzones
#endif
  uintptr_t top = (reinterpret_cast<uintptr_t>(f.stack) + kStackBytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top);
  *--sp = nullptr;                                          // alignment slot: entry sees rsp % 16 == 8
  *--sp = reinterpret_cast<void*>(&fiber_main);             // return address of the first switch
  for (int i = 0; i < 6; ++i) *--sp = nullptr;              // rbp rbx r12 r13 r14 r15
  f.sp = sp;
  f.state = kReady;
  f.block_gen = f.warp_gen = 0;
#if FASTIQA_EMU_TSAN
  if (!f.tsan) f.tsan = __tsan_create_fiber(0);
#endif
}

// ------------------------------------------------------------------ barriers
inline std::string where(const Fiber& f) { return std::string(f.file) + ":" + std::to_string(f.line); }

// The current fiber waits in `state` at file:line until the scheduler releases it; under
// TSan the wait is a release / acquire on `sync` (the barrier's happens-before edge).
FASTIQA_EMU_INTERNAL void arrive(const char* file, int line, State state, void* sync, const char* what) {
  Runtime& r = rt();
  Fiber* f = r.cur;
  if (!f) fail(std::string(what) + " outside a kernel");
  f->file = file;
  f->line = line;
  f->state = state;
#if FASTIQA_EMU_TSAN
  __tsan_release(sync);
#endif
  yield_to_scheduler();
#if FASTIQA_EMU_TSAN
  __tsan_acquire(sync);
#endif
  (void)sync;
}

FASTIQA_EMU_INTERNAL void block_barrier(const char* file, int line) {
  Runtime& r = rt();
  if (!r.cur) fail("__syncthreads outside a kernel");
  arrive(file, line, kAtBlockBarrier, &r.block_bar[r.cur->block_gen++ & 1], "__syncthreads");
}

// All 32 lanes of the warp must arrive at the same warp-synchronous call site.
FASTIQA_EMU_INTERNAL void warp_barrier(const char* file, int line) {
  Runtime& r = rt();
  if (!r.cur) fail("warp-synchronous op outside a kernel");
  arrive(file, line, kAtWarpBarrier, &r.warp_bar[(r.cur->tid / 32) * 2 + (r.cur->warp_gen++ & 1)],
         "warp-synchronous op");
}

// One scheduling round is over: release a block barrier or warp barriers, or report
// divergence / deadlock. Returns false when every fiber is done.
FASTIQA_EMU_INTERNAL bool release_barriers() {
  Runtime& r = rt();
  const int n = static_cast<int>(r.block.x * r.block.y * r.block.z);
  int done = 0, at_block = 0;
  for (int i = 0; i < n; ++i) {
    done += r.fibers[i].state == kDone;
    at_block += r.fibers[i].state == kAtBlockBarrier;
  }
  if (done == n) return false;
  if (at_block == n) {
    for (int i = 1; i < n; ++i)
      if (r.fibers[i].file != r.fibers[0].file || r.fibers[i].line != r.fibers[0].line)
        fail("divergent barrier: thread 0 waits at __syncthreads " + where(r.fibers[0]) + ", thread " +
             std::to_string(i) + " at " + where(r.fibers[i]));
    for (int i = 0; i < n; ++i) r.fibers[i].state = kReady;
    return true;
  }
  bool released = false;
  for (int w = 0; w * 32 < n; ++w) {
    bool all = true;
    for (int l = 0; l < 32 && w * 32 + l < n; ++l) all &= r.fibers[w * 32 + l].state == kAtWarpBarrier;
    if (!all) continue;
    const Fiber& f0 = r.fibers[w * 32];
    for (int l = 1; l < 32 && w * 32 + l < n; ++l) {
      const Fiber& fl = r.fibers[w * 32 + l];
      if (fl.file != f0.file || fl.line != f0.line)
        fail("divergent warp-synchronous call: lane 0 of warp " + std::to_string(w) + " at " + where(f0) +
             ", lane " + std::to_string(l) + " at " + where(fl));
    }
    for (int l = 0; l < 32 && w * 32 + l < n; ++l) r.fibers[w * 32 + l].state = kReady;
    released = true;
  }
  if (released) return true;
  std::string msg = "deadlock or divergent barrier in block (" + std::to_string(r.block_idx.x) + "," +
                    std::to_string(r.block_idx.y) + "," + std::to_string(r.block_idx.z) + "):";
  int shown = 0;
  for (int i = 0; i < n && shown < 6; ++i) {
    const Fiber& f = r.fibers[i];
    if (i > 0 && f.state == r.fibers[i - 1].state && f.line == r.fibers[i - 1].line) continue;
    msg += " thread " + std::to_string(i) +
           (f.state == kDone ? " exited" : f.state == kAtBlockBarrier ? " at __syncthreads " + where(f)
                                                                      : " at warp op " + where(f));
    ++shown;
  }
  fail(msg);
}

__attribute__((no_sanitize("address", "thread"))) inline void poison_static_shared() {
  if (!__start_fastiqa_emu_shared) return;
  for (char* p = __start_fastiqa_emu_shared; p < __stop_fastiqa_emu_shared; ++p) *p = char(0xFF);
}

FASTIQA_EMU_INTERNAL void run_block(int nthreads, size_t smem) {
  Runtime& r = rt();
  poison_static_shared();
  r.dyn_smem = std::malloc(smem ? smem : 1);
  std::memset(r.dyn_smem, 0xFF, smem ? smem : 1);
  for (int i = 0; i < nthreads; ++i) {
    r.fibers[i].tid = i;
    init_fiber(r.fibers[i]);
  }
#if FASTIQA_EMU_TSAN
  __tsan_release(&r.block_start);
#endif
  do {
    for (int i = 0; i < nthreads; ++i)
      if (r.fibers[i].state == kReady) switch_to_fiber(r.fibers[i]);
  } while (release_barriers());
#if FASTIQA_EMU_TSAN
  __tsan_acquire(&r.block_end);
#endif
  std::free(r.dyn_smem);
  r.dyn_smem = nullptr;
}

// ------------------------------------------------------------------ launch
template <typename Tuple, typename K> struct Call {
  K kernel;
  Tuple args;
  static void run(void* self) {
    auto* c = static_cast<Call*>(self);
    Tuple copy = c->args;  // each thread gets its own copy of the parameters
    std::apply(c->kernel, copy);
  }
};

inline Dim3 to_dim(const ::dim3& d) { return Dim3{d.x, d.y, d.z}; }

// Runs kernel<<<grid, block, smem, stream>>>(args...) on the CPU; a launch-configuration
// fault sets the error that cudaGetLastError returns (as the CUDA runtime does).
template <typename... P, typename... Args>
void launch_kernel(void (*kernel)(P...), ::dim3 grid, ::dim3 block, size_t smem, void* /*stream*/,
                   Args&&... args) {
  Runtime& r = rt();
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
      grid.z > 65535 || grid.x > 2147483647u) {
    r.last_error = cudaErrorInvalidConfiguration;
    return;
  }
  auto it = r.max_dynamic_smem.find(reinterpret_cast<const void*>(kernel));
  const int allowed = it == r.max_dynamic_smem.end() ? kDefaultSmem : it->second;
  if (smem > static_cast<size_t>(allowed)) {
    r.last_error = cudaErrorInvalidValue;  // over the kernel's dynamic shared-memory limit
    return;
  }
  using Tuple = std::tuple<std::decay_t<P>...>;
  Call<Tuple, void (*)(P...)> call{kernel, Tuple(std::forward<Args>(args)...)};
  r.grid = to_dim(grid);
  r.block = to_dim(block);
  const int n = static_cast<int>(threads);
  if (r.fibers.size() < static_cast<size_t>(n)) r.fibers.resize(n);
  r.warp_slots.assign(((n + 31) / 32) * 32 * 8 * 8, 0);
  r.warp_ptrs.assign(((n + 31) / 32) * 32 * 4, nullptr);
  r.warp_bar.assign(((n + 31) / 32) * 2, 0);
#if FASTIQA_EMU_TSAN
  if (!r.sched_tsan) r.sched_tsan = __tsan_get_current_fiber();
#endif
  r.entry = &Call<Tuple, void (*)(P...)>::run;
  r.entry_arg = &call;
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        r.block_idx = Dim3{x, y, z};
        run_block(n, smem);
      }
}

FASTIQA_EMU_INTERNAL void* dynamic_shared() {
  if (!rt().cur) fail("dynamic shared memory outside a kernel");
  return rt().dyn_smem;
}

// A 16-byte vector load or store of csrc/cuda/vec.cuh: counted; a misaligned one is the
// fault a GPU reports ("misaligned address").
FASTIQA_EMU_INTERNAL void vector_access(const void* p, const char* what) {
  if (reinterpret_cast<uintptr_t>(p) & 15u)
    fail(std::string("misaligned 16-byte vector ") + what + " at " + std::to_string(reinterpret_cast<uintptr_t>(p)));
  ++rt().vector_ops;
}

FASTIQA_EMU_INTERNAL unsigned thread_linear() { return static_cast<unsigned>(rt().cur->tid); }
FASTIQA_EMU_INTERNAL Dim3 thread_idx() {
  const Runtime& r = rt();
  const unsigned t = static_cast<unsigned>(r.cur->tid);
  return Dim3{t % r.block.x, (t / r.block.x) % r.block.y, t / (r.block.x * r.block.y)};
}

// ------------------------------------------------------------------ warp shuffles
template <typename T> T shfl(T v, int src_of_lane_shift, int mode, const char* file, int line) {
  static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
  Runtime& r = rt();
  const int tid = static_cast<int>(thread_linear()), lane = tid & 31, warp = tid >> 5;
  unsigned char* slots = &r.warp_slots[warp * 32 * 8 * 8];
  std::memcpy(slots + lane * 8, &v, sizeof(T));
  warp_barrier(file, line);
  int src = lane;
  if (mode == 0) src = lane + src_of_lane_shift;        // down
  else if (mode == 1) src = lane - src_of_lane_shift;   // up
  else if (mode == 2) src = lane ^ src_of_lane_shift;   // xor
  else src = src_of_lane_shift & 31;                    // idx
  T out = v;
  if (src >= 0 && src < 32) std::memcpy(&out, slots + src * 8, sizeof(T));
  warp_barrier(file, line);
  return out;
}

}  // namespace fastiqa_emu
