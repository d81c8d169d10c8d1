// Backward of the block-sparse attention (FlashAttention-2 style recompute, mma.sync m16n8k16,
// fp32 accumulation). Three launches on the caller's stream:
//   1. delta[b,h,n] = sum_d dout * out (fp32)
//   2. one CTA per (key tile of kKeys = 64 or 128 keys, head, batch), warp w owning keys
//      16w..16w+15 of the tile with its dK, dV rows in registers; the CTA walks the key block's
//      by_key list, each listed query block as two 64-query sub-tiles (double-buffered cp.async):
//      S^T = K Q^T, P^T = exp2(S^T*scale*log2e - lse*log2e) (masked -> 0), dV += P^T dO,
//      dP^T = V dO^T, dS^T = P^T (dP^T - delta), dK += dS^T Q, and dQ_accum += scale * dS K by fp32
//      atomics (dS goes through shared memory for the transposed operand);
//   3. dq = dq_accum converted to the element type.
// See NOTES.md beside this file.
#include "attention_parts.h"
#include "launch_common.cuh"
#include "mma_helpers.cuh"
#include "portable_tiles.cuh"

namespace aim {
namespace gpu {
namespace {

// Tile shape of the backward main kernel.
//  * kKeys keys per CTA (64 or 128; kBackwardKeys picks 128), one warp
//    per 16 keys: the S^T / dP^T tiles (16 keys x 64 queries) and the dK, dV accumulators
//    (16 x kD each) of a warp never leave its registers. kD = 128: 2*64 + 2*32 = 192 live fp32.
//  * kBlockM = 64 queries per step (half a layout block): S^T and dP^T are 32 registers each.
//  * dQ = dS K (64 queries x kD) is split over the warps as 4 query groups of 16 rows x
//    (kWarps / 4) column ranges, computed in chunks of <= 64 columns (32 accumulators).
//  * Shared memory: K, V (kKeys rows), 2 stages of Q, dO (64 rows), dS^T (kKeys x 64), 2 stages
//    of lse, delta (64 floats each) and of the mask words (64 query rows x kKeys/32 words); rows
//    padded by 16 bytes. kD = 128: 115712 bytes (kKeys = 64), 160768 bytes (kKeys = 128).
template <int kD, int kKeys>
struct BwdTraits {
  static constexpr int kBlockN = kKeys;
  static constexpr int kBlockM = 64;
  static constexpr int kWarps = kKeys / 16;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kPitch = padded_pitch(kD);
  static constexpr int kDsPitch = padded_pitch(kBlockM);
  static constexpr int kChunks = kD / 8;
  static constexpr int kKVElems = kBlockN * kPitch;
  static constexpr int kQElems = kBlockM * kPitch;  // one stage
  static constexpr int kDsElems = kBlockN * kDsPitch;
  static constexpr int kMaskWordsPerRow = kBlockN / 32;
  static constexpr int kMaskWords = kBlockM * kMaskWordsPerRow;  // one stage
  static constexpr int kSmemBytes =
      (2 * kKVElems + 4 * kQElems + kDsElems) * 2 + 2 * (2 * kBlockM) * 4 + 2 * kMaskWords * 4;
  // Queries per pass over the S^T/dP^T tiles: kD = 128 works on 32 queries at a time (2 x 16
  // fp32 registers instead of 2 x 32) to stay under 255 registers without spilling.
  static constexpr int kPass = kD == 128 ? 32 : 64;
  static constexpr int kDqSplit = kWarps / 4;
  static constexpr int kDqCols = kD / kDqSplit;
  static constexpr int kDqChunk = kDqCols < 64 ? kDqCols : 64;
  // 64 keys: 4 warps, 2 CTAs/SM (<= 255 registers). 128 keys: 8 warps, 1 CTA/SM.
  static constexpr int kMinBlocks = kKeys == 64 ? 2 : 1;
  static_assert(kKeys == 64 || kKeys == 128, "64 or 128 keys per CTA");
  static_assert(kMaskWords == kThreads, "one mask word per thread per stage");
  static_assert(kThreads >= 2 * kBlockM, "lse and delta: one float per thread");
  static_assert(2 * kQElems >= kKVElems, "dK/dV epilogue reuses the Q/dO stages");
  static_assert(kDqCols % kDqChunk == 0 && kDqChunk % 16 == 0, "dQ column chunks");
};

struct QTile {
  int64_t q0;  // first query token of the 64-query sub-tile
  int part;    // partial index (< 0: fully visible)
  int half;    // which half of the 128-query layout block
};

template <typename T, int kD, int kKeys>
__global__ void __launch_bounds__(BwdTraits<kD, kKeys>::kThreads, BwdTraits<kD, kKeys>::kMinBlocks)
    attention_bwd_kernel(const AttentionParams<T> p) {
  using Tr = BwdTraits<kD, kKeys>;
  constexpr int kPitch = Tr::kPitch;
  constexpr int kDsPitch = Tr::kDsPitch;
  constexpr int kChunks = Tr::kChunks;
  constexpr int kBlockM = Tr::kBlockM;
  constexpr int kW = Tr::kMaskWordsPerRow;
  constexpr int kTilesPerBlock = kLayoutBlock / kKeys;
  constexpr int kPass = Tr::kPass;

  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);        // [kKeys][kPitch]
  T* sV = sK + Tr::kKVElems;                     // [kKeys][kPitch]
  T* sQ = sV + Tr::kKVElems;                     // [2][64][kPitch]
  T* sdO = sQ + 2 * Tr::kQElems;                 // [2][64][kPitch]
  T* sdS = sdO + 2 * Tr::kQElems;                // [kKeys][kDsPitch]: dS^T, row = key, col = query
  float* sLse = reinterpret_cast<float*>(sdS + Tr::kDsElems);  // [2][64]
  float* sDelta = sLse + 2 * kBlockM;                           // [2][64]
  uint32_t* sMask = reinterpret_cast<uint32_t*>(sDelta + 2 * kBlockM);  // [2][64][kW]

