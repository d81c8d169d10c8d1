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

// Throws std::invalid_argument for an unknown dtype, head_dim outside 1..256, a layout whose
// num_tokens / num_blocks disagree with shape.tokens, or isa = kSpecialised on a processor
// without AVX2, FMA and F16C. `isa` picks the micro-kernels (see isa_name).
void attention_forward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                       const StridedBHND& v, const StridedBHND& out, float* lse,
                       const LayoutView& layout, KernelChoice isa);

// lse: the forward's (B,H,N) float32, contiguous. delta: (B,H,N) float32 workspace, contiguous;
// it is overwritten with rowsum(dout * out).
void attention_backward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                        const StridedBHND& v, const StridedBHND& out, const StridedBHND& dout,
                        const float* lse, const StridedBHND& dq, const StridedBHND& dk,
                        const StridedBHND& dv, float* delta, const LayoutView& layout, KernelChoice isa);

// The kernel set bind_attention_ops (aim/native_api.h) binds: the CPU needs no stream and no dq
// workspace (dq is summed deterministically, without atomics).
struct AttentionKernels {
  static void forward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                      const StridedBHND& v, const StridedBHND& out, float* lse, const LayoutView& layout,
                      KernelChoice isa, uintptr_t /*stream*/) {
    attention_forward(dtype, shape, q, k, v, out, lse, layout, isa);
  }
  static void backward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                       const StridedBHND& v, const StridedBHND& out, const StridedBHND& dout, const float* lse,
                       const StridedBHND& dq, const StridedBHND& dk, const StridedBHND& dv, float* delta,
                       float* /*dq_accum*/, const LayoutView& layout, bool /*deterministic: always*/,
                       KernelChoice isa, uintptr_t /*stream*/) {
    attention_backward(dtype, shape, q, k, v, out, dout, lse, dq, dk, dv, delta, layout, isa);
  }
};

// The instruction set a call with `isa` runs: "avx2" (AVX2+FMA+F16C) for kAuto where the processor
// has it and for kSpecialised (an std::invalid_argument where it has not), "generic" (portable
// C++) for kPortable and for kAuto elsewhere. The choice arrives with every call (Python reads
// AIM_CPU_ISA, python/aim/ops/switches.py); only the processor's features are probed once.
const char* isa_name(KernelChoice isa);

// How the backward splits its work (a test hook; results are bitwise identical either way):
// 0 auto, 1 one task per (batch, head) computing dq, dk, dv together, 2 two passes (dk/dv per key
// block, then dq per query block), which has more parallelism for few heads.
void set_backward_schedule(int mode);

}  // namespace cpu
}  // namespace aim
