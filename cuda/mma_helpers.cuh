// Thin, named wrappers around the PTX the attention kernels use (sm_80 and newer):
// cp.async (global -> shared, 16 bytes with zero-fill, or 4 bytes), ldmatrix (.x4, .trans),
// mma.sync m16n8k16 with fp32 accumulation, ex2.approx, and the fp32 atomics for dQ.
//
// Fragment layouts relied on (PTX ISA, "Matrix fragments for mma.m16n8k16", 16-bit types), with
// g = lane / 4 (groupID) and t = lane % 4 (thread in group); each .b32 register holds two
// elements, the lower column (A, C) or lower k (B) index in the low 16 bits:
//   A (16x16, row-major):  a0 = A[g][2t..2t+1]    a1 = A[g+8][2t..2t+1]
//                          a2 = A[g][2t+8..2t+9]  a3 = A[g+8][2t+8..2t+9]
//   B (16x8, k x n, "col"): b0 = B[2t..2t+1][g]    b1 = B[2t+8..2t+9][g]
//   C/D (16x8, fp32):      c0,c1 = C[g][2t..2t+1] c2,c3 = C[g+8][2t..2t+1]
// ldmatrix.x4: lanes 8i..8i+7 give the row addresses of 8x8 matrix i, which lands in register i;
// without .trans lane l receives row l/4, columns 2(l%4), 2(l%4)+1 of each matrix; with .trans it
// receives rows 2(l%4), 2(l%4)+1 of column l/4 (the transposed matrix's non-trans fragment).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "aim/attention_layout.h"

namespace aim {
namespace gpu {

__device__ __forceinline__ uint32_t smem_u32(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// 16-byte copy global -> shared that bypasses L1. When `valid` is false nothing is read (src-size
// 0) and the 16 destination bytes are zero-filled; `src` must still be a mapped address.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const uint32_t src_size = valid ? 16u : 0u;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_size)
               : "memory");
}

// 4-byte copy global -> shared (mask words; only 4-byte alignment is known for them).
__device__ __forceinline__ void cp_async_4(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src) : "memory");
}

__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// Wait for every cp.async this thread issued, committed or not.
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// D = A * B + D, m16n8k16, fp32 accumulate. T selects bf16 or f16 inputs.
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);

template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                         uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <>
__device__ __forceinline__ void mma_16816<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats -> one .b32 of two 16-bit values, `lo` in the low half (round to nearest even).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);

template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  const __half2 v = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// One .b32 of two 16-bit values -> two floats (low half first).
template <typename T>
__device__ __forceinline__ float2 unpack2(uint32_t v);

template <>
__device__ __forceinline__ float2 unpack2<__nv_bfloat16>(uint32_t v) {
  return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&v));
}

template <>
__device__ __forceinline__ float2 unpack2<__half>(uint32_t v) {
  return __half22float2(*reinterpret_cast<const __half2*>(&v));
}

// 2^x, one MUFU instruction; ex2.approx(-inf) = +0, which the masked softmax relies on.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// dst[0] += a, dst[1] += b in global memory, result unused (RED). dst must be 8-byte aligned.
__device__ __forceinline__ void atomic_add2(float* dst, float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  atomicAdd(reinterpret_cast<float2*>(dst), make_float2(a, b));
#else
  atomicAdd(dst, a);
  atomicAdd(dst + 1, b);
#endif
}

// The A fragment of one k-step (16 columns) from the C fragments of its two 8-column tiles lo, hi,
// rounded to T: a0 = (g, 2tq..), a1 = (g+8, 2tq..), a2 = (g, 8+2tq..), a3 = (g+8, 8+2tq..). The
// same holds for a wgmma accumulator and its register-A operand (aim/attention_sm90.h).
template <typename T>
__device__ __forceinline__ void c_to_a(uint32_t (&a)[4], const float (&lo)[4], const float (&hi)[4]) {
  a[0] = pack2<T>(lo[0], lo[1]);
  a[1] = pack2<T>(lo[2], lo[3]);
  a[2] = pack2<T>(hi[0], hi[1]);
  a[3] = pack2<T>(hi[2], hi[3]);
}

// Backward, one 8-column group of a transposed score tile (rows = keys, columns = queries; this
// thread's columns 2tq, 2tq + 1 have log-sum-exp lse.x, lse.y): scores -> probabilities
// P^T = exp2(S^T * scale*log2e - backward_base_log2(lse)), 0 for queries that saw no key.
__device__ __forceinline__ void probs_from_lse(float (&s)[4], float2 lse, float scale_log2) {
  const float base0 = backward_base_log2(lse.x);
  const float base1 = backward_base_log2(lse.y);
  s[0] = fast_exp2(s[0] * scale_log2 - base0);
  s[1] = fast_exp2(s[1] * scale_log2 - base1);
  s[2] = fast_exp2(s[2] * scale_log2 - base0);
  s[3] = fast_exp2(s[3] * scale_log2 - base1);
}

