// Host-side helpers shared by every attention launcher (portable and Hopper, forward and backward):
// argument checks, the one parameter struct the kernels take, the dtype x head_dim dispatch, the
// choice between the portable and the Hopper kernels (made by the caller: nothing here reads the
// environment), launch error checks and the dynamic shared-memory opt-in.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "aim/attention_args.h"
#include "aim/attention_layout.h"
#include "attention_cuda.h"

namespace aim {
namespace gpu {

// Shared-memory row pitch (in 16-bit elements) of a tile with `cols` columns: +8 elements
// (16 bytes) per row, so the 8 row addresses of one ldmatrix 8x8 matrix (and of a 16-byte cp.async
// wave) fall in 8 different 16-byte bank groups: (cols + 8) * 2 bytes is an odd multiple of 16
// for cols = 64 and 128.
constexpr int padded_pitch(int cols) { return cols + 8; }

inline void check_arguments(int dtype, const AttentionShape& shape, const LayoutView& layout) {
  if (dtype == kFloat32) throw std::invalid_argument("CUDA attention supports float16 and bfloat16");
  if (dtype != kFloat16 && dtype != kBFloat16) {
    throw std::invalid_argument("CUDA attention: unknown dtype code " + std::to_string(dtype));
  }
  if (shape.head_dim != 64 && shape.head_dim != 128) {
    throw std::invalid_argument("CUDA attention supports head_dim 64 or 128, got head_dim=" +
                                std::to_string(shape.head_dim));
  }
  if (shape.batch < 0 || shape.heads < 0 || shape.tokens < 0) {
    throw std::invalid_argument("CUDA attention: negative batch, heads or tokens");
  }
  if (shape.batch > 65535 || shape.heads > 65535) {
    throw std::invalid_argument("CUDA attention: batch and heads must each be at most 65535");
  }
  if (layout.num_tokens != shape.tokens) {
    throw std::invalid_argument("CUDA attention: layout was built for " + std::to_string(layout.num_tokens) +
                                " tokens, inputs have " + std::to_string(shape.tokens));
  }
  const int64_t blocks = (shape.tokens + kLayoutBlock - 1) / kLayoutBlock;
  if (layout.num_blocks != blocks) {
    throw std::invalid_argument("CUDA attention: layout has " + std::to_string(layout.num_blocks) +
                                " blocks, expected " + std::to_string(blocks));
  }
}

// Everything a launcher was given, before the element type is known. The forward leaves the
// backward's fields empty.
struct AttentionCall {
  AttentionShape shape;
  StridedBHND q, k, v, out;
  float* lse;
  LayoutView layout;
  StridedBHND dout{}, dq{}, dk{}, dv{};
  float* delta = nullptr;
  float* dq_accum = nullptr;  // null: dq comes from the deterministic pass, not from atomics
};

// The one parameter struct of every attention kernel (passed by value).
template <typename T>
struct AttentionParams {
  TensorBHND<const T> q, k, v;
  TensorBHND<T> out;  // forward: written; backward: read by the delta kernel
  TensorBHND<const T> dout;
  TensorBHND<T> dq, dk, dv;
  float* lse;  // forward: written; backward: read
  float* delta;
  float* dq_accum;
  int64_t tokens;
  int heads;
  float scale;       // multiplies q.k
  float scale_log2;  // scale * log2(e): the kernels' softmax runs in base 2
  LayoutView layout;
};

template <typename T>
AttentionParams<T> params_for(const AttentionCall& c) {
  AttentionParams<T> p;
  p.q = c.q.as<const T>();
  p.k = c.k.as<const T>();
  p.v = c.v.as<const T>();
  p.out = c.out.as<T>();
  p.dout = c.dout.as<const T>();
  p.dq = c.dq.as<T>();
  p.dk = c.dk.as<T>();
  p.dv = c.dv.as<T>();
  p.lse = c.lse;
  p.delta = c.delta;
  p.dq_accum = c.dq_accum;
  p.tokens = c.shape.tokens;
  p.heads = static_cast<int>(c.shape.heads);
  p.scale = c.shape.scale;
  p.scale_log2 = c.shape.scale * kLog2e;
  p.layout = c.layout;
  return p;
}

template <typename T>
struct ElementTag {
  using type = T;
};
template <int kD>
using HeadDimTag = std::integral_constant<int, kD>;

// Calls f(ElementTag<T>{}, HeadDimTag<kD>{}) for the instantiated (element type, head dim) that
// (dtype, head_dim) names; check_arguments has rejected every other pair.
template <typename F>
void dispatch_dtype_head_dim(int dtype, int64_t head_dim, F&& f) {
  const bool bf16 = dtype == kBFloat16;
  if (head_dim == 64) {
    if (bf16) {
      f(ElementTag<__nv_bfloat16>{}, HeadDimTag<64>{});
    } else {
      f(ElementTag<__half>{}, HeadDimTag<64>{});
    }
  } else {
    if (bf16) {
      f(ElementTag<__nv_bfloat16>{}, HeadDimTag<128>{});
    } else {
      f(ElementTag<__half>{}, HeadDimTag<128>{});
    }
  }
}

inline void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("aim CUDA attention: launching ") + kernel + " failed: " +
                             cudaGetErrorString(err));
  }
}

