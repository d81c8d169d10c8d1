// Hopper (sm_90a) forward of the block-sparse attention: warpgroup MMA (wgmma) for S = Q K^T and
// O += P V, same semantics and outputs (out, lse) as the portable kernel in attention_fwd.cu, which
// dispatches here on compute capability 9.0 (see NOTES.md, "Hopper forward").
//
// One CTA per (query layout block of 128 rows, head, batch); 256 threads = 2 warpgroups, warpgroup
// wg owns query rows 64wg..64wg+63 (one m64 wgmma row block). The CTA walks the block's by_query
// list; each listed key block is ONE 128-key step (wgmma m64n128k16 for S), K/V/mask double-buffered
// through shared memory with cp.async (all threads load; no warp specialisation).
//
// Shared-memory tiles (Q, K, V) use the canonical 128-byte-swizzle layout of wgmma (aim/attention_sm90.h:
// sw128_offset, desc_sw128, kmajor_start, mnmajor_start), all starting on a 1024-byte boundary.
//  * Q (A of S, K-major) and K (B of S, K-major, "n x k" = key x d): 8-row groups 1024 bytes apart
//    (SBO = 1024), LBO unused for swizzled K-major (encoded 1). k-step kk (16 elements of d) starts
//    at atom kk/4, byte 32*(kk%4) of the row.
//  * V (B of O += P V, "k x n" = key x d, N-major, imm-trans-b = 1): the same physical layout as K.
//    For MN-major swizzled layouts LBO = byte distance between 64-element column atoms
//    (128 keys * 128 B = 16384) and SBO = distance between 8-key groups (1024). k-step kk (16 keys)
//    starts 16*128*kk bytes in.
//  * P never leaves registers: the m64nNk16 accumulator fragment of warp w of a warpgroup equals
//    mma.sync's m16n8 C fragment of rows 16w.., repeated over N/8 column groups, and the register-A
//    fragment of m64nNk16 equals mma.sync's m16n8k16 A fragment of rows 16w.., so P converts in
//    place exactly as in the portable kernel. cuda/fragment_check_sm90.py replays all of this.
#include "aim/attention_sm90.h"
#include "attention_parts.h"
#include "launch_common.cuh"
#include "mma_helpers.cuh"
#include "sm90_ptx.cuh"

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ != 900 || !defined(__CUDA_ARCH_FEAT_SM90_ALL))
#error "attention_fwd_sm90.cu must be compiled for sm_90a only (-gencode=arch=compute_90a,code=sm_90a)"
#endif

