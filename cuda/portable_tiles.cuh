// Shared-memory tile movement of the portable kernels (attention_fwd.cu, attention_bwd.cu,
// attention_dq_pass.cu): rows of a head's token-major slice into padded tiles with cp.async, the
// 64-key sub-tiles of a by_query walk with their mask words, and the epilogue that rounds a warp's
// 16 accumulator rows to T and stores them with 16-byte writes.
#pragma once

#include <cstdint>

#include "aim/attention_layout.h"
#include "mma_helpers.cuh"

namespace aim {
namespace gpu {

// Rows row0 .. row0 + kRows - 1 of `src` (row stride `stride_n` elements, kChunks 16-byte chunks
// per row) -> `dst` (row pitch kPitch), zero-filled for rows >= N (so that 0 * garbage never makes
// a NaN); the kThreads threads of the CTA share the copies, `tid` is this one.
template <int kRows, int kChunks, int kPitch, int kThreads, typename T>
__device__ __forceinline__ void load_rows_async(T* dst, const T* src, int64_t stride_n, int64_t row0, int64_t N,
                                                int tid) {
#pragma unroll
  for (int i = tid; i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks;
    const int c = i % kChunks;
    const bool ok = row0 + r < N;
    cp_async_16(smem_u32(dst + r * kPitch + c * 8), ok ? src + (row0 + r) * stride_n + c * 8 : src, ok);
  }
}

// Sub-tile t of a query block's walk over its by_query list: each listed key block is two
// 64-key sub-tiles.
struct KeySubTile {
  int64_t k0;  // first key of the sub-tile
  int part;    // partial index (< 0: fully visible)
  int half;    // which half of the 128-key layout block
};

__device__ __forceinline__ KeySubTile key_subtile(const BlockList& list, int e_begin, int t) {
  const int e = e_begin + (t >> 1);
  KeySubTile x;
  x.half = t & 1;
  x.k0 = static_cast<int64_t>(__ldg(list.idx + e)) * kLayoutBlock + x.half * 64;
  x.part = __ldg(list.partial + e);
  return x;
}

// For a partial block, the sub-tile's 2 mask words of each of the 128 query rows -> dst[row][2];
// 256 threads, one word each (tid = 2 row + word).
__device__ __forceinline__ void load_subtile_mask_async(uint32_t* dst, const LayoutView& layout,
                                                        const KeySubTile& x, int tid) {
  if (x.part < 0) return;
  const uint32_t* src = block_mask(layout, x.part) + (tid >> 1) * kMaskWordsPerRow + x.half * 2 + (tid & 1);
  cp_async_4(smem_u32(dst + tid), src);
}

// Epilogue of one warp: its 16 rows of accumulators (C fragments, kD columns) times f_lo (row g)
// and f_hi (row g + 8), rounded to T, staged in `rows` (the warp's own 16 rows of a padded tile),
// then rows row0 .. row0 + 15 below N stored to `dst` with 16-byte writes.
template <typename T, int kD, int kPitch>
__device__ __forceinline__ void store_warp_rows(const float (&acc)[kD / 8][4], float f_lo, float f_hi, T* rows,
                                                T* dst, int64_t stride_n, int64_t row0, int64_t N, int lane) {
  constexpr int kChunks = kD / 8;
  const int g = lane >> 2;
  const int tq = lane & 3;
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) {
    *reinterpret_cast<uint32_t*>(rows + g * kPitch + n * 8 + tq * 2) = pack2<T>(acc[n][0] * f_lo, acc[n][1] * f_lo);
    *reinterpret_cast<uint32_t*>(rows + (g + 8) * kPitch + n * 8 + tq * 2) =
        pack2<T>(acc[n][2] * f_hi, acc[n][3] * f_hi);
  }
  __syncwarp();
#pragma unroll
  for (int i = lane; i < 16 * kChunks; i += 32) {
    const int r = i / kChunks;
    const int c = i % kChunks;
    if (row0 + r < N) {
      *reinterpret_cast<uint4*>(dst + (row0 + r) * stride_n + c * 8) =
          *reinterpret_cast<const uint4*>(rows + r * kPitch + c * 8);
    }
  }
}

}  // namespace gpu
}  // namespace aim
