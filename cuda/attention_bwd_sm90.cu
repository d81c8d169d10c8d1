// Hopper (sm_90a) backward of the block-sparse attention: the main kernel (dK, dV and the dQ
// atomics) with warpgroup MMA from shared memory, TMA loads and warp specialisation. Same outputs
// as attention_bwd_kernel in attention_bwd.cu, which stays the portable path and the fallback;
// attention_backward picks this one on compute capability 9.0 (its `kernel` argument, which Python
// takes from AIM_CUDA_BWD_KERNEL; see NOTES.md, "Hopper backward").
//
// One CTA per (128-key layout block, head, batch), 384 threads = 3 warpgroups:
//  * warpgroup 0, the producer, gives its registers up (setmaxnreg.dec); its first warp loads K and
//    V once (TMA), then for every step Q and dO (TMA) and lse, delta and the mask words (cp.async)
//    into a 2-stage ring: it waits for a stage's "empty" mbarrier, and the stage's "full" mbarrier
//    completes when the TMA bytes and the 32 lanes' cp.async copies have landed;
//  * warpgroups 1 and 2, the consumers, take the registers (setmaxnreg.inc); consumer w owns keys
//    64w..64w+63 of the block and keeps their dK, dV (64 x kD fp32) in registers over the whole
//    by_key list. Per step (sm90::BwdTiles: 64 queries for kD = 128, 128 for kD = 64):
//      S^T = K_w Q^T, dP^T = V_w dO^T            (wgmma, A and B from shared memory, K-major)
//      P^T = exp2(S^T * scale*log2e - lse*log2e), masked -> 0;  dS^T = P^T (dP^T - delta)
//      dV += P^T dO, dK += dS^T Q                 (wgmma, A = P^T, dS^T from registers, B N-major)
//      dS -> shared memory (stmatrix.trans), named barrier of both consumers,
//      dQ_tile = dS K (wgmma, both from shared memory), added to dq_accum with fp32 atomics.
//    Then the consumer releases the stage (every consumer thread arrives on "empty").
//  * epilogue: dK * scale and dV staged through the K and V tiles, 16-byte stores for keys < N.
// Every layout (tiles, descriptors, fragment ownership, the dS store, the pipeline phases) comes
// from aim/attention_sm90.h and is replayed in cuda/fragment_check_sm90_bwd.py.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "aim/attention_sm90.h"
#include "attention_parts.h"
#include "launch_common.cuh"
#include "mma_helpers.cuh"
#include "sm90_ptx.cuh"

#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ != 900 || !defined(__CUDA_ARCH_FEAT_SM90_ALL))
#error "attention_bwd_sm90.cu must be compiled for sm_90a only (-gencode=arch=compute_90a,code=sm_90a)"
#endif

