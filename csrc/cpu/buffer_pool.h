// Reuse of large CPU output buffers (gradients, loss maps) between calls.
//
// A fresh multi-megabyte CPU tensor costs a page fault per 4 KiB page on first
// touch (PyTorch's CPU allocator keeps no cache): for an 8x3x256x256 float32
// gradient that is more time than the fused kernel itself. In a training loop
// the previous step's gradient buffer is dropped (zero_grad(set_to_none=True))
// before the next step needs one of the same shape, so a small pool hands it
// back. The pool keeps storages, not tensors (a tensor reference would make
// autograd copy the gradient instead of adopting it), and reuses a storage only
// when it holds the last reference: no tensor, view or other owner can see it.
// FASTIQA_CPU_BUFFER_POOL=0 turns the pool off; fastiqa_C::release_cpu_buffers()
// empties it.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>

namespace fastiqa {
namespace cpu {

// An uninitialised tensor with the shape, strides and dtype of `like` (dense).
at::Tensor pooled_empty_like(const at::Tensor& like);
// An uninitialised contiguous CPU tensor of `sizes` and `dtype`.
at::Tensor pooled_empty(at::IntArrayRef sizes, at::ScalarType dtype);
void release_buffers();

}  // namespace cpu
}  // namespace fastiqa