  const int tile = blockIdx.x;
  const int h = blockIdx.y;
  const int b = blockIdx.z;
  const int kb = tile / kTilesPerBlock;
  const int khalf = tile % kTilesPerBlock;
  const int tid = threadIdx.x;
  const int warp = tid >> 5;
  const int lane = tid & 31;
  const int g = lane >> 2;
  const int tq = lane & 3;
  const int64_t N = p.tokens;
  const int64_t k0 = static_cast<int64_t>(kb) * kLayoutBlock + khalf * kKeys;
  const int64_t bh = static_cast<int64_t>(b) * p.heads + h;
  if (k0 >= N) return;  // the second 64-key half of a ragged last block can lie wholly past N

  const T* q_bh = p.q.row(b, h, 0);
  const T* k_bh = p.k.row(b, h, 0);
  const T* v_bh = p.v.row(b, h, 0);
  const T* do_bh = p.dout.row(b, h, 0);
  const float* lse_bh = p.lse + bh * N;
  const float* delta_bh = p.delta + bh * N;

  const int32_t* list_idx = p.layout.by_key.idx;
  const int32_t* list_part = p.layout.by_key.partial;
  const int e_begin = __ldg(p.layout.by_key.ptr + kb);
  const int n_tiles = 2 * (__ldg(p.layout.by_key.ptr + kb + 1) - e_begin);

  auto tile_at = [&](int t) {
    const int e = e_begin + (t >> 1);
    QTile x;
    x.half = t & 1;
    x.q0 = static_cast<int64_t>(__ldg(list_idx + e)) * kLayoutBlock + x.half * kBlockM;
    x.part = __ldg(list_part + e);
    return x;
  };

