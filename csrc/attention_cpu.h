// CPU forward and backward of block-sparse ("intent-causal") attention.
//
// Framework-free: plain pointers and element strides in, nothing from pybind11 or torch. The
// Python module (bindings_cpu.cpp) and any C++ test call these directly.
//
// Semantics (the same as the CUDA module's):
//   out = softmax(scale * q k^T masked by the layout) v, per (batch, head);
//   lse[b,h,n] = natural-log log-sum-exp of the scaled visible scores of row n, -inf (and out row
//   = 0) for a row that sees no key. The backward recomputes the probabilities from lse and writes
//   dq, dk, dv completely and deterministically (no atomics, a fixed summation order).
#pragma once

#include <cstdint>

#include "aim/attention_args.h"
#include "aim/attention_layout.h"

namespace aim {
namespace cpu {

// Throws std::invalid_argument for an unknown dtype, head_dim outside 1..256, or a layout whose
// num_tokens / num_blocks disagree with shape.tokens.
void attention_forward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                       const StridedBHND& v, const StridedBHND& out, float* lse,
                       const LayoutView& layout);

// lse: the forward's (B,H,N) float32, contiguous. delta: (B,H,N) float32 workspace, contiguous;
// it is overwritten with rowsum(dout * out).
void attention_backward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                        const StridedBHND& v, const StridedBHND& out, const StridedBHND& dout,
                        const float* lse, const StridedBHND& dq, const StridedBHND& dk,
                        const StridedBHND& dv, float* delta, const LayoutView& layout);

// The kernel set bind_attention_ops (aim/native_api.h) binds: the CPU needs no stream and no dq
// workspace (dq is summed deterministically, without atomics).
struct AttentionKernels {
  static void forward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                      const StridedBHND& v, const StridedBHND& out, float* lse, const LayoutView& layout,
                      uintptr_t /*stream*/) {
    attention_forward(dtype, shape, q, k, v, out, lse, layout);
  }
  static void backward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                       const StridedBHND& v, const StridedBHND& out, const StridedBHND& dout, const float* lse,
                       const StridedBHND& dq, const StridedBHND& dk, const StridedBHND& dv, float* delta,
                       float* /*dq_accum*/, const LayoutView& layout, bool /*deterministic: always*/,
                       uintptr_t /*stream*/) {
    attention_backward(dtype, shape, q, k, v, out, dout, lse, dq, dk, dv, delta, layout);
  }
};

// The instruction set the kernels run with: "avx2" (AVX2+FMA+F16C, chosen at run time when the
// processor has it) or "generic" (portable C++). AIM_CPU_ISA=generic in the environment forces the
// portable kernels (read once, at the first call).
const char* isa_name();

// How the backward splits its work (a test hook; results are bitwise identical either way):
// 0 auto, 1 one task per (batch, head) computing dq, dk, dv together, 2 two passes (dk/dv per key
// block, then dq per query block), which has more parallelism for few heads.
void set_backward_schedule(int mode);

}  // namespace cpu
}  // namespace aim