namespace aim {
namespace gpu {
namespace {

using sm90::BwdTiles;
using sm90::desc_sw128;

// Registers per thread after the split: the producer keeps 24 (the minimum), each consumer takes
// 240; 128 x 24 + 256 x 240 = 64512 of the 65536 an SM has. The entry cap of 384 threads at one CTA
// per SM is 168.
constexpr int kProducerRegs = 24;
constexpr int kConsumerRegs = 240;

// Named barriers (0 is __syncthreads): both consumers' dS of a step stored; both consumers past
// their last wgmma (K and V tiles free for the epilogue); each consumer's staged dK/dV complete.
constexpr int kBarrierDsStored = 1;
constexpr int kBarrierMainloopDone = 2;
constexpr int kBarrierEpilogue = 3;  // + consumer index

template <typename T>
struct Sm90BwdArgs {
  CUtensorMap q, k, v, dout;  // 4-D (d, token, head, batch) maps, 128-byte swizzle, 64-column boxes
  AttentionParams<T> p;
};

// The producer warp: K and V once, then Q, dO, lse, delta and mask words for every step.
template <typename T, int kD>
__device__ __forceinline__ void produce(const Sm90BwdArgs<T>& args, uint32_t base, int lane, int kb, int h, int b,
                                        int e_begin, int n_steps) {
  using Tl = BwdTiles<kD>;
  const AttentionParams<T>& p = args.p;
  const uint32_t full_bar = base + Tl::kOffBarriers;
  const uint32_t empty_bar = full_bar + 8 * Tl::kStages;
  const uint32_t kv_bar = empty_bar + 8 * Tl::kStages;
  const int64_t N = p.tokens;
  const int64_t bh = static_cast<int64_t>(b) * p.heads + h;
  const float* lse_bh = p.lse + bh * N;
  const float* delta_bh = p.delta + bh * N;

  if (lane == 0) {
    prefetch_tensor_map(&args.q);
    prefetch_tensor_map(&args.k);
    prefetch_tensor_map(&args.v);
    prefetch_tensor_map(&args.dout);
  }
  if (n_steps == 0) return;
  if (lane == 0) {
    mbar_arrive_expect_tx(kv_bar, Tl::kKVTxBytes);
#pragma unroll
    for (int a = 0; a < Tl::kAtomsD; ++a) {
      const uint32_t off = a * sm90::atom_bytes(kLayoutBlock);
      tma_load_4d(base + Tl::kOffK + off, &args.k, kv_bar, a * sm90::kAtomCols, kb * kLayoutBlock, h, b);
      tma_load_4d(base + Tl::kOffV + off, &args.v, kv_bar, a * sm90::kAtomCols, kb * kLayoutBlock, h, b);
    }
  }
  for (int t = 0; t < n_steps; ++t) {
    const int s = sm90::stage_of(t, Tl::kStages);
    mbar_wait(empty_bar + 8 * s, sm90::empty_parity(t, Tl::kStages));
    const sm90::BwdStep step = sm90::bwd_step(t, Tl::kStepsPerBlock);
    const int e = e_begin + step.entry;
    const int q0 = __ldg(p.layout.by_key.idx + e) * kLayoutBlock + step.sub * Tl::kStepQueries;
    const int part = __ldg(p.layout.by_key.partial + e);
    if (lane == 0) {
      mbar_arrive_expect_tx(full_bar + 8 * s, Tl::kFullTxBytes);
#pragma unroll
      for (int a = 0; a < Tl::kAtomsD; ++a) {
        const uint32_t off = s * Tl::kQBytes + a * sm90::atom_bytes(Tl::kStepQueries);
        tma_load_4d(base + Tl::kOffQ + off, &args.q, full_bar + 8 * s, a * sm90::kAtomCols, q0, h, b);
        tma_load_4d(base + Tl::kOffDo + off, &args.dout, full_bar + 8 * s, a * sm90::kAtomCols, q0, h, b);
      }
    }
    // lse and delta of the step's rows; rows past N copy row N - 1 (their pairs are masked out:
    // a block touching the ragged end is always partial, so every P there is set to 0). The copy
    // loops stay rolled: the producer lives on 24 registers.
#pragma unroll 1
    for (int i = lane; i < Tl::kStepQueries; i += 32) {
      const int64_t row = q0 + i < N ? q0 + i : N - 1;
      cp_async_4(base + Tl::kOffLse + s * Tl::kVecBytes + i * 4, lse_bh + row);
      cp_async_4(base + Tl::kOffDelta + s * Tl::kVecBytes + i * 4, delta_bh + row);
    }
    if (part >= 0) {
      const uint32_t* src = block_mask(p.layout, part) + step.sub * Tl::kStepQueries * kMaskWordsPerRow;
#pragma unroll 1
      for (int i = lane; i < Tl::kStepQueries * kMaskWordsPerRow; i += 32) {
        cp_async_4(base + Tl::kOffMask + s * Tl::kMaskBytes + i * 4, src + i);
      }
    }
    cp_async_arrive_noinc(full_bar + 8 * s);
  }
  cp_async_wait_all();
}

// A consumer warpgroup (w = 0, 1): keys 64w..64w+63 of the block.
template <typename T, int kD>
__device__ __forceinline__ void consume(const AttentionParams<T>& p, uint32_t base, unsigned char* smem, int w,
                                        int t_wg, int kb, int h, int b, int e_begin, int n_steps) {
  using Tl = BwdTiles<kD>;
  constexpr int kM = Tl::kStepQueries;
  constexpr int kChunks = kD / 8;
  const uint32_t full_bar = base + Tl::kOffBarriers;
  const uint32_t empty_bar = full_bar + 8 * Tl::kStages;
  const uint32_t kv_bar = empty_bar + 8 * Tl::kStages;
  const uint32_t sK = base + Tl::kOffK;
  const uint32_t sV = base + Tl::kOffV;
  const int64_t N = p.tokens;
  const int64_t bh = static_cast<int64_t>(b) * p.heads + h;
  const int lane = t_wg & 31;
  const int tq = lane & 3;
  const int key0 = 64 * w + 16 * (t_wg >> 5);  // this warp's first key (block-local)
  // Mask bits of this thread's keys key0 + g (bit mask_shift) and key0 + g + 8 (bit + 8), same word.
  const int mask_word = sm90::key_mask_word(key0 + (lane >> 2));
  const int mask_shift = sm90::key_mask_shift(key0 + (lane >> 2));
  const bool with_dq = p.dq_accum != nullptr;

  float dk[kD / 8][4];
  float dv[kD / 8][4];
#pragma unroll
  for (int n = 0; n < kD / 8; ++n) {
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.0f;
  }
  if (n_steps > 0) mbar_wait(kv_bar, 0);

  for (int t = 0; t < n_steps; ++t) {
    const int s = sm90::stage_of(t, Tl::kStages);
    const sm90::BwdStep step = sm90::bwd_step(t, Tl::kStepsPerBlock);
    const int e = e_begin + step.entry;
    const int q0 = __ldg(p.layout.by_key.idx + e) * kLayoutBlock + step.sub * kM;
    const int part = __ldg(p.layout.by_key.partial + e);
    const uint32_t sQ = base + Tl::kOffQ + s * Tl::kQBytes;
    const uint32_t sdO = base + Tl::kOffDo + s * Tl::kQBytes;
    const uint32_t sdS = base + Tl::kOffDs + s * Tl::kDsBytes;
    const float* sLse = reinterpret_cast<const float*>(smem + Tl::kOffLse + s * Tl::kVecBytes);
    const float* sDelta = reinterpret_cast<const float*>(smem + Tl::kOffDelta + s * Tl::kVecBytes);
    const uint32_t* sMask = reinterpret_cast<const uint32_t*>(smem + Tl::kOffMask + s * Tl::kMaskBytes);
    mbar_wait(full_bar + 8 * s, sm90::full_parity(t, Tl::kStages));

    // S^T = K_w Q^T and dP^T = V_w dO^T: 64 keys x kM queries each, kD/16 k-steps.
    float st[kM / 8][4];
    float dpt[kM / 8][4];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      Wgmma<T, kM>::template ss<0>(st, desc_sw128(sK + sm90::kmajor_start(kLayoutBlock, 64 * w, kk), 16, sm90::kGroupBytes),
                                   desc_sw128(sQ + sm90::kmajor_start(kM, 0, kk), 16, sm90::kGroupBytes), kk > 0);
    }
    wgmma_commit();
#pragma unroll
    for (int kk = 0; kk < kD / 16; ++kk) {
      Wgmma<T, kM>::template ss<0>(dpt, desc_sw128(sV + sm90::kmajor_start(kLayoutBlock, 64 * w, kk), 16, sm90::kGroupBytes),
                                   desc_sw128(sdO + sm90::kmajor_start(kM, 0, kk), 16, sm90::kGroupBytes), kk > 0);
    }
    wgmma_commit();

    // P^T while dP^T is still in flight. st[j][c] is (key key0 + g + 8(c >> 1), query 8j + 2tq + (c & 1))
    // (sm90::acc_row / acc_col); rows that saw no key have base +inf, so P = 0.
    wgmma_wait<1>();
    fence_regs(st);
#pragma unroll
    for (int j = 0; j < kM / 8; ++j) {
      probs_from_lse(st[j], *reinterpret_cast<const float2*>(sLse + 8 * j + 2 * tq), p.scale_log2);
    }
    if (part >= 0) {
#pragma unroll
      for (int j = 0; j < kM / 8; ++j) {
#pragma unroll
        for (int c = 0; c < 2; ++c) {
          const uint32_t word = sMask[(8 * j + 2 * tq + c) * kMaskWordsPerRow + mask_word] >> mask_shift;
          if (!(word & 1u)) st[j][c] = 0.0f;
          if (!((word >> 8) & 1u)) st[j][2 + c] = 0.0f;
        }
      }
    }
    wgmma_wait<0>();
    fence_regs(dpt);
#pragma unroll
    for (int j = 0; j < kM / 8; ++j) {
      ds_from_dp(dpt[j], st[j], *reinterpret_cast<const float2*>(sDelta + 8 * j + 2 * tq));
    }

    // P^T and dS^T as register-A operands (k-step kq = queries 16kq..16kq+15): register
    // sm90::acc_to_a_reg(j, h) of k-step j / 2 = accumulator pair (j, 2h..2h+1).
    uint32_t pa[kM / 16][4];
    uint32_t dsa[kM / 16][4];
#pragma unroll
    for (int j = 0; j < kM / 8; ++j) {
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        pa[sm90::acc_to_a_kstep(j)][sm90::acc_to_a_reg(j, hh)] = pack2<T>(st[j][2 * hh], st[j][2 * hh + 1]);
        dsa[sm90::acc_to_a_kstep(j)][sm90::acc_to_a_reg(j, hh)] = pack2<T>(dpt[j][2 * hh], dpt[j][2 * hh + 1]);
      }
    }
    // dS (queries x keys, K-major for dQ = dS K): this warp's 16 keys of every query, transposed.
    if (with_dq) {
#pragma unroll
      for (int kq = 0; kq < kM / 16; ++kq) stmatrix_x4_trans(sdS + sm90::stmatrix_trans_row(kM, key0, kq, lane), dsa[kq]);
      fence_proxy_async();
    }