  // Q, dO rows q0..q0+63 (zero-filled past N), lse/delta of those rows (-inf / 0 past N, so that
  // P = 0 there even without the mask), and for a partial block the mask words of those 64 query
  // rows that cover this CTA's keys.
  auto load_q = [&](int stage, const QTile& x) {
    load_rows_async<kBlockM, kChunks, kPitch, Tr::kThreads>(sQ + stage * Tr::kQElems, q_bh, p.q.stride_n, x.q0, N, tid);
    load_rows_async<kBlockM, kChunks, kPitch, Tr::kThreads>(sdO + stage * Tr::kQElems, do_bh, p.dout.stride_n, x.q0, N,
                                                            tid);
    if (tid < 2 * kBlockM) {
      const int r = tid & (kBlockM - 1);
      const bool is_lse = tid < kBlockM;
      float* dst = (is_lse ? sLse : sDelta) + stage * kBlockM + r;
      if (x.q0 + r < N) {
        cp_async_4(smem_u32(dst), (is_lse ? lse_bh : delta_bh) + x.q0 + r);
      } else {
        *dst = is_lse ? -INFINITY : 0.0f;
      }
    }
    if (x.part >= 0) {
      const int r = tid / kW;
      const int w = tid % kW;
      const uint32_t* src = block_mask(p.layout, x.part) + (x.half * kBlockM + r) * kMaskWordsPerRow + khalf * kW + w;
      cp_async_4(smem_u32(sMask + stage * Tr::kMaskWords + tid), src);  // [stage][r][w], tid = r*kW + w
    }
  };

  // K, V rows of this CTA (zero-filled past N), then the first query sub-tile.
  load_rows_async<kKeys, kChunks, kPitch, Tr::kThreads>(sK, k_bh, p.k.stride_n, k0, N, tid);
  load_rows_async<kKeys, kChunks, kPitch, Tr::kThreads>(sV, v_bh, p.v.stride_n, k0, N, tid);
  QTile cur{}, nxt{};
  if (n_tiles > 0) {
    cur = tile_at(0);
    load_q(0, cur);
  }
  cp_async_commit();
  if (n_tiles > 1) nxt = tile_at(1);

  // Per-lane ldmatrix offsets (elements); see mma_helpers.cuh for the fragment layouts.
  //  a_off: A operand of a row-major tile (rows r0.., cols c0..), non-trans; with .trans the B
  //         operand of a row-major [k][n] tile (dO, Q for dV, dK; K for dQ).
  const int a_off = ((lane & 7) + ((lane >> 3) & 1) * 8) * kPitch + (lane >> 4) * 8;
  //  b_off: B operand from an [n][k] row-major tile (Q, dO with n = query, k = d), non-trans.
  const int b_off = ((lane & 7) + (lane >> 4) * 8) * kPitch + ((lane >> 3) & 1) * 8;
  //  ds_off: A operand dS[query][key] of dQ = dS K read with .trans from dS^T stored [key][query]:
  //  lane -> key row (lane&7) + 8*(lane>>4), query col 8*((lane>>3)&1).
  const int ds_off = ((lane & 7) + (lane >> 4) * 8) * kDsPitch + ((lane >> 3) & 1) * 8;

  const uint32_t sK_warp = smem_u32(sK + warp * 16 * kPitch + a_off);
  const uint32_t sV_warp = smem_u32(sV + warp * 16 * kPitch + a_off);
  const uint32_t sK_trans = smem_u32(sK + a_off);
  const int dq_group = warp & 3;      // query rows 16*dq_group.. of the sub-tile in dQ
  const int dq_cols = warp >> 2;      // column range of dQ
  const uint32_t sdS_a = smem_u32(sdS + ds_off + dq_group * 16);
  // This thread's rows of dS^T: keys warp*16 + g and + 8.
  uint32_t* sdS_row0 = reinterpret_cast<uint32_t*>(sdS + (warp * 16 + g) * kDsPitch + 2 * tq);
  uint32_t* sdS_row1 = reinterpret_cast<uint32_t*>(sdS + (warp * 16 + g + 8) * kDsPitch + 2 * tq);
  // Mask bits of this thread's keys: word (warp*16 + g) / 32 = warp / 2 of a query row, bit
  // (warp*16 + g) % 32 = 16*(warp&1) + g, and bit + 8 for key + 8 (same word).
  const int mask_word = warp >> 1;
  const int mask_shift = (warp & 1) * 16 + g;

  float dk_acc[kD / 8][4];
  float dv_acc[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) dk_acc[n][e] = dv_acc[n][e] = 0.0f;
  }

  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t & 1;
    cp_async_wait<0>();
    __syncthreads();  // sub-tile t landed for all; everyone is past sub-tile t-1's reads of stage^1
    if (t + 1 < n_tiles) {
      load_q(stage ^ 1, nxt);
      cp_async_commit();
    }
    const QTile now = cur;
    cur = nxt;
    if (t + 2 < n_tiles) nxt = tile_at(t + 2);

