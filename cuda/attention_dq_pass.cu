// dQ of the deterministic backward (mma.sync m16n8k16, fp32 accumulation, every architecture).
//
// The main backward kernels (portable and Hopper) keep dK, dV of a key block in registers and add
// dQ = dS K into a float32 buffer with atomics, in whatever order CTAs finish: dq is then not
// bitwise reproducible. With torch.use_deterministic_algorithms(True) they skip dQ and this pass
// computes it instead, the forward's way round: one CTA per (query layout block, head, batch), 8
// warps, warp w owning query rows 16w..16w+15 and their dQ (16 x kD) in registers, walking the
// block's by_query list (each key block as two 64-key sub-tiles, double-buffered with cp.async) in
// ascending order. Per sub-tile it recomputes S = Q K^T and dP = dO V^T, then
// P = exp2(S * scale * log2e - lse * log2e) (masked pairs -> 0), dS = P (dP - delta) and
// dQ += dS K; the epilogue writes dq = scale * dQ in the element type. Cost: S and dP again (two of
// the backward's five GEMMs per visible block), so about +40% of the backward's FLOPs.
#include "attention_parts.h"
#include "launch_common.cuh"
#include "mma_helpers.cuh"
#include "portable_tiles.cuh"

namespace aim {
namespace gpu {
namespace {

// Tiles: the portable forward's (FwdTraits in attention_fwd.cu): 128 query rows, 64-key sub-tiles,
// 8 warps. Shared memory: Q and dO (128 rows each) + 2 stages of K and V (64 rows) + 2 stages of the
// sub-tile's mask words, rows padded by 16 bytes. kD = 128: 141312 bytes; kD = 64: 75776 bytes.
// Registers: S, dP 32 each + dQ kD/2: 1 CTA (8 warps) per SM.
template <int kD>
struct DqPassTraits {
  static constexpr int kBlockM = kLayoutBlock;
  static constexpr int kBlockN = 64;
  static constexpr int kThreads = 256;
  static constexpr int kPitch = padded_pitch(kD);
  static constexpr int kChunks = kD / 8;
  static constexpr int kQElems = kBlockM * kPitch;
  static constexpr int kKVElems = kBlockN * kPitch;
  static constexpr int kMaskWords = kBlockM * (kBlockN / 32);  // one stage: [128 rows][2 words]
  static constexpr int kSmemBytes = (2 * kQElems + 4 * kKVElems) * 2 + 2 * kMaskWords * 4;
  static_assert(kMaskWords == kThreads, "one mask word per thread per stage");
};

template <typename T, int kD>
__global__ void __launch_bounds__(DqPassTraits<kD>::kThreads, 1) attention_dq_pass_kernel(const AttentionParams<T> p) {
  using Tr = DqPassTraits<kD>;
  constexpr int kPitch = Tr::kPitch;
  constexpr int kChunks = Tr::kChunks;
  constexpr int kBlockN = Tr::kBlockN;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);                                 // [128][kPitch]
  T* sdO = sQ + Tr::kQElems;                                              // [128][kPitch]
  T* sK = sdO + Tr::kQElems;                                              // [2][64][kPitch]
  T* sV = sK + 2 * Tr::kKVElems;                                          // [2][64][kPitch]
  uint32_t* sMask = reinterpret_cast<uint32_t*>(sV + 2 * Tr::kKVElems);  // [2][128][2]

  const int qb = static_cast<int>(gridDim.x) - 1 - static_cast<int>(blockIdx.x);  // heavy blocks first
  const int h = blockIdx.y;
  const int b = blockIdx.z;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;
  const int tq = lane & 3;
  const int64_t N = p.tokens;
  const int64_t q0 = static_cast<int64_t>(qb) * kLayoutBlock;
  const int64_t bh = static_cast<int64_t>(b) * p.heads + h;

  const T* q_bh = p.q.row(b, h, 0);
  const T* k_bh = p.k.row(b, h, 0);
  const T* v_bh = p.v.row(b, h, 0);
  const T* do_bh = p.dout.row(b, h, 0);

  const int e_begin = __ldg(p.layout.by_query.ptr + qb);
  const int n_tiles = 2 * (__ldg(p.layout.by_query.ptr + qb + 1) - e_begin);

  auto load_kv = [&](int stage, const KeySubTile& x) {
    load_rows_async<kBlockN, kChunks, kPitch, Tr::kThreads>(sK + stage * Tr::kKVElems, k_bh, p.k.stride_n, x.k0, N, tid);
    load_rows_async<kBlockN, kChunks, kPitch, Tr::kThreads>(sV + stage * Tr::kKVElems, v_bh, p.v.stride_n, x.k0, N, tid);
    load_subtile_mask_async(sMask + stage * Tr::kMaskWords, p.layout, x, tid);
  };

