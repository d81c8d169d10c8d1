// The arguments both attention kernel sets (CPU and CUDA) take besides the block map: the problem
// shape and strided (B, H, N, D) tensors as raw addresses. Framework-free, so the .cu files and
// the C++ kernels include it without pybind11 or torch.
#pragma once

#include <cstdint>

#include "aim/attention_layout.h"
#include "aim/native_codes.h"

namespace aim {

struct AttentionShape {
  int64_t batch;
  int64_t heads;
  int64_t tokens;
  int64_t head_dim;
  float scale;  // multiplies q.k before the softmax
};

// A (B, H, N, D) tensor as Python passes it: address and element strides, last dim contiguous.
struct StridedBHND {
  uintptr_t data;
  int64_t stride_b, stride_h, stride_n;

  template <typename T>
  TensorBHND<T> as() const {
    return TensorBHND<T>{reinterpret_cast<T*>(data), stride_b, stride_h, stride_n};
  }
};

}  // namespace aim
