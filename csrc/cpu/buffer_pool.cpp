// See buffer_pool.h.
#include "buffer_pool.h"

#include <c10/core/TensorImpl.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

namespace fastiqa {
namespace cpu {
namespace {

constexpr size_t kSlots = 6;
constexpr int64_t kMinBytes = 1 << 20;  // below this a fresh allocation is cheap

std::mutex pool_mutex;
std::vector<c10::Storage>& pool() {
  static std::vector<c10::Storage> slots;
  return slots;
}

bool pool_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("FASTIQA_CPU_BUFFER_POOL");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

bool unobserved(const c10::Storage& s) { return s.use_count() == 1; }

at::Tensor tensor_on(const c10::Storage& storage, const at::Tensor& like) {
  at::Tensor t = at::detail::make_tensor<c10::TensorImpl>(
      c10::Storage(storage), c10::DispatchKeySet(c10::DispatchKey::CPU), like.dtype());
  t.unsafeGetTensorImpl()->set_sizes_and_strides(like.sizes(), like.strides());
  return t;
}

}  // namespace

at::Tensor pooled_empty_like(const at::Tensor& like) {
  const int64_t bytes = like.numel() * static_cast<int64_t>(like.element_size());
  if (!pool_enabled() || bytes < kMinBytes || !like.is_non_overlapping_and_dense()) {
    return at::empty_like(like);
  }
  if (like.device().type() != c10::DeviceType::CPU) return at::empty_like(like);
  std::lock_guard<std::mutex> lock(pool_mutex);
  auto& slots = pool();
  for (auto& s : slots) {
    if (static_cast<int64_t>(s.nbytes()) == bytes && unobserved(s)) return tensor_on(s, like);
  }
  at::Tensor fresh = at::empty_like(like);
  // replace an unobserved slot, or the oldest one once the pool is full
  for (auto& s : slots) {
    if (unobserved(s)) {
      s = fresh.storage();
      return fresh;
    }
  }
  if (slots.size() >= kSlots) slots.erase(slots.begin());
  slots.push_back(fresh.storage());
  return fresh;
}

void release_buffers() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  pool().clear();
}

}  // namespace cpu
}  // namespace fastiqa

TORCH_LIBRARY_IMPL(fastiqa_C, CompositeExplicitAutograd, m) {
  m.impl("release_cpu_buffers", [] { fastiqa::cpu::release_buffers(); });
}