    const T* sQs = sQ + stage * Tr::kQElems;
    const T* sdOs = sdO + stage * Tr::kQElems;
    const float* sLse_s = sLse + stage * kBlockM;
    const float* sDelta_s = sDelta + stage * kBlockM;

    // The 64 queries in kPass-query passes (fewer live registers: S^T and dP^T are kPass/2 each).
#pragma unroll 1  // not unrolled: unrolling let ptxas hoist the second pass and spill (kD = 128, sm_90)
    for (int qp = 0; qp < kBlockM / kPass; ++qp) {
      const int qc = qp * kPass;  // first query (sub-tile local) of the pass

      // S^T = K_w Q^T: st[j][e] = (key g, query qc + 8j + 2tq + e), st[j][2 + e] = (key g + 8, same query).
      float st[kPass / 8][4];
#pragma unroll
      for (int j = 0; j < kPass / 8; ++j) st[j][0] = st[j][1] = st[j][2] = st[j][3] = 0.0f;
      {
        const uint32_t sQ_b = smem_u32(sQs + qc * kPitch + b_off);
#pragma unroll
        for (int kk = 0; kk < kD / 16; ++kk) {
          uint32_t a[4];
          ldmatrix_x4(a, sK_warp + kk * 16 * 2);
#pragma unroll
          for (int nn = 0; nn < kPass / 16; ++nn) {
            uint32_t bq[4];
            ldmatrix_x4(bq, sQ_b + (nn * 16 * kPitch + kk * 16) * 2);
            mma_16816<T>(st[2 * nn], a, bq[0], bq[1]);
            mma_16816<T>(st[2 * nn + 1], a, bq[2], bq[3]);
          }
        }
      }

      // P^T = exp2(S^T * scale*log2e - base(lse)); rows without keys have base +inf -> 0.
#pragma unroll
      for (int j = 0; j < kPass / 8; ++j) {
        probs_from_lse(st[j], *reinterpret_cast<const float2*>(sLse_s + qc + 8 * j + 2 * tq), p.scale_log2);
      }
      if (now.part >= 0) {
        const uint32_t* sMask_s = sMask + stage * Tr::kMaskWords;
#pragma unroll
        for (int j = 0; j < kPass / 8; ++j) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const uint32_t word = sMask_s[(qc + 8 * j + 2 * tq + e) * kW + mask_word] >> mask_shift;
            if (!(word & 1u)) st[j][e] = 0.0f;
            if (!((word >> 8) & 1u)) st[j][2 + e] = 0.0f;
          }
        }
      }

      // dV += P^T dO. A = P^T (keys x queries) straight from the C fragments; B = dO [query][d] (.trans).
      {
        const uint32_t sdO_t = smem_u32(sdOs + qc * kPitch + a_off);
#pragma unroll
        for (int kq = 0; kq < kPass / 16; ++kq) {
          uint32_t a[4];
          c_to_a<T>(a, st[2 * kq], st[2 * kq + 1]);
#pragma unroll
          for (int nd = 0; nd < kD / 16; ++nd) {
            uint32_t bd[4];
            ldmatrix_x4_trans(bd, sdO_t + (kq * 16 * kPitch + nd * 16) * 2);
            mma_16816<T>(dv_acc[2 * nd], a, bd[0], bd[1]);
            mma_16816<T>(dv_acc[2 * nd + 1], a, bd[2], bd[3]);
          }
        }
      }

      // dP^T = V_w dO^T (same fragment positions as st).
      float dp[kPass / 8][4];
#pragma unroll
      for (int j = 0; j < kPass / 8; ++j) dp[j][0] = dp[j][1] = dp[j][2] = dp[j][3] = 0.0f;
      {
        const uint32_t sdO_b = smem_u32(sdOs + qc * kPitch + b_off);
#pragma unroll
        for (int kk = 0; kk < kD / 16; ++kk) {
          uint32_t a[4];
          ldmatrix_x4(a, sV_warp + kk * 16 * 2);
#pragma unroll
          for (int nn = 0; nn < kPass / 16; ++nn) {
            uint32_t bd[4];
            ldmatrix_x4(bd, sdO_b + (nn * 16 * kPitch + kk * 16) * 2);
            mma_16816<T>(dp[2 * nn], a, bd[0], bd[1]);
            mma_16816<T>(dp[2 * nn + 1], a, bd[2], bd[3]);
          }
        }
      }