inline void check_call(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("aim CUDA attention: ") + what + " failed: " + cudaGetErrorString(err));
  }
}

// Raise a kernel's dynamic shared-memory limit above the default 48 KB, once per device. `done` is
// a per-instantiation static (bit d = device d already configured).
inline void ensure_smem_limit(const void* kernel, int bytes, std::atomic<uint64_t>& done) {
  if (bytes <= 48 * 1024) return;
  int device = 0;
  check_call(cudaGetDevice(&device), "cudaGetDevice");
  const uint64_t bit = device < 64 ? (uint64_t{1} << device) : 0;
  if (bit != 0 && (done.load(std::memory_order_acquire) & bit)) return;
  check_call(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
             "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
  if (bit != 0) done.fetch_or(bit, std::memory_order_release);
}

inline cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

// Whether the current device has compute capability exactly 9.0 (H100, H200), the only target of
// the sm_90a kernels. Cached per device.
inline bool current_device_is_sm90() {
  int device = 0;
  check_call(cudaGetDevice(&device), "cudaGetDevice");
  static std::atomic<uint8_t> cached[64];  // 0 unknown, 1 compute capability 9.0, 2 other
  if (device >= 0 && device < 64) {
    const uint8_t c = cached[device].load(std::memory_order_acquire);
    if (c != 0) return c == 1;
  }
  int major = 0, minor = 0;
  check_call(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
             "cudaDeviceGetAttribute(ComputeCapabilityMajor)");
  check_call(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device),
             "cudaDeviceGetAttribute(ComputeCapabilityMinor)");
  const bool sm90 = major == 9 && minor == 0;
  if (device >= 0 && device < 64) cached[device].store(sm90 ? 1 : 2, std::memory_order_release);
  return sm90;
}

// Whether to run the Hopper kernel for the caller's choice (aim::KernelChoice, which Python takes
// from AIM_CUDA_FWD_KERNEL / AIM_CUDA_BWD_KERNEL on every call): kAuto runs it where this module
// has it (`built`: an architecture list with 90) and the device is compute capability 9.0,
// kPortable never, kSpecialised always or an std::invalid_argument saying why it cannot. `pass`
// ("forward", "backward") names the kernel in that message.
inline bool use_sm90_kernel(KernelChoice choice, bool built, const char* pass) {
  if (choice == KernelChoice::kPortable) return false;
  if (choice == KernelChoice::kSpecialised) {
    const std::string asked = std::string("CUDA attention: the sm90 ") + pass + " was asked for, but ";
    if (!built) {
      throw std::invalid_argument(asked + "this build has no Hopper kernels (set AIM_CUDA_ARCHITECTURES to include "
                                  "90 and reinstall)");
    }
    if (!current_device_is_sm90()) {
      throw std::invalid_argument(asked + "the current device is not compute capability 9.0");
    }
    return true;
  }
  return built && current_device_is_sm90();
}

}  // namespace gpu
}  // namespace aim