namespace aim {
namespace gpu {

namespace {

using sm90::desc_sw128;
using sm90::sw128_offset;

// ---- kernel ------------------------------------------------------------------------------------

// Tiles: BlockM = 128 query rows (= kLayoutBlock, 2 warpgroups x 64), BlockN = 128 keys (one layout
// block per step). Registers per thread: S 64 + O kD/2 fp32. Shared memory: Q + 2 stages of K and
// V (128 x kD each, swizzled) + 2 stages of the block's mask words (128 rows x 4 words), + 1024
// bytes to align the base. kD = 128: 168960 B; kD = 64: 87040 B. 1 CTA/SM (8 warps) for both.
template <int kD>
struct Sm90Traits {
  static constexpr int kBlockM = kLayoutBlock;
  static constexpr int kBlockN = kLayoutBlock;
  static constexpr int kThreads = 256;
  static constexpr int kChunks = kD / 8;             // 16-byte chunks per row
  static constexpr int kTileBytes = 128 * kD * 2;    // one Q, K or V tile
  static constexpr int kMaskBytes = kMaskWordsPerBlock * 4;  // 2048
  static constexpr int kSmemBytes = 5 * kTileBytes + 2 * kMaskBytes + 1024;
  static constexpr int kMinBlocks = 1;  // kD = 64 with 2 CTAs/SM (<= 128 registers) spilled 76 bytes
  static_assert(kTileBytes % 1024 == 0, "tiles must keep 1024-byte alignment");
  static_assert(kBlockM == 2 * 64 && kBlockN == 128, "2 warpgroups x m64; one m64n128 S per step");
  static_assert(kMaskWordsPerBlock == 2 * kThreads, "two mask words per thread per stage");
};

template <typename T, int kD>
__global__ void __launch_bounds__(Sm90Traits<kD>::kThreads, Sm90Traits<kD>::kMinBlocks)
    attention_fwd_sm90_kernel(const AttentionParams<T> p) {
  using Tr = Sm90Traits<kD>;
  constexpr int kChunks = Tr::kChunks;
  constexpr int kTile = Tr::kTileBytes;

  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t raw_addr = smem_u32(smem_raw);
  const uint32_t base = (raw_addr + 1023u) & ~1023u;
  unsigned char* smem = smem_raw + (base - raw_addr);  // generic pointer to the aligned base
  const uint32_t sQ = base;                            // [kD/64][128][128 B]
  const uint32_t sK = sQ + kTile;                      // [2 stages][kD/64][128][128 B]
  const uint32_t sV = sK + 2 * kTile;                  // [2 stages][kD/64][128][128 B]
  const uint32_t sMask = sV + 2 * kTile;               // [2 stages][128 rows][4 words]
  const unsigned char* mask_gen = smem + 5 * kTile;

  const int qb = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);  // heavy blocks first
  const int h = blockIdx.y;
  const int b = blockIdx.z;
  const int tid = threadIdx.x;
  const int wg = tid >> 7;           // warpgroup: query rows 64wg..64wg+63
  const int wq = (tid >> 5) & 3;     // warp within the warpgroup: rows 64wg + 16wq ..
  const int lane = tid & 31;
  const int g = lane >> 2;
  const int tq = lane & 3;
  const int row_lo = wg * 64 + wq * 16 + g;  // block-local rows of this thread: row_lo, row_lo + 8
  const int64_t N = p.tokens;
  const int64_t q0 = static_cast<int64_t>(qb) * kLayoutBlock;

  const T* q_bh = p.q.row(b, h, 0);
  const T* k_bh = p.k.row(b, h, 0);
  const T* v_bh = p.v.row(b, h, 0);

  const int32_t* list_idx = p.layout.by_query.idx;
  const int32_t* list_part = p.layout.by_query.partial;
  const int e_begin = __ldg(p.layout.by_query.ptr + qb);
  const int n_tiles = __ldg(p.layout.by_query.ptr + qb + 1) - e_begin;

  // K, V rows k0..k0+127 of key block kb (zero-filled past N) and, for a partial block, its 512
  // mask words, copied linearly ([row][4 words], as in global memory).
  auto load_kv = [&](int stage, int kb, int part) {
    const int64_t k0 = static_cast<int64_t>(kb) * kLayoutBlock;
    const uint32_t dk = sK + stage * kTile;
    const uint32_t dv = sV + stage * kTile;
#pragma unroll
    for (int i = tid; i < 128 * kChunks; i += Tr::kThreads) {
      const int r = i / kChunks;
      const int c = i % kChunks;
      const bool ok = k0 + r < N;
      const uint32_t off = sw128_offset(128, r, c * 8);
      cp_async_16(dk + off, ok ? k_bh + (k0 + r) * p.k.stride_n + c * 8 : k_bh, ok);
      cp_async_16(dv + off, ok ? v_bh + (k0 + r) * p.v.stride_n + c * 8 : v_bh, ok);
    }
    if (part >= 0) {
      const uint32_t* src = block_mask(p.layout, part);
      const uint32_t dst = sMask + stage * Tr::kMaskBytes;
      cp_async_4(dst + tid * 4, src + tid);
      cp_async_4(dst + (tid + Tr::kThreads) * 4, src + tid + Tr::kThreads);
    }
  };

  // Q rows q0..q0+127 (zero-filled past N).
#pragma unroll
  for (int i = tid; i < 128 * kChunks; i += Tr::kThreads) {
    const int r = i / kChunks;
    const int c = i % kChunks;
    const bool ok = q0 + r < N;
    cp_async_16(sQ + sw128_offset(128, r, c * 8), ok ? q_bh + (q0 + r) * p.q.stride_n + c * 8 : q_bh, ok);
  }
  int cur_kb = 0, cur_part = -1, nxt_kb = 0, nxt_part = -1;
  if (n_tiles > 0) {
    cur_kb = __ldg(list_idx + e_begin);
    cur_part = __ldg(list_part + e_begin);
    load_kv(0, cur_kb, cur_part);
  }
  cp_async_commit();
  if (n_tiles > 1) {
    nxt_kb = __ldg(list_idx + e_begin + 1);
    nxt_part = __ldg(list_part + e_begin + 1);
  }