      // dS^T = P^T * (dP^T - delta[query]) (in place in dp).
#pragma unroll
      for (int j = 0; j < kPass / 8; ++j) {
        ds_from_dp(dp[j], st[j], *reinterpret_cast<const float2*>(sDelta_s + qc + 8 * j + 2 * tq));
      }

      // dK += dS^T Q (B = Q [query][d], .trans); the packed dS^T also goes to shared memory for dQ.
      {
        const uint32_t sQ_t = smem_u32(sQs + qc * kPitch + a_off);
#pragma unroll
        for (int kq = 0; kq < kPass / 16; ++kq) {
          uint32_t a[4];  // keys g, g + 8 (a0, a1), queries qc + 16kq + 2tq.. (a0, a1) and + 8 (a2, a3)
          c_to_a<T>(a, dp[2 * kq], dp[2 * kq + 1]);
          const int col32 = (qc + 16 * kq) / 2;  // uint32 index of query column qc + 16kq
          sdS_row0[col32] = a[0];
          sdS_row1[col32] = a[1];
          sdS_row0[col32 + 4] = a[2];
          sdS_row1[col32 + 4] = a[3];
#pragma unroll
          for (int nd = 0; nd < kD / 16; ++nd) {
            uint32_t bq[4];
            ldmatrix_x4_trans(bq, sQ_t + (kq * 16 * kPitch + nd * 16) * 2);
            mma_16816<T>(dk_acc[2 * nd], a, bq[0], bq[1]);
            mma_16816<T>(dk_acc[2 * nd + 1], a, bq[2], bq[3]);
          }
        }
      }
    }
    // dQ_accum[q0 + 16*dq_group.., cols] += scale * dS K: A = dS (.trans of dS^T), B = K [key][d] (.trans).
    // Without dq_accum (the deterministic backward) dq comes from attention_dq_pass_kernel instead;
    // the dS^T stores above stay unconditional, off the inner loop's critical path.
    if (p.dq_accum == nullptr) continue;
    __syncthreads();  // dS^T complete
    float* dqa_bh = p.dq_accum + bh * N * kD;
    const int64_t row0 = now.q0 + dq_group * 16 + g;
    const int64_t row1 = row0 + 8;
#pragma unroll
    for (int dc = 0; dc < Tr::kDqCols / Tr::kDqChunk; ++dc) {
      const int d_base = dq_cols * Tr::kDqCols + dc * Tr::kDqChunk;
      float acc[Tr::kDqChunk / 8][4];
#pragma unroll
      for (int n = 0; n < Tr::kDqChunk / 8; ++n) acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        uint32_t a[4];
        ldmatrix_x4_trans(a, sdS_a + kk * 16 * kDsPitch * 2);
#pragma unroll
        for (int nd = 0; nd < Tr::kDqChunk / 16; ++nd) {
          uint32_t bk[4];
          ldmatrix_x4_trans(bk, sK_trans + (kk * 16 * kPitch + d_base + nd * 16) * 2);
          mma_16816<T>(acc[2 * nd], a, bk[0], bk[1]);
          mma_16816<T>(acc[2 * nd + 1], a, bk[2], bk[3]);
        }
      }
#pragma unroll
      for (int n = 0; n < Tr::kDqChunk / 8; ++n) {
        const int col = d_base + n * 8 + 2 * tq;
        if (row0 < N) atomic_add2(dqa_bh + row0 * kD + col, acc[n][0] * p.scale, acc[n][1] * p.scale);
        if (row1 < N) atomic_add2(dqa_bh + row1 * kD + col, acc[n][2] * p.scale, acc[n][3] * p.scale);
      }
    }
  }

  // Epilogue: dK * scale and dV, staged through the (now idle) Q and dO stages, each warp its own
  // 16 rows, then 16-byte stores for keys < N. Keys no query sees get zeros.
  cp_async_wait<0>();
  __syncthreads();
  store_warp_rows<T, kD, kPitch>(dk_acc, p.scale, p.scale, sQ + warp * 16 * kPitch, p.dk.row(b, h, 0), p.dk.stride_n,
                                 k0 + warp * 16, N, lane);
  store_warp_rows<T, kD, kPitch>(dv_acc, 1.0f, 1.0f, sdO + warp * 16 * kPitch, p.dv.row(b, h, 0), p.dv.stride_n,
                                 k0 + warp * 16, N, lane);
}

