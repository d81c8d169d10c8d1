// CPU kernels of the value-map ops (render and sample, forward and backward), OpenMP over
// (batch, frame, view) maps or (batch, frame) slabs. Framework-free: raw pointers, element strides; every number
// comes from aim/value_maps.h, the header the CUDA kernels use too.
//
// Inputs are contiguous: points (B, T, P, 3), point_mask (B, T, P) bytes (0/1), intrinsics
// (B, V, 3, 3), extrinsics (B, T, V, 4, 4), view boxes (V, 6) or null; outputs are contiguous:
// maps (B, T, V, H, W), values (B, T, P, V), valid (B, T, P, V) bytes. `dtype` is aim::kFloat32
// or aim::kFloat64 (aim/native_codes.h) for every floating tensor of a call. Deterministic: every
// output element is written by one thread in a fixed order.
#pragma once

#include <cstdint>

#include "aim/value_maps.h"

namespace aim {
namespace cpu {

struct ValueMapKernels {
  // out: (B, T, V, H, W), fully written.
  static void render(int dtype, const vmap::RenderShape& shape, uintptr_t points, uintptr_t point_mask,
                     uintptr_t intrinsics, uintptr_t extrinsics, const vmap::BlobParams& params, int combine,
                     uintptr_t out, uintptr_t stream);
  // grad_out: (B, T, V, H, W) contiguous, the gradient of `out`; grad_points: (B, T, P, 3) that the
  // caller zeroed, accumulated into.
  static void render_backward(int dtype, const vmap::RenderShape& shape, uintptr_t points, uintptr_t point_mask,
                              uintptr_t intrinsics, uintptr_t extrinsics, const vmap::BlobParams& params,
                              int combine, uintptr_t grad_out, uintptr_t grad_points, uintptr_t stream);
  // values, valid: (B, T, P, V), fully written (value 0 where invalid).
  static void sample(int dtype, const vmap::SampleShape& shape, const vmap::StridedMaps& maps, uintptr_t points,
                     uintptr_t intrinsics, uintptr_t extrinsics, uintptr_t view_boxes, uintptr_t values,
                     uintptr_t valid, uintptr_t stream);
  // grad_values: (B, T, P, V) contiguous. grad_maps: contiguous (B, T, Vm, H, W) that the caller
  // zeroed, accumulated into (0 to skip). grad_points: (B, T, P, 3), fully written (0 to skip).
  static void sample_backward(int dtype, const vmap::SampleShape& shape, const vmap::StridedMaps& maps,
                              uintptr_t points, uintptr_t intrinsics, uintptr_t extrinsics, uintptr_t view_boxes,
                              uintptr_t grad_values, uintptr_t grad_maps, uintptr_t grad_points, uintptr_t stream);
};

}  // namespace cpu
}  // namespace aim
