// CPU kernels of block-sparse attention: forward and backward over the block map of
// aim/attention_layout.h. See csrc/NOTES.md for the design and what limits the speed.
//
// Every 128-token block of q, k, v (any dtype, any row stride) is first converted into a float32
// scratch tile; all math then runs on such tiles with register-blocked micro-kernels
// (aim/cpu_kernels.h), chosen per call by the caller's KernelChoice: AVX2+FMA where the processor
// has it (auto, specialised), portable C++ otherwise.
//
// Forward, one task per (batch, head, query block), keys ascending (by_query):
//   St[key][query] = K Q^T           (Q^T packed once per task, pre-scaled by scale*log2(e))
//   online softmax down the key axis (vectorised over queries), P^T kept in St
//   O[query] = alpha * O + P V       (P^T read as a column-major left operand)
// Backward, per pair (query block, key block), recomputing P from lse:
//   S = Q K^T, P = exp2(S*scale*log2e - lse*log2e), dP = dO V^T, dS = P (dP - delta)
//   dV += P^T dO, dK += dS^T Q, dQ += dS K     (K^T, V^T packed once per key block)
// dK/dV of a key block are summed over its query blocks (by_key) by one task; dQ of a query block
// over its key blocks in ascending order, by one task: no atomics, a fixed order, so the results
// are bitwise reproducible whatever the thread count or schedule.
#include "attention_cpu.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "aim/cpu_kernels.h"