// delta[r] = sum_d dout[r, d] * out[r, d] in fp32, r = (b*H + h)*N + n. kD/8 lanes per row, each
// one 16-byte vector of each tensor.
template <typename T, int kD>
__global__ void __launch_bounds__(256) attention_bwd_delta_kernel(TensorBHND<const T> out, TensorBHND<const T> dout,
                                                                  float* delta, int heads, int64_t tokens,
                                                                  int64_t rows) {
  constexpr int kLanes = kD / 8;
  constexpr int kRowsPerBlock = 256 / kLanes;
  const int sub = threadIdx.x % kLanes;
  const int local = threadIdx.x / kLanes;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock; first < rows;
       first += static_cast<int64_t>(gridDim.x) * kRowsPerBlock) {
    const int64_t r = first + local;
    float acc = 0.0f;
    if (r < rows) {
      const int64_t bh = r / tokens;
      const int64_t n = r - bh * tokens;
      const int64_t bb = bh / heads;
      const int64_t hh = bh - bb * heads;
      const uint4 o = *reinterpret_cast<const uint4*>(out.row(bb, hh, n) + sub * 8);
      const uint4 d = *reinterpret_cast<const uint4*>(dout.row(bb, hh, n) + sub * 8);
      const uint32_t ow[4] = {o.x, o.y, o.z, o.w};
      const uint32_t dw[4] = {d.x, d.y, d.z, d.w};
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float2 of = unpack2<T>(ow[i]);
        const float2 df = unpack2<T>(dw[i]);
        acc += of.x * df.x + of.y * df.y;
      }
    }
#pragma unroll
    for (int off = kLanes / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (r < rows && sub == 0) delta[r] = acc;
  }
}

// dq[b, h, n, :] = dq_accum[(b*H + h)*N + n, :] in the element type; 8 elements per thread.
template <typename T, int kD>
__global__ void __launch_bounds__(256) attention_bwd_dq_kernel(const float* dq_accum, TensorBHND<T> dq, int heads,
                                                               int64_t tokens, int64_t chunks) {
  constexpr int kRowChunks = kD / 8;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < chunks;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / kRowChunks;
    const int c = static_cast<int>(i - r * kRowChunks);
    const float4 lo = *reinterpret_cast<const float4*>(dq_accum + r * kD + c * 8);
    const float4 hi = *reinterpret_cast<const float4*>(dq_accum + r * kD + c * 8 + 4);
    uint4 v;
    v.x = pack2<T>(lo.x, lo.y);
    v.y = pack2<T>(lo.z, lo.w);
    v.z = pack2<T>(hi.x, hi.y);
    v.w = pack2<T>(hi.z, hi.w);
    const int64_t bh = r / tokens;
    const int64_t n = r - bh * tokens;
    const int64_t bb = bh / heads;
    const int64_t hh = bh - bb * heads;
    *reinterpret_cast<uint4*>(dq.row(bb, hh, n) + c * 8) = v;
  }
}

inline unsigned elementwise_grid(int64_t work, int64_t per_block) {
  const int64_t blocks = (work + per_block - 1) / per_block;
  return static_cast<unsigned>(blocks < (int64_t{1} << 20) ? blocks : (int64_t{1} << 20));
}

// Keys per backward CTA. 128 (8 warps, 1 CTA/SM) and 64 (4 warps, 2 CTAs/SM) measured the same on an
// H200 (16k-token AIM clip, bf16, 16 x 128: fwd+bwd 9.91 vs 9.97 ms, 2026-11-27), so only 128 is
// instantiated: half the Q/dO loads and dQ atomics per FLOP, and half the compile time.
constexpr int kBackwardKeys = 128;

