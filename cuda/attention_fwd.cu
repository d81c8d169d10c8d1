// Forward of the block-sparse attention (FlashAttention-2 style, mma.sync m16n8k16, fp32
// accumulation). One CTA per (query layout block of 128 rows, head, batch); 8 warps, warp w owns
// query rows 16w..16w+15 of the block. The CTA walks the block's by_query list; each listed key
// block is processed as two 64-key sub-tiles, double-buffered through shared memory with
// cp.async. See NOTES.md beside this file.
#include "attention_parts.h"
#include "launch_common.cuh"
#include "mma_helpers.cuh"
#include "portable_tiles.cuh"

namespace aim {
namespace gpu {

namespace {

// Tile shape of the forward, per head dim.
//  * kBlockM = 128 = kLayoutBlock query rows: a CTA owns exactly one query block, so the block
//    list is walked once and mask rows are block-local rows 0..127 with no offset.
//  * 8 warps x 16 rows: one m16 MMA row block per warp; softmax rows never cross warps.
//  * kBlockN = 64 keys per sub-tile: S is 16x64 per warp = 32 fp32 registers per thread, O is
//    16 x kD = kD/2 registers; with kD = 128 that is ~100 live accumulator registers.
//  * Q stays in shared memory and is re-read with ldmatrix in every sub-tile (one ldmatrix.x4 per
//    four of K): holding it in registers costs kD/4 more per thread and made kD = 64 spill under
//    the 128-register cap of 2 CTAs/SM.
//  * Shared memory: Q (128 rows) + 2 stages of K and V (64 rows each), rows padded by 16 bytes,
//    + 2 stages of the sub-tile's mask words (128 rows x 2 words). kD = 128: 106496 bytes,
//    kD = 64: 57344 bytes.
template <int kD>
struct FwdTraits {
  static constexpr int kBlockM = kLayoutBlock;
  static constexpr int kBlockN = 64;
  static constexpr int kWarps = kBlockM / 16;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kPitch = padded_pitch(kD);
  static constexpr int kChunks = kD / 8;  // 16-byte chunks per row
  static constexpr int kQElems = kBlockM * kPitch;
  static constexpr int kKVElems = kBlockN * kPitch;
  static constexpr int kMaskWords = kBlockM * (kBlockN / 32);  // one stage: [128 rows][2 words]
  static constexpr int kSmemBytes = (kQElems + 4 * kKVElems) * 2 + 2 * kMaskWords * 4;
  static constexpr int kMinBlocks = 2;  // 2 CTAs (16 warps) per SM: <= 128 registers per thread
  static_assert(kMaskWords == kThreads, "one mask word per thread per stage");
  static_assert(kLayoutBlock % kBlockN == 0 && kLayoutBlock / kBlockN == 2, "two sub-tiles per key block");
};

template <typename T, int kD>
__global__ void __launch_bounds__(FwdTraits<kD>::kThreads, FwdTraits<kD>::kMinBlocks)
    attention_fwd_kernel(const AttentionParams<T> p) {
  using Tr = FwdTraits<kD>;
  constexpr int kPitch = Tr::kPitch;
  constexpr int kChunks = Tr::kChunks;
  constexpr int kBlockN = Tr::kBlockN;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);                                 // [128][kPitch]
  T* sK = sQ + Tr::kQElems;                                               // [2][64][kPitch]
  T* sV = sK + 2 * Tr::kKVElems;                                          // [2][64][kPitch]
  uint32_t* sMask = reinterpret_cast<uint32_t*>(sV + 2 * Tr::kKVElems);  // [2][128][2]

  // Heaviest query blocks (the last ones, in causal-like layouts) first.
  const int qb = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);
  const int h = blockIdx.y;
  const int b = blockIdx.z;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;  // row within the 8-row group of a fragment
  const int tq = lane & 3;  // column pair within a fragment
  const int64_t N = p.tokens;
  const int64_t q0 = static_cast<int64_t>(qb) * kLayoutBlock;

  const T* q_bh = p.q.row(b, h, 0);
  const T* k_bh = p.k.row(b, h, 0);
  const T* v_bh = p.v.row(b, h, 0);