    // dV += P^T dO and dK += dS^T Q: B = dO, Q (queries x d, d contiguous: N-major).
    fence_regs(pa);
    fence_regs(dsa);
    fence_regs(dv);
    fence_regs(dk);
    wgmma_fence();
#pragma unroll
    for (int kq = 0; kq < kM / 16; ++kq) {
      Wgmma<T, kD>::rs(dv, pa[kq], desc_sw128(sdO + sm90::mnmajor_start(kM, 0, kq), sm90::atom_bytes(kM), sm90::kGroupBytes), 1);
    }
#pragma unroll
    for (int kq = 0; kq < kM / 16; ++kq) {
      Wgmma<T, kD>::rs(dk, dsa[kq], desc_sw128(sQ + sm90::mnmajor_start(kM, 0, kq), sm90::atom_bytes(kM), sm90::kGroupBytes), 1);
    }
    wgmma_commit();

    if (with_dq) {
      // dQ tile (64 x 64) of this consumer = dS[rows dq_row0.., all 128 keys] K[all keys, cols dq_col0..]:
      // A = dS K-major, B = K N-major (keys x d, d contiguous).
      named_barrier_sync<kBarrierDsStored, 256>();
      float dq[8][4];
      wgmma_fence();  // dq's registers held other values since the last fence
#pragma unroll
      for (int kk = 0; kk < kLayoutBlock / 16; ++kk) {
        Wgmma<T, 64>::template ss<1>(
            dq, desc_sw128(sdS + sm90::kmajor_start(kM, Tl::dq_row0(w), kk), 16, sm90::kGroupBytes),
            desc_sw128(sK + sm90::mnmajor_start(kLayoutBlock, Tl::dq_col0(w), kk), sm90::atom_bytes(kLayoutBlock),
                       sm90::kGroupBytes),
            kk > 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      fence_regs(dq);
      float* dqa = p.dq_accum + (bh * N + q0 + Tl::dq_row0(w)) * kD + Tl::dq_col0(w);
#pragma unroll
      for (int hh = 0; hh < 2; ++hh) {
        const int row = sm90::acc_row(t_wg, 2 * hh);
        if (q0 + Tl::dq_row0(w) + row < N) {
#pragma unroll
          for (int j = 0; j < 8; ++j) {
            atomic_add2(dqa + static_cast<int64_t>(row) * kD + sm90::acc_col(t_wg, j, 0), dq[j][2 * hh] * p.scale,
                        dq[j][2 * hh + 1] * p.scale);
          }
        }
      }
    } else {
      wgmma_wait<0>();
    }
    fence_regs(dv);
    fence_regs(dk);
    fence_regs(pa);
    fence_regs(dsa);
    mbar_arrive(empty_bar + 8 * s);  // this thread is done with stage s (its wgmmas have completed)
  }

  // Epilogue: dK * scale and dV staged in this consumer's own 64 rows of the K and V tiles (no
  // wgmma reads them any more), then 16-byte stores for keys < N; keys no query sees get zeros.
  named_barrier_sync<kBarrierMainloopDone, 256>();
#pragma unroll
  for (int j = 0; j < kD / 8; ++j) {
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int row = 64 * w + sm90::acc_row(t_wg, 2 * hh);
      const uint32_t off = sm90::sw128_offset(kLayoutBlock, row, sm90::acc_col(t_wg, j, 0));
      *reinterpret_cast<uint32_t*>(smem + Tl::kOffK + off) =
          pack2<T>(dk[j][2 * hh] * p.scale, dk[j][2 * hh + 1] * p.scale);
      *reinterpret_cast<uint32_t*>(smem + Tl::kOffV + off) = pack2<T>(dv[j][2 * hh], dv[j][2 * hh + 1]);
    }
  }
  if (w == 0) {
    named_barrier_sync<kBarrierEpilogue, 128>();
  } else {
    named_barrier_sync<kBarrierEpilogue + 1, 128>();
  }
  T* dk_bh = p.dk.row(b, h, 0);
  T* dv_bh = p.dv.row(b, h, 0);
  const int64_t k0 = static_cast<int64_t>(kb) * kLayoutBlock + 64 * w;
#pragma unroll
  for (int i = t_wg; i < 64 * kChunks; i += 128) {
    const int r = i / kChunks;
    const int c = i % kChunks;
    if (k0 + r < N) {
      const uint32_t off = sm90::sw128_offset(kLayoutBlock, 64 * w + r, c * 8);
      *reinterpret_cast<uint4*>(dk_bh + (k0 + r) * p.dk.stride_n + c * 8) =
          *reinterpret_cast<const uint4*>(smem + Tl::kOffK + off);
      *reinterpret_cast<uint4*>(dv_bh + (k0 + r) * p.dv.stride_n + c * 8) =
          *reinterpret_cast<const uint4*>(smem + Tl::kOffV + off);
    }
  }
}

template <typename T, int kD>
__global__ void __launch_bounds__(BwdTiles<kD>::kThreads, 1)
    attention_bwd_sm90_kernel(const __grid_constant__ Sm90BwdArgs<T> args) {
  using Tl = BwdTiles<kD>;
  extern __shared__ __align__(1024) unsigned char smem_raw[];
  const uint32_t raw_addr = smem_u32(smem_raw);
  const uint32_t base = (raw_addr + 1023u) & ~1023u;  // swizzled tiles need 1024-byte alignment
  unsigned char* smem = smem_raw + (base - raw_addr);

  const int kb = blockIdx.x;
  const int h = blockIdx.y;
  const int b = blockIdx.z;
  const int tid = threadIdx.x;
  const int e_begin = __ldg(args.p.layout.by_key.ptr + kb);
  const int n_steps = (__ldg(args.p.layout.by_key.ptr + kb + 1) - e_begin) * Tl::kStepsPerBlock;

  if (tid == 0) {
    const uint32_t full_bar = base + Tl::kOffBarriers;
#pragma unroll
    for (int s = 0; s < Tl::kStages; ++s) {
      mbar_init(full_bar + 8 * s, Tl::kFullArrivals);
      mbar_init(full_bar + 8 * (Tl::kStages + s), Tl::kEmptyArrivals);
    }
    mbar_init(full_bar + 8 * 2 * Tl::kStages, 1);
    fence_mbar_init();
  }
  __syncthreads();

  if (tid < 128) {  // the producer warpgroup; only its first warp has work
    warpgroup_regs_decrease<kProducerRegs>();
    if (tid < 32) produce<T, kD>(args, base, tid, kb, h, b, e_begin, n_steps);
  } else {
    warpgroup_regs_increase<kConsumerRegs>();
    consume<T, kD>(args.p, base, smem, (tid >> 7) - 1, tid & 127, kb, h, b, e_begin, n_steps);
  }
}

// ---- host side -----------------------------------------------------------------------------------

using EncodeTiled = PFN_cuTensorMapEncodeTiled_v12000;

// cuTensorMapEncodeTiled from the driver, through the runtime (the module links cudart only).
EncodeTiled tensor_map_encoder() {
  static const EncodeTiled fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
    const cudaError_t err = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &found);
#else
    const cudaError_t err = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &f, cudaEnableDefault, &found);
#endif
    return err == cudaSuccess && found == cudaDriverEntryPointSuccess ? reinterpret_cast<EncodeTiled>(f) : nullptr;
  }();
  return fn;
}