template <typename T, int kD>
void launch_delta(const AttentionCall& call, cudaStream_t stream) {
  const int64_t rows = call.shape.batch * call.shape.heads * call.shape.tokens;
  constexpr int kRowsPerBlock = 256 / (kD / 8);
  attention_bwd_delta_kernel<T, kD><<<elementwise_grid(rows, kRowsPerBlock), 256, 0, stream>>>(
      call.out.as<const T>(), call.dout.as<const T>(), call.delta, static_cast<int>(call.shape.heads),
      call.shape.tokens, rows);
  check_launch("attention_bwd_delta_kernel");
}

template <typename T, int kD>
void launch_backward_main(const AttentionCall& call, cudaStream_t stream) {
  using Tr = BwdTraits<kD, kBackwardKeys>;
  const auto kernel = attention_bwd_kernel<T, kD, kBackwardKeys>;
  static std::atomic<uint64_t> configured{0};
  ensure_smem_limit(reinterpret_cast<const void*>(kernel), Tr::kSmemBytes, configured);
  const dim3 grid(static_cast<unsigned>(call.layout.num_blocks) * (kLayoutBlock / kBackwardKeys),
                  static_cast<unsigned>(call.shape.heads), static_cast<unsigned>(call.shape.batch));
  kernel<<<grid, Tr::kThreads, Tr::kSmemBytes, stream>>>(params_for<T>(call));
  check_launch("attention_bwd_kernel");
}

template <typename T, int kD>
void launch_dq_convert(const AttentionCall& call, cudaStream_t stream) {
  const int64_t chunks = call.shape.batch * call.shape.heads * call.shape.tokens * (kD / 8);
  attention_bwd_dq_kernel<T, kD><<<elementwise_grid(chunks, 256), 256, 0, stream>>>(
      call.dq_accum, call.dq.as<T>(), static_cast<int>(call.shape.heads), call.shape.tokens, chunks);
  check_launch("attention_bwd_dq_kernel");
}

}  // namespace

void attention_backward(int dtype, const AttentionShape& shape, StridedBHND q, StridedBHND k, StridedBHND v,
                        StridedBHND out, StridedBHND dout, const float* lse, StridedBHND dq, StridedBHND dk,
                        StridedBHND dv, float* delta, float* dq_accum, const LayoutView& layout,
                        bool deterministic, KernelChoice kernel, uintptr_t stream_handle) {
  check_arguments(dtype, shape, layout);
  if (shape.batch == 0 || shape.heads == 0 || shape.tokens == 0) return;
  if (!deterministic && dq_accum == nullptr) {
    throw std::invalid_argument("CUDA attention backward: dq_accum (a zeroed float32 (B, H, N, D) buffer) is "
                                "required unless deterministic=True");
  }
  const cudaStream_t stream = as_stream(stream_handle);
  AttentionCall call{shape, q, k, v, out, const_cast<float*>(lse), layout};
  call.dout = dout;
  call.dq = dq;
  call.dk = dk;
  call.dv = dv;
  call.delta = delta;
  call.dq_accum = deterministic ? nullptr : dq_accum;

  const bool sm90 = use_sm90_kernel(kernel, kHaveSm90Kernels, "backward");
  dispatch_dtype_head_dim(dtype, shape.head_dim, [&](auto element, auto head_dim) {
    launch_delta<typename decltype(element)::type, decltype(head_dim)::value>(call, stream);
  });
  bool launched = false;
#if defined(AIM_HAVE_SM90)
  if (sm90) {
    launched = attention_backward_sm90(dtype, call, kernel == KernelChoice::kSpecialised, stream);
  }
#else
  static_cast<void>(sm90);  // always false here: the call only rejected kernel=sm90
#endif
  if (!launched) {
    dispatch_dtype_head_dim(dtype, shape.head_dim, [&](auto element, auto head_dim) {
      launch_backward_main<typename decltype(element)::type, decltype(head_dim)::value>(call, stream);
    });
  }
  if (deterministic) {
    attention_dq_pass(dtype, call, stream);
  } else {
    dispatch_dtype_head_dim(dtype, shape.head_dim, [&](auto element, auto head_dim) {
      launch_dq_convert<typename decltype(element)::type, decltype(head_dim)::value>(call, stream);
    });
  }
}

}  // namespace gpu
}  // namespace aim