  float o[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY};
  float l_run[2] = {0.0f, 0.0f};

  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t & 1;
    cp_async_wait<0>();   // this thread's copies of step t (and Q) landed
    fence_proxy_async();  // ... and are visible to wgmma (async proxy)
    __syncthreads();      // everyone's; and every wgmma of step t-1 finished (stage^1 free)
    const int part = cur_part;
    if (t + 1 < n_tiles) {
      load_kv(stage ^ 1, nxt_kb, nxt_part);
      cp_async_commit();
    }
    cur_kb = nxt_kb;
    cur_part = nxt_part;
    if (t + 2 < n_tiles) {
      nxt_kb = __ldg(list_idx + e_begin + t + 2);
      nxt_part = __ldg(list_part + e_begin + t + 2);
    }

    // S = Q K^T: 64 x 128 per warpgroup, kD/16 k-steps of m64n128k16.
    float s[16][4];
#pragma unroll
    for (int j = 0; j < 16; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
    const uint32_t k_st = sK + stage * kTile;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      Wgmma<T, 128>::template ss<0>(s, desc_sw128(sQ + sm90::kmajor_start(128, wg * 64, kk), 16, sm90::kGroupBytes),
                           desc_sw128(k_st + sm90::kmajor_start(128, 0, kk), 16, sm90::kGroupBytes), kk > 0 ? 1 : 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_regs(s);

    // s[j][e]: (row row_lo, key 8j + 2tq + e), s[j][2 + e]: (row row_lo + 8, same key).
#pragma unroll
    for (int j = 0; j < 16; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] *= p.scale_log2;
    }
    if (part >= 0) {
      const uint4 w_lo = *reinterpret_cast<const uint4*>(mask_gen + stage * Tr::kMaskBytes + row_lo * 16);
      const uint4 w_hi = *reinterpret_cast<const uint4*>(mask_gen + stage * Tr::kMaskBytes + (row_lo + 8) * 16);
#pragma unroll
      for (int j = 0; j < 16; ++j) {
        const int shift = (j & 3) * 8 + tq * 2;  // bit of key 8j + 2tq within word j/4
        const uint32_t wl = j < 4 ? w_lo.x : j < 8 ? w_lo.y : j < 12 ? w_lo.z : w_lo.w;
        const uint32_t wh = j < 4 ? w_hi.x : j < 8 ? w_hi.y : j < 12 ? w_hi.z : w_hi.w;
        const uint32_t bits_lo = wl >> shift;
        const uint32_t bits_hi = wh >> shift;
        if (!(bits_lo & 1u)) s[j][0] = -INFINITY;
        if (!(bits_lo & 2u)) s[j][1] = -INFINITY;
        if (!(bits_hi & 1u)) s[j][2] = -INFINITY;
        if (!(bits_hi & 2u)) s[j][3] = -INFINITY;
      }
    }

    // Online softmax (base 2); a row lives in the 4 lanes of a quad.
    float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      mx[0] = fmaxf(mx[0], fmaxf(s[j][0], s[j][1]));
      mx[1] = fmaxf(mx[1], fmaxf(s[j][2], s[j][3]));
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    }
    float base_r[2], corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      base_r[r] = softmax_base(mx[r]);
      corr[r] = fast_exp2(m_run[r] - base_r[r]);
      m_run[r] = mx[r];
      l_run[r] *= corr[r];
    }
    // P = exp2(s - base), packed to T as the register-A fragments of the 8 k-steps of P V:
    // a0 = (row_lo, keys 16kk + 2tq..), a1 = (row_lo + 8, same), a2 = (row_lo, 16kk + 8 + 2tq..),
    // a3 = (row_lo + 8, same) = column groups 2kk, 2kk + 1 of S.
    uint32_t pa[8][4];
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const float p0 = fast_exp2(s[j][0] - base_r[0]);
      const float p1 = fast_exp2(s[j][1] - base_r[0]);
      const float p2 = fast_exp2(s[j][2] - base_r[1]);
      const float p3 = fast_exp2(s[j][3] - base_r[1]);
      l_run[0] += p0 + p1;
      l_run[1] += p2 + p3;
      pa[j >> 1][(j & 1) * 2 + 0] = pack2<T>(p0, p1);
      pa[j >> 1][(j & 1) * 2 + 1] = pack2<T>(p2, p3);
    }
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) {
      o[n][0] *= corr[0];
      o[n][1] *= corr[0];
      o[n][2] *= corr[1];
      o[n][3] *= corr[1];
    }

    // O += P V: 8 k-steps (16 keys each) of m64n{kD}k16, V N-major (imm-trans-b = 1).
    const uint32_t v_st = sV + stage * kTile;
    fence_regs(o);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      Wgmma<T, kD>::rs(o, pa[kk],
                       desc_sw128(v_st + sm90::mnmajor_start(128, 0, kk), sm90::atom_bytes(128), sm90::kGroupBytes), 1);
    }
    wgmma_commit();
    wgmma_wait<0>();
    fence_regs(o);
  }

  // Epilogue: O / l (0 for rows that saw no key), staged in the Q tile (same swizzled layout,
  // rows of this warp only), 16-byte stores for rows < N; lse for rows < N.
  cp_async_wait<0>();
  fence_proxy_async();
  __syncthreads();  // no cp.async in flight, every wgmma reading Q finished
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
    inv[r] = l_run[r] > 0.0f ? 1.0f / l_run[r] : 0.0f;
  }
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) {
    const int col = n * 8 + tq * 2;
    *reinterpret_cast<uint32_t*>(smem + sw128_offset(128, row_lo, col)) = pack2<T>(o[n][0] * inv[0], o[n][1] * inv[0]);
    *reinterpret_cast<uint32_t*>(smem + sw128_offset(128, row_lo + 8, col)) =
        pack2<T>(o[n][2] * inv[1], o[n][3] * inv[1]);
  }
  __syncwarp();
  T* out_bh = p.out.row(b, h, 0);
  const int warp_row0 = wg * 64 + wq * 16;