// A (B, H, N, D) tensor as a 4-D tensor map (d, token, head, batch), 64-column x `box_rows` boxes
// with the 128-byte swizzle. Returns an empty string or why it cannot be built.
template <typename T>
std::string encode_bhnd(CUtensorMap* map, const char* name, const StridedBHND& t, const AttentionShape& shape,
                        int box_rows) {
  const std::string who = std::string("TMA map of ") + name + ": ";
  if (t.data % 16 != 0) return who + "data pointer is not 16-byte aligned";
  int64_t strides[3] = {t.stride_n, t.stride_h, t.stride_b};
  const int64_t sizes[3] = {shape.tokens, shape.heads, shape.batch};
  int64_t span = shape.head_dim;  // elements the dims so far reach; a size-1 dim gets that as its stride
  for (int i = 0; i < 3; ++i) {
    if (sizes[i] == 1) strides[i] = span;
    if (strides[i] <= 0 || strides[i] % 8 != 0 || strides[i] * 2 >= (int64_t{1} << 40)) {
      return who + "stride " + std::to_string(strides[i]) + " (elements) is not a positive multiple of 8 below 2^39";
    }
    span = std::max(span, strides[i] * sizes[i]);
  }
  if (shape.tokens >= (int64_t{1} << 31)) return who + "more than 2^31 tokens";
  const EncodeTiled encode = tensor_map_encoder();
  if (encode == nullptr) return who + "the driver has no cuTensorMapEncodeTiled";
  const cuuint64_t dims[4] = {static_cast<cuuint64_t>(shape.head_dim), static_cast<cuuint64_t>(shape.tokens),
                              static_cast<cuuint64_t>(shape.heads), static_cast<cuuint64_t>(shape.batch)};
  const cuuint64_t byte_strides[3] = {static_cast<cuuint64_t>(strides[0] * 2), static_cast<cuuint64_t>(strides[1] * 2),
                                      static_cast<cuuint64_t>(strides[2] * 2)};
  const cuuint32_t box[4] = {static_cast<cuuint32_t>(sm90::kAtomCols), static_cast<cuuint32_t>(box_rows), 1, 1};
  const cuuint32_t element_strides[4] = {1, 1, 1, 1};
  const CUtensorMapDataType type =
      std::is_same<T, __nv_bfloat16>::value ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  const CUresult res = encode(map, type, 4, reinterpret_cast<void*>(t.data), dims, byte_strides, box, element_strides,
                              CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (res != CUDA_SUCCESS) return who + "cuTensorMapEncodeTiled failed (CUresult " + std::to_string(res) + ")";
  return std::string();
}

template <typename T, int kD>
bool launch_bwd_sm90(const AttentionCall& call, bool required, cudaStream_t stream) {
  using Tl = BwdTiles<kD>;
  Sm90BwdArgs<T> args;
  std::string why = encode_bhnd<T>(&args.q, "q", call.q, call.shape, Tl::kStepQueries);
  if (why.empty()) why = encode_bhnd<T>(&args.dout, "dout", call.dout, call.shape, Tl::kStepQueries);
  if (why.empty()) why = encode_bhnd<T>(&args.k, "k", call.k, call.shape, kLayoutBlock);
  if (why.empty()) why = encode_bhnd<T>(&args.v, "v", call.v, call.shape, kLayoutBlock);
  if (!why.empty()) {
    if (required) {
      throw std::invalid_argument("CUDA attention: the sm90 backward was asked for, but cannot run these inputs: " +
                                  why);
    }
    static std::atomic<bool> told{false};
    if (!told.exchange(true)) {
      std::fprintf(stderr, "aim: the Hopper attention backward cannot run these inputs (%s); using the portable one\n",
                   why.c_str());
    }
    return false;
  }
  args.p = params_for<T>(call);
  const auto kernel = attention_bwd_sm90_kernel<T, kD>;
  static std::atomic<uint64_t> configured{0};
  ensure_smem_limit(reinterpret_cast<const void*>(kernel), Tl::kSmemBytes, configured);
  const dim3 grid(static_cast<unsigned>(call.layout.num_blocks), static_cast<unsigned>(call.shape.heads),
                  static_cast<unsigned>(call.shape.batch));
  kernel<<<grid, Tl::kThreads, Tl::kSmemBytes, stream>>>(args);
  check_launch("attention_bwd_sm90_kernel");
  return true;
}

}  // namespace

bool attention_backward_sm90(int dtype, const AttentionCall& call, bool required, cudaStream_t stream) {
  bool launched = false;
  dispatch_dtype_head_dim(dtype, call.shape.head_dim, [&](auto element, auto head_dim) {
    launched = launch_bwd_sm90<typename decltype(element)::type, decltype(head_dim)::value>(call, required, stream);
  });
  return launched;
}

}  // namespace gpu
}  // namespace aim