namespace aim {
namespace cpu {
namespace {

using kern::ALayout;

constexpr int kB = kLayoutBlock;  // 128
// Row stride (floats) of the 128-wide score tiles and of packed K^T / V^T / Q^T: 144 = 9 cache
// lines, so walking down a column does not hit one L1 set (128 floats = 512 bytes would).
constexpr int kLdS = 144;

// Row stride of head_dim-wide tiles: a multiple of 16 floats, an odd number of cache lines.
int ld_for(int Dp) {
  int ld = (Dp + 15) / 16 * 16;
  if ((ld / 16) % 2 == 0) ld += 16;
  return ld;
}

int round8(int x) { return (x + 7) / 8 * 8; }

// Asks for n rows of `row_bytes` bytes, `stride_bytes` apart, to be brought into the cache: the
// next block's rows, requested before the current block's math so that their loads overlap it.
void prefetch_rows(const void* p, int64_t stride_bytes, int n, int64_t row_bytes) {
  const char* c = static_cast<const char*>(p);
  for (int r = 0; r < n; ++r, c += stride_bytes)
    for (int64_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(c + o, 0, 2);
}

size_t elem_size(int dtype) { return dtype == kFloat32 ? 4 : 2; }

// Address of row n of (b, h) in a strided tensor.
const void* row_ptr(const StridedBHND& t, int dtype, int64_t b, int64_t h, int64_t n) {
  const int64_t off = b * t.stride_b + h * t.stride_h + n * t.stride_n;
  return reinterpret_cast<const char*>(t.data) + off * static_cast<int64_t>(elem_size(dtype));
}
void* row_ptr_mut(const StridedBHND& t, int dtype, int64_t b, int64_t h, int64_t n) {
  return const_cast<void*>(row_ptr(t, dtype, b, h, n));
}

// 64-byte aligned float buffer.
struct FloatBuffer {
  float* p = nullptr;
  explicit FloatBuffer(size_t n) {
    const size_t bytes = std::max<size_t>(64, (n * sizeof(float) + 63) / 64 * 64);
    p = static_cast<float*>(::operator new(bytes, std::align_val_t(64)));
  }
  ~FloatBuffer() { ::operator delete(p, std::align_val_t(64)); }
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
};

// Carves per-thread scratch out of one allocation (sizes rounded up to 16 floats).
struct Carver {
  float* base;
  size_t used = 0;
  float* take(size_t n) {
    float* r = base + used;
    used += (n + 15) / 16 * 16;
    return r;
  }
};

// dst[d][r] = src[r][d] for r < n, 0 for n <= r < npad.
void transpose_pad(const float* src, int lds, int n, int D, float* dst, int ldd, int npad) {
  for (int r = 0; r < n; ++r) {
    const float* s = src + static_cast<ptrdiff_t>(r) * lds;
    for (int d = 0; d < D; ++d) dst[static_cast<ptrdiff_t>(d) * ldd + r] = s[d];
  }
  for (int d = 0; d < D; ++d)
    for (int r = n; r < npad; ++r) dst[static_cast<ptrdiff_t>(d) * ldd + r] = 0.0f;
}

void check_args(int dtype, const AttentionShape& s, const LayoutView& layout) {
  if (dtype < kFloat32 || dtype > kBFloat16) throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
  if (s.head_dim < 1 || s.head_dim > 256)
    throw std::invalid_argument("head_dim must be in 1..256 on CPU, got " + std::to_string(s.head_dim));
  if (s.batch < 0 || s.heads < 0 || s.tokens < 0) throw std::invalid_argument("negative shape");
  if (layout.num_tokens != s.tokens)
    throw std::invalid_argument("layout num_tokens " + std::to_string(layout.num_tokens) +
                                " != tokens " + std::to_string(s.tokens));
  const int64_t nb = (s.tokens + kB - 1) / kB;
  if (layout.num_blocks != nb)
    throw std::invalid_argument("layout num_blocks " + std::to_string(layout.num_blocks) +
                                " != ceil(tokens / 128) = " + std::to_string(nb));
}

// Transposed bit masks: maskT[p][key][w] bit (query % 32) of word query / 32. The forward's score
// tile is key-major, so it needs the query bits of one key together.
std::vector<uint32_t> transpose_masks(const LayoutView& layout) {
  const int nb = layout.num_blocks;
  const int64_t nnz = layout.by_query.ptr[nb];
  int64_t num_partial = 0;
  for (int64_t e = 0; e < nnz; ++e)
    num_partial = std::max<int64_t>(num_partial, int64_t{layout.by_query.partial[e]} + 1);
  std::vector<uint32_t> out(static_cast<size_t>(num_partial) * kMaskWordsPerBlock, 0u);
  uint32_t* o = out.data();
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < num_partial; ++p) {
    const uint32_t* m = block_mask(layout, static_cast<int32_t>(p));
    uint32_t* t = o + p * kMaskWordsPerBlock;
    for (int q = 0; q < kB; ++q)
      for (int w = 0; w < kMaskWordsPerRow; ++w) {
        uint32_t bits = m[q * kMaskWordsPerRow + w];
        while (bits) {
          const int k = w * 32 + __builtin_ctz(bits);
          bits &= bits - 1;
          t[k * kMaskWordsPerRow + (q >> 5)] |= 1u << (q & 31);
        }
      }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Forward.

template <class Isa>
void forward_impl(int dtype, const AttentionShape& s, const StridedBHND& q, const StridedBHND& k,
                  const StridedBHND& v, const StridedBHND& out, float* lse,
                  const LayoutView& layout) {
  const int64_t B = s.batch, H = s.heads, N = s.tokens;
  const int D = static_cast<int>(s.head_dim);
  const int Dp = round8(D);
  const int ldD = ld_for(Dp);
  const int nb = layout.num_blocks;
  const int64_t tasks = B * H * nb;
  if (tasks == 0) return;
  const float c = s.scale * kLog2e;

  const std::vector<uint32_t> maskT = transpose_masks(layout);

  const size_t per_thread = 4 * static_cast<size_t>(kB) * ldD  // Qrows, Krows, Vrows, O
                            + static_cast<size_t>(D) * kLdS     // Qt
                            + static_cast<size_t>(kB) * kLdS    // St
                            + 4 * kB + 64;                      // m, l, alpha, spare
  const int nthreads = std::max(1, static_cast<int>(std::min<int64_t>(omp_get_max_threads(), tasks)));
  FloatBuffer scratch(per_thread * nthreads + 16 * nthreads);

#pragma omp parallel num_threads(nthreads)
  {
    Carver cv{scratch.p + (per_thread + 16) * omp_get_thread_num()};
    float* Qr = cv.take(static_cast<size_t>(kB) * ldD);
    float* Kr = cv.take(static_cast<size_t>(kB) * ldD);
    float* Vr = cv.take(static_cast<size_t>(kB) * ldD);
    float* O = cv.take(static_cast<size_t>(kB) * ldD);
    float* Qt = cv.take(static_cast<size_t>(D) * kLdS);
    float* St = cv.take(static_cast<size_t>(kB) * kLdS);
    float* m = cv.take(kB);
    float* l = cv.take(kB);
    float* alpha = cv.take(kB);

#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      const int64_t bh = t / nb;
      const int qb = static_cast<int>(t % nb);
      const int64_t b = bh / H, h = bh % H;
      const int64_t q0 = int64_t{qb} * kB;
      const int nq = static_cast<int>(std::min<int64_t>(kB, N - q0));
      const int nqp = round8(nq);
      float* lse_row = lse + bh * N + q0;
      const int32_t e0 = layout.by_query.ptr[qb], e1 = layout.by_query.ptr[qb + 1];
      if (e0 == e1) {
        for (int i = 0; i < nq; ++i) lse_row[i] = -INFINITY;
        std::fill(O, O + static_cast<size_t>(nq) * ldD, 0.0f);
        Isa::store_rows(dtype, O, ldD, nq, D, row_ptr_mut(out, dtype, b, h, q0), out.stride_n,
                        nullptr, 1.0f);
        continue;
      }
      Isa::load_rows(dtype, row_ptr(q, dtype, b, h, q0), q.stride_n, nq, D, Dp, Qr, ldD, c);
      transpose_pad(Qr, ldD, nq, D, Qt, kLdS, nqp);
      for (int i = 0; i < nqp; ++i) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
      }
      std::fill(O, O + static_cast<size_t>(nqp) * ldD, 0.0f);
      for (int32_t e = e0; e < e1; ++e) {
        const int kb = layout.by_query.idx[e];
        const int32_t part = layout.by_query.partial[e];
        const int64_t k0 = int64_t{kb} * kB;
        const int nk = static_cast<int>(std::min<int64_t>(kB, N - k0));
        Isa::load_rows(dtype, row_ptr(k, dtype, b, h, k0), k.stride_n, nk, D, Dp, Kr, ldD, 1.0f);
        Isa::load_rows(dtype, row_ptr(v, dtype, b, h, k0), v.stride_n, nk, D, Dp, Vr, ldD, 1.0f);
        if (e + 1 < e1) {
          const int64_t k1 = int64_t{layout.by_query.idx[e + 1]} * kB;
          const int n1 = static_cast<int>(std::min<int64_t>(kB, N - k1));
          const int64_t es = static_cast<int64_t>(elem_size(dtype));
          prefetch_rows(row_ptr(k, dtype, b, h, k1), k.stride_n * es, n1, D * es);
          prefetch_rows(row_ptr(v, dtype, b, h, k1), v.stride_n * es, n1, D * es);
        }
        // St[key][query] = K (Q*c)^T
        Isa::template gemm<ALayout::kRows, false>(nk, nqp, D, Kr, ldD, Qt, kLdS, St, kLdS);
        Isa::fwd_softmax_cols(St, kLdS, nk, nqp,
                              part >= 0 ? maskT.data() + int64_t{part} * kMaskWordsPerBlock : nullptr,
                              m, l, alpha);
        Isa::scale_rows(O, ldD, nq, Dp, alpha);
        // O[query] += sum_key P^T[key][query] V[key]
        Isa::template gemm<ALayout::kCols, true>(nq, Dp, nk, St, kLdS, Vr, ldD, O, ldD);
      }
      for (int i = 0; i < nq; ++i) {
        lse_row[i] = row_logsumexp(m[i], l[i]);
        alpha[i] = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
      }
      Isa::store_rows(dtype, O, ldD, nq, D, row_ptr_mut(out, dtype, b, h, q0), out.stride_n, alpha,
                      1.0f);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backward.

std::atomic<int> g_backward_schedule{0};

// Per-thread tiles of the backward.
struct BwdTiles {
  float *Qr, *dOr, *Kr, *Vr, *Kt, *Vt, *S, *dP, *dK, *dV, *base;
};

size_t bwd_tile_floats(int D, int ldD) {
  return 8 * static_cast<size_t>(kB) * ldD + 2 * static_cast<size_t>(D) * kLdS +
         2 * static_cast<size_t>(kB) * kLdS + kB + 16 * 12;
}

BwdTiles carve_bwd(Carver& cv, int D, int ldD) {
  BwdTiles t;
  const size_t rows = static_cast<size_t>(kB) * ldD;
  t.Qr = cv.take(rows);
  t.dOr = cv.take(rows);
  t.Kr = cv.take(rows);
  t.Vr = cv.take(rows);
  t.dK = cv.take(rows);
  t.dV = cv.take(rows);
  t.Kt = cv.take(static_cast<size_t>(D) * kLdS);
  t.Vt = cv.take(static_cast<size_t>(D) * kLdS);
  t.S = cv.take(static_cast<size_t>(kB) * kLdS);
  t.dP = cv.take(static_cast<size_t>(kB) * kLdS);
  t.base = cv.take(kB);
  return t;
}

struct BwdCtx {
  int dtype;
  const AttentionShape* s;
  int D, Dp, ldD;
  float c;  // scale * log2(e)
  const StridedBHND *q, *k, *v, *dout;
  const float* lse;
  const float* delta;
  const LayoutView* layout;
};

// Loads the key block's K rows, K^T and V^T into the tiles.
template <class Isa>
void bwd_load_key_block(const BwdCtx& x, BwdTiles& t, int64_t b, int64_t h, int64_t k0, int nk) {
  const int nkp = round8(nk);
  Isa::load_rows(x.dtype, row_ptr(*x.k, x.dtype, b, h, k0), x.k->stride_n, nk, x.D, x.Dp, t.Kr,
                 x.ldD, 1.0f);
  Isa::load_rows(x.dtype, row_ptr(*x.v, x.dtype, b, h, k0), x.v->stride_n, nk, x.D, x.Dp, t.Vr,
                 x.ldD, 1.0f);
  transpose_pad(t.Kr, x.ldD, nk, x.D, t.Kt, kLdS, nkp);
  transpose_pad(t.Vr, x.ldD, nk, x.D, t.Vt, kLdS, nkp);
}

// Loads the query block's Q, dO rows and the exponent base of each row.
template <class Isa>
void bwd_load_query_block(const BwdCtx& x, BwdTiles& t, int64_t bh, int64_t b, int64_t h,
                          int64_t q0, int nq) {
  Isa::load_rows(x.dtype, row_ptr(*x.q, x.dtype, b, h, q0), x.q->stride_n, nq, x.D, x.Dp, t.Qr,
                 x.ldD, 1.0f);
  Isa::load_rows(x.dtype, row_ptr(*x.dout, x.dtype, b, h, q0), x.dout->stride_n, nq, x.D, x.Dp,
                 t.dOr, x.ldD, 1.0f);
  const float* lse_row = x.lse + bh * x.s->tokens + q0;
  for (int i = 0; i < nq; ++i) t.base[i] = backward_base_log2(lse_row[i]);
}

// One (query block, key block) pair. dK/dV (accumulated into t.dK, t.dV) when with_dkdv, dQ
// (accumulated into dq, row stride ldD) when dq is not null.
template <class Isa>
void bwd_pair(const BwdCtx& x, BwdTiles& t, const float* delta_row, int nq, int nk,
              const uint32_t* mask, bool with_dkdv, float* dq) {
  const int nkp = round8(nk);
  const int D = x.D, Dp = x.Dp, ldD = x.ldD;
  Isa::template gemm<ALayout::kRows, false>(nq, nkp, D, t.Qr, ldD, t.Kt, kLdS, t.S, kLdS);
  Isa::bwd_probs(t.S, kLdS, nq, nkp, mask, x.c, t.base);
  if (!mask && nk < nkp) {
    // Not reached with a layout that keeps the contract (a block touching the ragged end is
    // partial, and its mask hides the missing keys); keeps the padding keys out regardless.
    for (int i = 0; i < nq; ++i) std::fill(t.S + i * kLdS + nk, t.S + i * kLdS + nkp, 0.0f);
  }
  Isa::template gemm<ALayout::kRows, false>(nq, nkp, D, t.dOr, ldD, t.Vt, kLdS, t.dP, kLdS);
  if (with_dkdv)  // dV[key] += sum_q P[q][key] dO[q]
    Isa::template gemm<ALayout::kCols, true>(nk, Dp, nq, t.S, kLdS, t.dOr, ldD, t.dV, ldD);
  Isa::bwd_dsoftmax(t.S, t.dP, kLdS, nq, nkp, delta_row);
  if (with_dkdv)  // dK[key] += sum_q dS[q][key] Q[q]   (times scale at the end)
    Isa::template gemm<ALayout::kCols, true>(nk, Dp, nq, t.dP, kLdS, t.Qr, ldD, t.dK, ldD);
  if (dq)  // dQ[q] += sum_key dS[q][key] K[key]     (times scale at the end)
    Isa::template gemm<ALayout::kRows, true>(nq, Dp, nk, t.dP, kLdS, t.Kr, ldD, dq, ldD);
}

const uint32_t* mask_or_null(const LayoutView& layout, int32_t part) {
  return part >= 0 ? block_mask(layout, part) : nullptr;
}

// dK, dV of key block kb of (b, h); with dq_all (N x ldD accumulators of this (b, h)) also dQ.
template <class Isa>
void bwd_key_block(const BwdCtx& x, BwdTiles& t, int64_t bh, int kb, float* dq_all,
                   const StridedBHND& dk, const StridedBHND& dv) {
  const int64_t H = x.s->heads, N = x.s->tokens;
  const int64_t b = bh / H, h = bh % H;
  const int64_t k0 = int64_t{kb} * kB;
  const int nk = static_cast<int>(std::min<int64_t>(kB, N - k0));
  const size_t tile = static_cast<size_t>(nk) * x.ldD;
  std::fill(t.dK, t.dK + tile, 0.0f);
  std::fill(t.dV, t.dV + tile, 0.0f);
  const BlockList& bk = x.layout->by_key;
  const int32_t e0 = bk.ptr[kb], e1 = bk.ptr[kb + 1];
  if (e0 != e1) bwd_load_key_block<Isa>(x, t, b, h, k0, nk);
  for (int32_t e = e0; e < e1; ++e) {
    const int qb = bk.idx[e];
    const int64_t q0 = int64_t{qb} * kB;
    const int nq = static_cast<int>(std::min<int64_t>(kB, N - q0));
    bwd_load_query_block<Isa>(x, t, bh, b, h, q0, nq);
    if (e + 1 < e1) {
      const int64_t q1 = int64_t{bk.idx[e + 1]} * kB;
      const int n1 = static_cast<int>(std::min<int64_t>(kB, N - q1));
      const int64_t es = static_cast<int64_t>(elem_size(x.dtype));
      prefetch_rows(row_ptr(*x.q, x.dtype, b, h, q1), x.q->stride_n * es, n1, x.D * es);
      prefetch_rows(row_ptr(*x.dout, x.dtype, b, h, q1), x.dout->stride_n * es, n1, x.D * es);
    }
    if (dq_all && e + 1 < e1)  // the next pair's dQ accumulators
      prefetch_rows(dq_all + int64_t{bk.idx[e + 1]} * kB * x.ldD, 64, kB * x.ldD / 16, 64);
    bwd_pair<Isa>(x, t, x.delta + bh * N + q0, nq, nk, mask_or_null(*x.layout, bk.partial[e]), true,
                  dq_all ? dq_all + q0 * x.ldD : nullptr);
  }
  Isa::store_rows(x.dtype, t.dK, x.ldD, nk, x.D, row_ptr_mut(dk, x.dtype, b, h, k0), dk.stride_n,
                  nullptr, x.s->scale);
  Isa::store_rows(x.dtype, t.dV, x.ldD, nk, x.D, row_ptr_mut(dv, x.dtype, b, h, k0), dv.stride_n,
                  nullptr, 1.0f);
}

// dQ of query block qb of (b, h), key blocks ascending (the same order as bwd_key_block's).
template <class Isa>
void bwd_query_block(const BwdCtx& x, BwdTiles& t, int64_t bh, int qb, float* dq_acc,
                     const StridedBHND& dq) {
  const int64_t H = x.s->heads, N = x.s->tokens;
  const int64_t b = bh / H, h = bh % H;
  const int64_t q0 = int64_t{qb} * kB;
  const int nq = static_cast<int>(std::min<int64_t>(kB, N - q0));
  std::fill(dq_acc, dq_acc + static_cast<size_t>(nq) * x.ldD, 0.0f);
  const BlockList& bq = x.layout->by_query;
  const int32_t e0 = bq.ptr[qb], e1 = bq.ptr[qb + 1];
  if (e0 != e1) bwd_load_query_block<Isa>(x, t, bh, b, h, q0, nq);
  for (int32_t e = e0; e < e1; ++e) {
    const int kb = bq.idx[e];
    const int64_t k0 = int64_t{kb} * kB;
    const int nk = static_cast<int>(std::min<int64_t>(kB, N - k0));
    bwd_load_key_block<Isa>(x, t, b, h, k0, nk);
    if (e + 1 < e1) {
      const int64_t k1 = int64_t{bq.idx[e + 1]} * kB;
      const int n1 = static_cast<int>(std::min<int64_t>(kB, N - k1));
      const int64_t es = static_cast<int64_t>(elem_size(x.dtype));
      prefetch_rows(row_ptr(*x.k, x.dtype, b, h, k1), x.k->stride_n * es, n1, x.D * es);
      prefetch_rows(row_ptr(*x.v, x.dtype, b, h, k1), x.v->stride_n * es, n1, x.D * es);
    }
    bwd_pair<Isa>(x, t, x.delta + bh * N + q0, nq, nk, mask_or_null(*x.layout, bq.partial[e]),
                  false, dq_acc);
  }
  Isa::store_rows(x.dtype, dq_acc, x.ldD, nq, x.D, row_ptr_mut(dq, x.dtype, b, h, q0), dq.stride_n,
                  nullptr, x.s->scale);
}

template <class Isa>
void backward_impl(int dtype, const AttentionShape& s, const StridedBHND& q, const StridedBHND& k,
                   const StridedBHND& v, const StridedBHND& out, const StridedBHND& dout,
                   const float* lse, const StridedBHND& dq, const StridedBHND& dk,
                   const StridedBHND& dv, float* delta, const LayoutView& layout) {
  const int64_t B = s.batch, H = s.heads, N = s.tokens;
  const int64_t BH = B * H;
  const int nb = layout.num_blocks;
  if (BH == 0 || N == 0) return;
  BwdCtx x;
  x.dtype = dtype;
  x.s = &s;
  x.D = static_cast<int>(s.head_dim);
  x.Dp = round8(x.D);
  x.ldD = ld_for(x.Dp);
  x.c = s.scale * kLog2e;
  x.q = &q;
  x.k = &k;
  x.v = &v;
  x.dout = &dout;
  x.lse = lse;
  x.delta = delta;
  x.layout = &layout;
  const int D = x.D, Dp = x.Dp, ldD = x.ldD;

  const int maxt = std::max(1, omp_get_max_threads());
  int mode = g_backward_schedule.load();
  if (mode == 0) {
    // One task per (b, h) when the heads keep every thread busy (all heads share the layout, so
    // they cost the same) and its per-thread float32 dQ of the whole sequence stays modest.
    const double dq_bytes = 4.0 * static_cast<double>(nb) * kB * ld_for(round8(x.D)) * std::min<int64_t>(maxt, BH);
    const bool balanced = BH % maxt == 0 || BH >= 4 * maxt;
    mode = balanced && dq_bytes <= (1u << 30) ? 1 : 2;
  }

  // delta = rowsum(dO * O), one task per (b, h, query block).
  {
    const int nthreads = static_cast<int>(std::min<int64_t>(maxt, BH * nb));
    FloatBuffer scratch((2 * static_cast<size_t>(kB) * ldD + 32) * nthreads);
#pragma omp parallel num_threads(nthreads)
    {
      float* O = scratch.p + (2 * static_cast<size_t>(kB) * ldD + 32) * omp_get_thread_num();
      float* G = O + static_cast<size_t>(kB) * ldD;
#pragma omp for schedule(static)
      for (int64_t t = 0; t < BH * nb; ++t) {
        const int64_t bh = t / nb, b = bh / H, h = bh % H;
        const int64_t q0 = (t % nb) * kB;
        const int nq = static_cast<int>(std::min<int64_t>(kB, N - q0));
        Isa::load_rows(dtype, row_ptr(out, dtype, b, h, q0), out.stride_n, nq, D, Dp, O, ldD, 1.0f);
        Isa::load_rows(dtype, row_ptr(dout, dtype, b, h, q0), dout.stride_n, nq, D, Dp, G, ldD, 1.0f);
        for (int i = 0; i < nq; ++i)
          delta[bh * N + q0 + i] = Isa::dot(O + static_cast<size_t>(i) * ldD, G + static_cast<size_t>(i) * ldD, Dp);
      }
    }
  }

  const size_t tiles = bwd_tile_floats(D, ldD);
  if (mode == 1) {
    // One task per (b, h): key blocks ascending, dQ of the whole sequence accumulated in a
    // per-thread buffer, in the same order as the two-pass schedule's.
    const int nthreads = static_cast<int>(std::min<int64_t>(maxt, BH));
    const size_t dq_floats = static_cast<size_t>(nb) * kB * ldD;
    const size_t per_thread = tiles + dq_floats + 64;
    FloatBuffer scratch(per_thread * nthreads);
#pragma omp parallel num_threads(nthreads)
    {
      Carver cv{scratch.p + per_thread * omp_get_thread_num()};
      BwdTiles t = carve_bwd(cv, D, ldD);
      float* dq_all = cv.take(dq_floats);
#pragma omp for schedule(dynamic, 1)
      for (int64_t bh = 0; bh < BH; ++bh) {
        std::fill(dq_all, dq_all + static_cast<size_t>(N) * ldD, 0.0f);
        for (int kb = 0; kb < nb; ++kb) bwd_key_block<Isa>(x, t, bh, kb, dq_all, dk, dv);
        const int64_t b = bh / H, h = bh % H;
        Isa::store_rows(dtype, dq_all, ldD, static_cast<int>(N), D, row_ptr_mut(dq, dtype, b, h, 0),
                        dq.stride_n, nullptr, s.scale);
      }
    }
    return;
  }

  // Two passes: dK/dV per (b, h, key block), then dQ per (b, h, query block).
  const int64_t tasks = BH * nb;
  const int nthreads = static_cast<int>(std::min<int64_t>(maxt, tasks));
  const size_t per_thread = tiles + static_cast<size_t>(kB) * ldD + 64;
  FloatBuffer scratch(per_thread * nthreads);
#pragma omp parallel num_threads(nthreads)
  {
    Carver cv{scratch.p + per_thread * omp_get_thread_num()};
    BwdTiles t = carve_bwd(cv, D, ldD);
    float* dq_acc = cv.take(static_cast<size_t>(kB) * ldD);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < tasks; ++i)
      bwd_key_block<Isa>(x, t, i / nb, static_cast<int>(i % nb), nullptr, dk, dv);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < tasks; ++i)
      bwd_query_block<Isa>(x, t, i / nb, static_cast<int>(i % nb), dq_acc, dq);
  }
}

// ---------------------------------------------------------------------------------------------
// Instruction-set choice: the caller's, against the processor's features (probed once).

bool avx2_available() {
  static const bool v = kern::avx2_supported();
  return v;
}

bool use_avx2(KernelChoice isa) {
  if (isa == KernelChoice::kPortable) return false;
  if (isa == KernelChoice::kSpecialised && !avx2_available()) {
    throw std::invalid_argument("CPU attention: the avx2 kernels were asked for, but this processor lacks AVX2, FMA "
                                "or F16C (use auto or generic)");
  }
  return avx2_available();
}

}  // namespace

const char* isa_name(KernelChoice isa) {
  [[maybe_unused]] const bool avx2 = use_avx2(isa);  // kSpecialised without AVX2 throws
#if AIM_CPU_X86
  if (avx2) return kern::Avx2::name();
#endif
  return kern::Generic::name();
}

void set_backward_schedule(int mode) {
  if (mode < 0 || mode > 2) throw std::invalid_argument("backward schedule must be 0, 1 or 2");
  g_backward_schedule.store(mode);
}

void attention_forward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                       const StridedBHND& v, const StridedBHND& out, float* lse,
                       const LayoutView& layout, KernelChoice isa) {
  check_args(dtype, shape, layout);
  [[maybe_unused]] const bool avx2 = use_avx2(isa);  // kSpecialised without AVX2 throws
#if AIM_CPU_X86
  if (avx2) return forward_impl<kern::Avx2>(dtype, shape, q, k, v, out, lse, layout);
#endif
  forward_impl<kern::Generic>(dtype, shape, q, k, v, out, lse, layout);
}

void attention_backward(int dtype, const AttentionShape& shape, const StridedBHND& q, const StridedBHND& k,
                        const StridedBHND& v, const StridedBHND& out, const StridedBHND& dout,
                        const float* lse, const StridedBHND& dq, const StridedBHND& dk,
                        const StridedBHND& dv, float* delta, const LayoutView& layout, KernelChoice isa) {
  check_args(dtype, shape, layout);
  [[maybe_unused]] const bool avx2 = use_avx2(isa);  // kSpecialised without AVX2 throws
#if AIM_CPU_X86
  if (avx2)
    return backward_impl<kern::Avx2>(dtype, shape, q, k, v, out, dout, lse, dq, dk, dv, delta,
                                     layout);
#endif
  backward_impl<kern::Generic>(dtype, shape, q, k, v, out, dout, lse, dq, dk, dv, delta, layout);
}

}  // namespace cpu
}  // namespace aim
