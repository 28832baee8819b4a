// The accumulator dtype rule, once for every kernel's torch side: float64 inputs
// accumulate (and return statistics, weights, Gram matrices) in float64, every
// other floating dtype (float32, float16, bfloat16) in float32. The type-level
// form of the same rule for the CPU loops is fastiqa::cpu::AccOf (csrc/cpu/convert.h).
#pragma once

#include <ATen/core/Tensor.h>

namespace fastiqa {
namespace host {

inline at::ScalarType acc_dtype(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }
inline at::ScalarType acc_dtype(const at::Tensor& t) { return acc_dtype(t.scalar_type()); }

}  // namespace host
}  // namespace fastiqa
