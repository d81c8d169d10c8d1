// Python module `_native_cpu`: raw pointers and strides in (see aim/native_api.h), the kernels of
// attention_cpu.cpp run with the GIL released. `stream` is accepted for parity with `_native_cuda`
// and ignored; so is `dq_accum` (the CPU backward needs no float32 dq accumulator from Python).
// `kernel` picks the instruction set (aim::KernelChoice: auto, generic, avx2).
#include <pybind11/pybind11.h>

#include "aim/native_api.h"
#include "attention_cpu.h"
#include "aim/value_maps_api.h"
#include "value_maps_cpu.h"

PYBIND11_MODULE(_native_cpu, m) {
  namespace py = pybind11;
  m.doc() = "aim CPU kernels: block-sparse attention, value-map render and sample";
  aim::bind_attention_ops<aim::cpu::AttentionKernels>(m);
  m.def(
      "isa", [](int kernel) { return aim::cpu::isa_name(aim::kernel_choice_from(kernel)); }, py::arg("kernel") = 0,
      "Instruction set a call with this kernel choice runs: 'avx2' or 'generic' (0 auto, 1 generic, 2 avx2).");
  m.def("_set_backward_schedule", &aim::cpu::set_backward_schedule, py::arg("mode"),
        "Test hook: 0 auto, 1 one task per (batch, head), 2 two passes. Results are identical.");

  // Value-map ops (render, sample, sample backward): python/aim/ops/value_maps.py.
  aim::vmap::bind_value_map_ops<aim::cpu::ValueMapKernels>(m);
}