  // Q and dO rows q0..q0+127 (zero-filled past N).
  load_rows_async<Tr::kBlockM, kChunks, kPitch, Tr::kThreads>(sQ, q_bh, p.q.stride_n, q0, N, tid);
  load_rows_async<Tr::kBlockM, kChunks, kPitch, Tr::kThreads>(sdO, do_bh, p.dout.stride_n, q0, N, tid);
  KeySubTile cur{}, nxt{};
  if (n_tiles > 0) {
    cur = key_subtile(p.layout.by_query, e_begin, 0);
    load_kv(0, cur);
  }
  cp_async_commit();
  if (n_tiles > 1) nxt = key_subtile(p.layout.by_query, e_begin, 1);

  // This thread's rows warp*16 + g and + 8: the exponent base (+inf for rows that saw no key, and
  // rows past N, so that every P is 0 there) and delta.
  float base[2], delta[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int64_t row = q0 + warp * 16 + g + 8 * r;
    base[r] = row < N ? backward_base_log2(p.lse[bh * N + row]) : INFINITY;
    delta[r] = row < N ? p.delta[bh * N + row] : 0.0f;
  }

  // ldmatrix lane offsets, as in the portable forward (attention_fwd.cu).
  const int a_off = ((lane & 7) + ((lane >> 3) & 1) * 8) * kPitch + (lane >> 4) * 8;
  const int b_off = ((lane & 7) + (lane >> 4) * 8) * kPitch + ((lane >> 3) & 1) * 8;
  const uint32_t sQ_warp = smem_u32(sQ + warp * 16 * kPitch + a_off);
  const uint32_t sdO_warp = smem_u32(sdO + warp * 16 * kPitch + a_off);

  float dq[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.0f;

  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t & 1;
    cp_async_wait<0>();  // sub-tile t (and Q, dO) landed for this thread's copies
    __syncthreads();     // ... for everyone's; and everyone finished sub-tile t-1 (stage^1 free)
    if (t + 1 < n_tiles) {
      load_kv(stage ^ 1, nxt);
      cp_async_commit();
    }
    const KeySubTile now = cur;
    cur = nxt;
    if (t + 2 < n_tiles) nxt = key_subtile(p.layout.by_query, e_begin, t + 2);

    // P = exp2(S * scale * log2e - base): s[j][e] is (row g, key 8j + 2tq + e), s[j][2 + e] row g + 8.
    float s[8][4];
    warp_tile_abt<T, kD, kPitch>(s, sQ_warp, smem_u32(sK + stage * Tr::kKVElems + b_off));
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
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) s[j][e] = fast_exp2(s[j][e] - base[e >> 1]);  // -inf -> 0
    }

    // dS = P (dP - delta), dP = dO V^T (same fragment positions as S).
    float ds[8][4];
    warp_tile_abt<T, kD, kPitch>(ds, sdO_warp, smem_u32(sV + stage * Tr::kKVElems + b_off));
#pragma unroll
    for (int j = 0; j < 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) ds[j][e] = s[j][e] * (ds[j][e] - delta[e >> 1]);
    }

    // dQ += dS K (K by ldmatrix.trans).
    warp_tile_pb<T, kD, kPitch>(dq, ds, smem_u32(sK + stage * Tr::kKVElems + a_off));
  }

  // Epilogue: scale * dQ staged through this warp's own Q rows, 16-byte stores for rows < N (rows
  // that see no key get zeros).
  cp_async_wait<0>();
  __syncthreads();  // no cp.async into sQ still in flight; every warp done with its Q rows
  store_warp_rows<T, kD, kPitch>(dq, p.scale, p.scale, sQ + warp * 16 * kPitch, p.dq.row(b, h, 0), p.dq.stride_n,
                                 q0 + warp * 16, N, lane);
}

template <typename T, int kD>
void launch_dq_pass(const AttentionCall& call, cudaStream_t stream) {
  using Tr = DqPassTraits<kD>;
  const auto kernel = attention_dq_pass_kernel<T, kD>;
  static std::atomic<uint64_t> configured{0};
  ensure_smem_limit(reinterpret_cast<const void*>(kernel), Tr::kSmemBytes, configured);
  const dim3 grid(static_cast<unsigned>(call.layout.num_blocks), static_cast<unsigned>(call.shape.heads),
                  static_cast<unsigned>(call.shape.batch));
  kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(params_for<T>(call));
  check_launch("attention_dq_pass_kernel");
}

}  // namespace

void attention_dq_pass(int dtype, const AttentionCall& call, cudaStream_t stream) {
  dispatch_dtype_head_dim(dtype, call.shape.head_dim, [&](auto element, auto head_dim) {
    launch_dq_pass<typename decltype(element)::type, decltype(head_dim)::value>(call, stream);
  });
}

}  // namespace gpu
}  // namespace aim