#pragma unroll
  for (int i = lane; i < 16 * kChunks; i += 32) {
    const int r = i / kChunks;
    const int c = i % kChunks;
    const int64_t row = q0 + warp_row0 + r;
    if (row < N) {
      *reinterpret_cast<uint4*>(out_bh + row * p.out.stride_n + c * 8) =
          *reinterpret_cast<const uint4*>(smem + sw128_offset(128, warp_row0 + r, c * 8));
    }
  }
  if (tq == 0) {
    float* lse_bh = p.lse + (static_cast<int64_t>(b) * p.heads + h) * N;
    const int64_t row0 = q0 + row_lo;
    if (row0 < N) lse_bh[row0] = row_logsumexp(m_run[0], l_run[0]);
    if (row0 + 8 < N) lse_bh[row0 + 8] = row_logsumexp(m_run[1], l_run[1]);
  }
}

template <typename T, int kD>
void launch_sm90(const AttentionCall& call, cudaStream_t stream) {
  using Tr = Sm90Traits<kD>;
  const auto kernel = attention_fwd_sm90_kernel<T, kD>;
  static std::atomic<uint64_t> configured{0};
  ensure_smem_limit(reinterpret_cast<const void*>(kernel), Tr::kSmemBytes, configured);
  const dim3 grid(static_cast<unsigned>(call.layout.num_blocks), static_cast<unsigned>(call.shape.heads),
                  static_cast<unsigned>(call.shape.batch));
  kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(params_for<T>(call));
  check_launch("attention_fwd_sm90_kernel");
}

}  // namespace

void attention_forward_sm90(int dtype, const AttentionCall& call, cudaStream_t stream) {
  dispatch_dtype_head_dim(dtype, call.shape.head_dim, [&](auto element, auto head_dim) {
    launch_sm90<typename decltype(element)::type, decltype(head_dim)::value>(call, stream);
  });
}

}  // namespace gpu
}  // namespace aim
