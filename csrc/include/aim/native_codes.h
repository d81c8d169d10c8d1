// The integer codes Python passes to both native modules: element types and the attention kernel
// choice. One numbering for every op of both modules; python/aim/ops/_native.py holds the same
// tables (DTYPE_CODES, KERNEL_CODES) and tests/ops/test_native_constants.py checks them against
// this file. Framework-free, so the .cu files and the C++ kernels include it.
#pragma once

#include <stdexcept>
#include <string>

namespace aim {

// Element types. Attention takes float32 (CPU), float16 and bfloat16; the value-map ops take
// float32 and float64.
constexpr int kFloat32 = 0;
constexpr int kFloat16 = 1;  // IEEE binary16
constexpr int kBFloat16 = 2;
constexpr int kFloat64 = 3;

// Which attention kernel a call runs: the `kernel` argument of the modules' forward and backward.
// The native code never reads the environment; python/aim/ops/switches.py turns AIM_CPU_ISA,
// AIM_CUDA_FWD_KERNEL and AIM_CUDA_BWD_KERNEL into these codes.
//   kAuto: the specialised kernel where it was built and the hardware runs it, else the portable one;
//   kPortable: CPU: plain C++ ("generic"); CUDA: the mma.sync kernels of every architecture;
//   kSpecialised: CPU: AVX2+FMA+F16C ("avx2"); CUDA: the sm_90a kernels ("sm90"); an error where
//     that kernel is missing or cannot run the input.
enum class KernelChoice : int {
  kAuto = 0,
  kPortable = 1,
  kSpecialised = 2,
};

inline KernelChoice kernel_choice_from(int code) {
  if (code < static_cast<int>(KernelChoice::kAuto) || code > static_cast<int>(KernelChoice::kSpecialised)) {
    throw std::invalid_argument("unknown kernel choice code " + std::to_string(code) +
                                " (0 auto, 1 portable, 2 specialised)");
  }
  return static_cast<KernelChoice>(code);
}

}  // namespace aim
