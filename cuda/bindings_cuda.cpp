// Python module `_native_cuda`: raw device pointers and element strides in (see
// aim/native_api.h), kernels launched on the caller's stream (an integer cudaStream_t) with the
// GIL released. Compiled by the host compiler; links the CUDA runtime only. Importing the module
// makes no CUDA call. `has_sm90_kernels` says whether the build has the Hopper kernels that
// kernel=2 (sm90) asks for.
#include <pybind11/pybind11.h>

#include "aim/native_api.h"
#include "attention_cuda.h"
#include "aim/value_maps_api.h"
#include "value_maps_cuda.h"

PYBIND11_MODULE(_native_cuda, m) {
  m.doc() = "aim CUDA kernels: block-sparse attention (float16, bfloat16; head_dim 64, 128), value-map render and sample";
  aim::bind_attention_ops<aim::gpu::AttentionKernels>(m);
  m.attr("has_sm90_kernels") = aim::gpu::kHaveSm90Kernels;

  // Value-map ops (render, sample, sample backward): python/aim/ops/value_maps.py.
  aim::vmap::bind_value_map_ops<aim::gpu::ValueMapKernels>(m);
}