// ... and dP^T -> dS^T = P^T (dP^T - delta) in place, delta of the two columns in delta.x, .y.
__device__ __forceinline__ void ds_from_dp(float (&dp)[4], const float (&p)[4], float2 delta) {
  dp[0] = p[0] * (dp[0] - delta.x);
  dp[1] = p[1] * (dp[1] - delta.y);
  dp[2] = p[2] * (dp[2] - delta.x);
  dp[3] = p[3] * (dp[3] - delta.y);
}

// ---- Warp-level tile products of the portable kernels: 16 rows per warp, 64-column tiles of
// row-major shared-memory tiles with row pitch kPitch elements (see launch_common.cuh), in the
// fragment layouts above. a_off / b_off are each lane's ldmatrix offsets (attention_fwd.cu).

// s = A B^T, A = the warp's 16 rows x kD, B = 64 rows x kD: `a_lane` is this lane's ldmatrix
// address of A (a_off), `b_lane` its address in B (b_off). s[j] holds B rows 8j..8j+7.
template <typename T, int kD, int kPitch>
__device__ __forceinline__ void warp_tile_abt(float (&s)[8][4], uint32_t a_lane, uint32_t b_lane) {
#pragma unroll
  for (int j = 0; j < 8; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < kD / 16; ++kk) {
    uint32_t a[4];
    ldmatrix_x4(a, a_lane + kk * 16 * 2);
#pragma unroll
    for (int nn = 0; nn < 4; ++nn) {
      uint32_t b[4];  // registers 0,1 = (b0,b1) of B rows 16nn..+7, registers 2,3 of rows +8..+15
      ldmatrix_x4(b, b_lane + (nn * 16 * kPitch + kk * 16) * 2);
      mma_16816<T>(s[2 * nn], a, b[0], b[1]);
      mma_16816<T>(s[2 * nn + 1], a, b[2], b[3]);
    }
  }
}

// o += P B, P = this warp's 16 x 64 accumulators (warp_tile_abt's layout), rounded to T, and
// B = a row-major 64 x kD tile read with ldmatrix.trans at `b_lane` (a_off). P's C fragments of
// columns 16kk..16kk+15 (tiles 2kk, 2kk+1) are exactly the A fragment of k-step kk (c_to_a).
template <typename T, int kD, int kPitch>
__device__ __forceinline__ void warp_tile_pb(float (&o)[kD / 8][4], const float (&p)[8][4], uint32_t b_lane) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    uint32_t a[4];
    c_to_a<T>(a, p[2 * kk], p[2 * kk + 1]);
#pragma unroll
    for (int nd = 0; nd < kD / 16; ++nd) {
      uint32_t b[4];  // .trans of B rows 16kk.., columns 16nd..: (b0,b1) of columns 16nd..+7, then +8..+15
      ldmatrix_x4_trans(b, b_lane + (kk * 16 * kPitch + nd * 16) * 2);
      mma_16816<T>(o[2 * nd], a, b[0], b[1]);
      mma_16816<T>(o[2 * nd + 1], a, b[2], b[3]);
    }
  }
}

// Masked pairs of a 16 x 64 score tile -> -inf. s[j][e] is (row g, key 8j + 2tq + e), s[j][2 + e]
// (row g + 8, same key); w_lo, w_hi are the two mask words (64 keys, aim::mask_bit's bits) of
// rows g and g + 8.
__device__ __forceinline__ void mask_tile_16x64(float (&s)[8][4], uint2 w_lo, uint2 w_hi, int tq) {
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    const int shift = (j & 3) * 8 + tq * 2;  // bit of key 8j + 2tq within its 32-key word
    const uint32_t bits_lo = ((j < 4) ? w_lo.x : w_lo.y) >> shift;
    const uint32_t bits_hi = ((j < 4) ? w_hi.x : w_hi.y) >> shift;
    if (!(bits_lo & 1u)) s[j][0] = -INFINITY;
    if (!(bits_lo & 2u)) s[j][1] = -INFINITY;
    if (!(bits_hi & 1u)) s[j][2] = -INFINITY;
    if (!(bits_hi & 2u)) s[j][3] = -INFINITY;
  }
}

}  // namespace gpu
}  // namespace aim
