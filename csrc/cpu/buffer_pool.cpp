// See buffer_pool.h.
#include "buffer_pool.h"

#include <ATen/ops/empty.h>
#include <c10/core/TensorImpl.h>
#include <c10/core/ScalarTypeToTypeMeta.h>
#include <c10/util/accumulate.h>
#include <torch/library.h>

#include <algorithm>
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

at::Tensor tensor_on(const c10::Storage& storage, at::IntArrayRef sizes, at::IntArrayRef strides,
                     caffe2::TypeMeta dtype) {
  at::Tensor t = at::detail::make_tensor<c10::TensorImpl>(
      c10::Storage(storage), c10::DispatchKeySet(c10::DispatchKey::CPU), dtype);
  t.unsafeGetTensorImpl()->set_sizes_and_strides(sizes, strides);
  return t;
}

// A storage of `bytes` from the pool (one it alone holds), or `fresh()`'s, kept for later.
template <typename Fresh>
at::Tensor from_pool(int64_t bytes, at::IntArrayRef sizes, at::IntArrayRef strides, caffe2::TypeMeta dtype,
                     Fresh fresh_tensor) {
  std::lock_guard<std::mutex> lock(pool_mutex);
  auto& slots = pool();
  for (auto& s : slots) {
    if (static_cast<int64_t>(s.nbytes()) == bytes && unobserved(s)) return tensor_on(s, sizes, strides, dtype);
  }
  at::Tensor fresh = fresh_tensor();
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

}  // namespace

at::Tensor pooled_empty_like(const at::Tensor& like) {
  const int64_t bytes = like.numel() * static_cast<int64_t>(like.element_size());
  if (!pool_enabled() || bytes < kMinBytes || !like.is_non_overlapping_and_dense()) {
    return at::empty_like(like);
  }
  if (like.device().type() != c10::DeviceType::CPU) return at::empty_like(like);
  return from_pool(bytes, like.sizes(), like.strides(), like.dtype(), [&] { return at::empty_like(like); });
}

at::Tensor pooled_empty(at::IntArrayRef sizes, at::ScalarType dtype) {
  const auto options = at::TensorOptions().dtype(dtype).device(c10::DeviceType::CPU);
  const int64_t bytes = c10::multiply_integers(sizes) * static_cast<int64_t>(c10::elementSize(dtype));
  if (!pool_enabled() || bytes < kMinBytes) return at::empty(sizes, options);
  std::vector<int64_t> strides(sizes.size(), 1);
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * std::max<int64_t>(sizes[d + 1], 1);
  return from_pool(bytes, sizes, strides, c10::scalarTypeToTypeMeta(dtype), [&] { return at::empty(sizes, options); });
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
