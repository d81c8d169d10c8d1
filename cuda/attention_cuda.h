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

// Whether this module has the Hopper (sm_90a) kernels: AIM_HAVE_SM90 is defined for the whole
// module when the architecture list has a 90 entry (cmake/AimCuda.cmake).
#if defined(AIM_HAVE_SM90)
constexpr bool kHaveSm90Kernels = true;
#else
constexpr bool kHaveSm90Kernels = false;
#endif

// dtype: aim::kFloat16 or aim::kBFloat16 (aim/native_codes.h); kFloat32 is rejected.
// lse: float32 contiguous (B, H, N), natural-log log-sum-exp of the scaled scores (-inf for a row
// that sees no key, whose output row is then 0). `kernel` (aim::KernelChoice: auto, portable,
// sm90) picks the Hopper or the portable kernel.
void attention_forward(int dtype, const AttentionShape& shape, StridedBHND q, StridedBHND k, StridedBHND v,
                       StridedBHND out, float* lse, const LayoutView& layout, KernelChoice kernel,
                       uintptr_t stream);

// delta: float32 contiguous (B, H, N) workspace (filled here). dq_accum: float32 contiguous
// (B, H, N, D) workspace that the caller has zeroed, into which dQ is added with fp32 atomics
// (dq then varies in its last bits from run to run); with `deterministic` it is unused (may be
// null) and a separate pass computes dq in a fixed order instead (attention_dq_pass.cu).
// dq, dk, dv are written in full for rows < N. `kernel` (auto, portable, sm90) picks the main
// kernel, as the forward's does.
void attention_backward(int dtype, const AttentionShape& shape, StridedBHND q, StridedBHND k, StridedBHND v,
                        StridedBHND out, StridedBHND dout, const float* lse, StridedBHND dq, StridedBHND dk,
                        StridedBHND dv, float* delta, float* dq_accum, const LayoutView& layout,
                        bool deterministic, KernelChoice kernel, uintptr_t stream);

// The kernel set bind_attention_ops (aim/native_api.h) binds.
struct AttentionKernels {
  static void forward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                      const StridedBHND& v, const StridedBHND& out, float* lse, const LayoutView& layout,
                      KernelChoice kernel, uintptr_t stream) {
    attention_forward(dtype, shape, q, k, v, out, lse, layout, kernel, stream);
  }
  static void backward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                       const StridedBHND& v, const StridedBHND& out, const StridedBHND& dout, const float* lse,
                       const StridedBHND& dq, const StridedBHND& dk, const StridedBHND& dv, float* delta,
                       float* dq_accum, const LayoutView& layout, bool deterministic, KernelChoice kernel,
                       uintptr_t stream) {
    attention_backward(dtype, shape, q, k, v, out, dout, lse, dq, dk, dv, delta, dq_accum, layout, deterministic,
                       kernel, stream);
  }
};

}  // namespace gpu
}  // namespace aim
