// Launchers that attention_forward and attention_backward call across files: the Hopper (sm_90a)
// kernels (attention_fwd_sm90.cu, attention_bwd_sm90.cu; built only when the architecture list has
// a 90 entry, which defines AIM_HAVE_SM90 for the rest of the module, and callers guard their
// calls with it) and the deterministic dQ pass (attention_dq_pass.cu, every architecture).
#pragma once

#include <cuda_runtime.h>

#include "launch_common.cuh"

namespace aim {
namespace gpu {

// The Hopper forward; called after check_arguments, for B, H, N > 0.
void attention_forward_sm90(int dtype, const AttentionCall& call, cudaStream_t stream);

// The Hopper backward's main kernel (dK, dV, and dQ added into call.dq_accum unless that is null),
// after the delta kernel has run. Returns false, having launched nothing, when the inputs cannot
// be described by TMA tensor maps (see encode_bhnd there); `required` turns that into an
// std::invalid_argument naming the reason.
bool attention_backward_sm90(int dtype, const AttentionCall& call, bool required, cudaStream_t stream);

// dq = scale * dS K, computed per query block in a fixed order (bitwise reproducible), for the
// deterministic backward; after the delta kernel, instead of dQ atomics.
void attention_dq_pass(int dtype, const AttentionCall& call, cudaStream_t stream);

}  // namespace gpu
}  // namespace aim