  const int e_begin = __ldg(p.layout.by_query.ptr + qb);
  const int n_tiles = 2 * (__ldg(p.layout.by_query.ptr + qb + 1) - e_begin);

  // K, V rows of a 64-key sub-tile (zero-filled past N: masked probabilities are 0, and
  // 0 * garbage could be NaN) and, for a partial block, the sub-tile's mask words.
  auto load_kv = [&](int stage, const KeySubTile& x) {
    load_rows_async<kBlockN, kChunks, kPitch, Tr::kThreads>(sK + stage * Tr::kKVElems, k_bh, p.k.stride_n, x.k0, N, tid);
    load_rows_async<kBlockN, kChunks, kPitch, Tr::kThreads>(sV + stage * Tr::kKVElems, v_bh, p.v.stride_n, x.k0, N, tid);
    load_subtile_mask_async(sMask + stage * Tr::kMaskWords, p.layout, x, tid);
  };

  // Q rows q0..q0+127 (zero-filled past N; those rows are masked out by the layout anyway).
  load_rows_async<Tr::kBlockM, kChunks, kPitch, Tr::kThreads>(sQ, q_bh, p.q.stride_n, q0, N, tid);
  KeySubTile cur{}, nxt{};
  if (n_tiles > 0) {
    cur = key_subtile(p.layout.by_query, e_begin, 0);
    load_kv(0, cur);
  }
  cp_async_commit();
  if (n_tiles > 1) nxt = key_subtile(p.layout.by_query, e_begin, 1);

  // Per-lane ldmatrix offsets (elements), see the fragment table in mma_helpers.cuh.
  //  A operand (row-major 16x16 at rows r0, cols c0): lane -> row r0 + (lane&7) + 8*((lane>>3)&1),
  //  col c0 + 8*(lane>>4). The same addressing with .trans gives the B operand of a row-major
  //  [k][n] tile (V: k = key, n = d).
  const int a_off = ((lane & 7) + ((lane >> 3) & 1) * 8) * kPitch + (lane >> 4) * 8;
  //  B operand from an [n][k] row-major tile (K: n = key, k = d), non-trans: lane -> row
  //  n0 + (lane&7) + 8*(lane>>4), col k0 + 8*((lane>>3)&1); registers 0,1 = (b0,b1) of keys
  //  n0..n0+7, registers 2,3 = (b0,b1) of keys n0+8..n0+15.
  const int b_off = ((lane & 7) + (lane >> 4) * 8) * kPitch + ((lane >> 3) & 1) * 8;
  const uint32_t sQ_warp = smem_u32(sQ + warp * 16 * kPitch + a_off);

  float o[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  // Running max (base-2 scaled scores) and partial row sum of this thread's two rows
  // (warp*16 + g and warp*16 + g + 8). The sum is this thread's share; the quad is reduced at the end.
  float m_run[2] = {-INFINITY, -INFINITY};
  float l_run[2] = {0.0f, 0.0f};

  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t & 1;
    cp_async_wait<0>();  // sub-tile t (and Q) landed for this thread's copies
    __syncthreads();     // ... for everyone's; and everyone finished sub-tile t-1 (stage^1 free)
    if (t + 1 < n_tiles) {
      load_kv(stage ^ 1, nxt);
      cp_async_commit();
    }
    const KeySubTile now = cur;
    cur = nxt;
    if (t + 2 < n_tiles) nxt = key_subtile(p.layout.by_query, e_begin, t + 2);  // off the critical path

    // S = Q K^T (16 x 64 per warp).
    float s[8][4];
    warp_tile_abt<T, kD, kPitch>(s, sQ_warp, smem_u32(sK + stage * Tr::kKVElems + b_off));

    // Base-2 scaled scores; masked pairs -> -inf. s[j][e] is (row g, key 8j + 2tq + e),
    // s[j][2 + e] is (row g + 8, same key), keys local to the sub-tile.
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] *= p.scale_log2;
    }
    if (now.part >= 0) {
      const uint32_t* mrow = sMask + stage * Tr::kMaskWords;
      mask_tile_16x64(s, *reinterpret_cast<const uint2*>(mrow + (warp * 16 + g) * 2),
                      *reinterpret_cast<const uint2*>(mrow + (warp * 16 + g + 8) * 2), tq);
    }

