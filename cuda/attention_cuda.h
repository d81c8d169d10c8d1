// Launchers of the CUDA block-sparse attention kernels. Framework-free: plain pointers, element
// strides, the block map (device pointers) and a stream handle. Included by bindings_cuda.cpp
// (host compiler) and by the .cu files.
//
// Errors: std::invalid_argument for arguments the kernels do not support (dtype, head_dim, shape
// and layout disagreeing), std::runtime_error for a failed launch (cudaGetLastError's string).
// Nothing here synchronises the host or allocates device memory.
#pragma once

#include <cstdint>

#include "aim/attention_args.h"
#include "aim/attention_layout.h"

namespace aim {
namespace gpu {

// dtype: aim::kFloat16 or aim::kBFloat16 (aim/attention_args.h); kFloat32 is rejected.
// lse: float32 contiguous (B, H, N), natural-log log-sum-exp of the scaled scores (-inf for a row
// that sees no key, whose output row is then 0).
void attention_forward(int dtype, const AttentionShape& shape, StridedBHND q, StridedBHND k, StridedBHND v,
                       StridedBHND out, float* lse, const LayoutView& layout, uintptr_t stream);

// delta: float32 contiguous (B, H, N) workspace (filled here). dq_accum: float32 contiguous
// (B, H, N, D) workspace that the caller has zeroed, into which dQ is added with fp32 atomics
// (dq then varies in its last bits from run to run); with `deterministic` it is unused (may be
// null) and a separate pass computes dq in a fixed order instead (attention_dq_pass.cu).
// dq, dk, dv are written in full for rows < N. AIM_CUDA_BWD_KERNEL (auto, portable, sm90) picks
// the main kernel, as AIM_CUDA_FWD_KERNEL does the forward's.
void attention_backward(int dtype, const AttentionShape& shape, StridedBHND q, StridedBHND k, StridedBHND v,
                        StridedBHND out, StridedBHND dout, const float* lse, StridedBHND dq, StridedBHND dk,
                        StridedBHND dv, float* delta, float* dq_accum, const LayoutView& layout,
                        bool deterministic, uintptr_t stream);

// The kernel set bind_attention_ops (aim/native_api.h) binds.
struct AttentionKernels {
  static void forward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                      const StridedBHND& v, const StridedBHND& out, float* lse, const LayoutView& layout,
                      uintptr_t stream) {
    attention_forward(dtype, shape, q, k, v, out, lse, layout, stream);
  }
  static void backward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                       const StridedBHND& v, const StridedBHND& out, const StridedBHND& dout, const float* lse,
                       const StridedBHND& dq, const StridedBHND& dk, const StridedBHND& dv, float* delta,
                       float* dq_accum, const LayoutView& layout, bool deterministic, uintptr_t stream) {
    attention_backward(dtype, shape, q, k, v, out, dout, lse, dq, dk, dv, delta, dq_accum, layout, deterministic,
                       stream);
  }
};

}  // namespace gpu
}  // namespace aim
