// Python entry points of the attention op, the same for both native modules: each module calls
// bind_attention_ops<Kernels>(m) with its kernel set (aim::cpu::AttentionKernels or
// aim::gpu::AttentionKernels, which have identical static signatures). The modules never see a
// framework tensor: Python passes raw pointers, element strides, a stream handle and the kernel
// choice (see python/aim/ops/_native.py); they read no environment variable. The kernels run with
// the GIL released.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "aim/attention_args.h"
#include "aim/attention_layout.h"

namespace aim {

// The attention kernels take kFloat32, kFloat16 and kBFloat16 (aim/native_codes.h).
inline int dtype_from(int code) {
  if (code != kFloat32 && code != kFloat16 && code != kBFloat16) {
    throw std::invalid_argument("attention: unsupported dtype code " + std::to_string(code) +
                                " (float32, float16 or bfloat16)");
  }
  return code;
}

// (ptr, stride_b, stride_h, stride_n), strides in elements.
inline StridedBHND strided_from(const pybind11::tuple& t, const char* name) {
  if (t.size() != 4) {
    throw std::invalid_argument(std::string(name) + ": expected (ptr, stride_b, stride_h, stride_n)");
  }
  return StridedBHND{t[0].cast<uintptr_t>(), t[1].cast<int64_t>(), t[2].cast<int64_t>(), t[3].cast<int64_t>()};
}

// (B, H, N, D, scale)
inline AttentionShape shape_from(const pybind11::tuple& t) {
  if (t.size() != 5) throw std::invalid_argument("shape: expected (B, H, N, D, scale)");
  return AttentionShape{t[0].cast<int64_t>(), t[1].cast<int64_t>(), t[2].cast<int64_t>(), t[3].cast<int64_t>(),
                        t[4].cast<float>()};
}

// layout = (num_tokens, num_blocks, q_ptr, q_idx, q_partial, k_ptr, k_idx, k_partial, masks)
inline LayoutView layout_from(const pybind11::tuple& t) {
  if (t.size() != 9) throw std::invalid_argument("layout: expected a 9-tuple");
  auto p32 = [&](int i) { return reinterpret_cast<const int32_t*>(t[i].cast<uintptr_t>()); };
  LayoutView view;
  view.num_tokens = t[0].cast<int64_t>();
  view.num_blocks = t[1].cast<int32_t>();
  view.by_query = BlockList{p32(2), p32(3), p32(4)};
  view.by_key = BlockList{p32(5), p32(6), p32(7)};
  view.masks = reinterpret_cast<const uint32_t*>(t[8].cast<uintptr_t>());
  return view;
}

template <typename Kernels>
void bind_attention_ops(pybind11::module_& m) {
  namespace py = pybind11;
  m.def(
      "forward",
      [](int dtype, const py::tuple& shape, const py::tuple& q, const py::tuple& k, const py::tuple& v,
         const py::tuple& out, uintptr_t lse, const py::tuple& layout, uintptr_t stream, int kernel) {
        const int code = dtype_from(dtype);
        const KernelChoice choice = kernel_choice_from(kernel);
        const AttentionShape s = shape_from(shape);
        const StridedBHND tq = strided_from(q, "q"), tk = strided_from(k, "k"), tv = strided_from(v, "v"),
                          to = strided_from(out, "out");
        const LayoutView view = layout_from(layout);
        py::gil_scoped_release release;
        Kernels::forward(code, s, tq, tk, tv, to, reinterpret_cast<float*>(lse), view, choice, stream);
      },
      py::arg("dtype"), py::arg("shape"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("lse"),
      py::arg("layout"), py::arg("stream"), py::arg("kernel") = 0,
      "out = softmax(scale q k^T, block-sparse mask) v; writes out and lse (B,H,N float32, natural log). "
      "kernel: 0 auto, 1 portable, 2 specialised (aim/native_codes.h).");
  m.def(
      "backward",
      [](int dtype, const py::tuple& shape, const py::tuple& q, const py::tuple& k, const py::tuple& v,
         const py::tuple& out, const py::tuple& dout, uintptr_t lse, const py::tuple& dq, const py::tuple& dk,
         const py::tuple& dv, uintptr_t delta, uintptr_t dq_accum, const py::tuple& layout, uintptr_t stream,
         bool deterministic, int kernel) {
        const int code = dtype_from(dtype);
        const KernelChoice choice = kernel_choice_from(kernel);
        const AttentionShape s = shape_from(shape);
        const StridedBHND tq = strided_from(q, "q"), tk = strided_from(k, "k"), tv = strided_from(v, "v"),
                          to = strided_from(out, "out"), tdo = strided_from(dout, "dout"),
                          tdq = strided_from(dq, "dq"), tdk = strided_from(dk, "dk"), tdv = strided_from(dv, "dv");
        const LayoutView view = layout_from(layout);
        py::gil_scoped_release release;
        Kernels::backward(code, s, tq, tk, tv, to, tdo, reinterpret_cast<const float*>(lse), tdq, tdk, tdv,
                          reinterpret_cast<float*>(delta), reinterpret_cast<float*>(dq_accum), view, deterministic,
                          choice, stream);
      },
      py::arg("dtype"), py::arg("shape"), py::arg("q"), py::arg("k"), py::arg("v"), py::arg("out"), py::arg("dout"),
      py::arg("lse"), py::arg("dq"), py::arg("dk"), py::arg("dv"), py::arg("delta"), py::arg("dq_accum"),
      py::arg("layout"), py::arg("stream"), py::arg("deterministic") = false, py::arg("kernel") = 0,
      "Writes dq, dk, dv. delta (B,H,N float32) is workspace; dq_accum (B,H,N,D float32, zeroed by the caller) "
      "is workspace of the CUDA kernels, which add dq into it with fp32 atomics (not bitwise reproducible) "
      "unless deterministic=True (then a separate fixed-order pass computes dq and dq_accum may be 0); "
      "ignored on CPU, whose backward is always deterministic. kernel: as forward's.");
}

}  // namespace aim