    // Online softmax. A row lives in the 4 lanes of a quad: reduce with xor 1, 2.
    float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      mx[0] = fmaxf(mx[0], fmaxf(s[j][0], s[j][1]));
      mx[1] = fmaxf(mx[1], fmaxf(s[j][2], s[j][3]));
    }
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
    }
    float base[2], corr[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      base[r] = softmax_base(mx[r]);
      corr[r] = fast_exp2(m_run[r] - base[r]);  // old max -inf -> 0 (l and O are 0 then)
      m_run[r] = mx[r];
      l_run[r] *= corr[r];
    }
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      s[j][0] = fast_exp2(s[j][0] - base[0]);
      s[j][1] = fast_exp2(s[j][1] - base[0]);
      s[j][2] = fast_exp2(s[j][2] - base[1]);
      s[j][3] = fast_exp2(s[j][3] - base[1]);
      l_run[0] += s[j][0] + s[j][1];
      l_run[1] += s[j][2] + s[j][3];
    }
#pragma unroll
    for (int n = 0; n < kD / 8; ++n) {
      o[n][0] *= corr[0];
      o[n][1] *= corr[0];
      o[n][2] *= corr[1];
      o[n][3] *= corr[1];
    }

    // O += P V (V by ldmatrix.trans).
    warp_tile_pb<T, kD, kPitch>(o, s, smem_u32(sV + stage * Tr::kKVElems + a_off));
  }

  // Epilogue: O / l (0 for a row that saw no key), staged through this warp's own Q rows for
  // 16-byte coalesced stores; lse for rows < N.
  cp_async_wait<0>();
  __syncthreads();  // no cp.async into sQ still in flight; every warp done with its Q rows
  float inv[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 1);
    l_run[r] += __shfl_xor_sync(0xffffffffu, l_run[r], 2);
    inv[r] = l_run[r] > 0.0f ? 1.0f / l_run[r] : 0.0f;
  }
  store_warp_rows<T, kD, kPitch>(o, inv[0], inv[1], sQ + warp * 16 * kPitch, p.out.row(b, h, 0), p.out.stride_n,
                                 q0 + warp * 16, N, lane);
  if (tq == 0) {
    float* lse_bh = p.lse + (static_cast<int64_t>(b) * p.heads + h) * N;
    const int64_t row0 = q0 + warp * 16 + g;
    if (row0 < N) lse_bh[row0] = row_logsumexp(m_run[0], l_run[0]);
    if (row0 + 8 < N) lse_bh[row0 + 8] = row_logsumexp(m_run[1], l_run[1]);
  }
}

template <typename T, int kD>
void launch_forward(const AttentionCall& call, cudaStream_t stream) {
  using Tr = FwdTraits<kD>;
  const auto kernel = attention_fwd_kernel<T, kD>;
  static std::atomic<uint64_t> configured{0};
  ensure_smem_limit(reinterpret_cast<const void*>(kernel), Tr::kSmemBytes, configured);
  const dim3 grid(static_cast<unsigned>(call.layout.num_blocks), static_cast<unsigned>(call.shape.heads),
                  static_cast<unsigned>(call.shape.batch));
  kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(params_for<T>(call));
  check_launch("attention_fwd_kernel");
}

}  // namespace

void attention_forward(int dtype, const AttentionShape& shape, StridedBHND q, StridedBHND k, StridedBHND v,
                       StridedBHND out, float* lse, const LayoutView& layout, KernelChoice kernel,
                       uintptr_t stream_handle) {
  check_arguments(dtype, shape, layout);
  if (shape.batch == 0 || shape.heads == 0 || shape.tokens == 0) return;
  const cudaStream_t stream = as_stream(stream_handle);
  const AttentionCall call{shape, q, k, v, out, lse, layout};
  if (use_sm90_kernel(kernel, kHaveSm90Kernels, "forward")) {
#if defined(AIM_HAVE_SM90)
    attention_forward_sm90(dtype, call, stream);
    return;
#endif
  }
  dispatch_dtype_head_dim(dtype, shape.head_dim, [&](auto element, auto head_dim) {
    launch_forward<typename decltype(element)::type, decltype(head_dim)::value>(call, stream);
  });
}

}  // namespace gpu
}  // namespace aim
