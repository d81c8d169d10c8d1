// Micro-kernels of the CPU attention (csrc/attention_cpu.cpp), one set per instruction set.
//
// Each set is a struct of static functions with the same signatures; the attention drivers are
// templates over it. `Generic` is portable C++ (the compiler vectorises it for the baseline ISA);
// `Avx2` carries __attribute__((target("avx2,fma,f16c"))) on every function, so the module is
// compiled with generic flags and picks Avx2 at run time only where the processor has it.
//
// All tiles are float32 in scratch buffers whose row strides are multiples of 8 floats (32 bytes);
// unaligned loads are used throughout, so alignment is a speed matter only.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "aim/attention_args.h"

#if defined(__x86_64__) || defined(__i386__)
#define AIM_CPU_X86 1
#include <immintrin.h>
#else
#define AIM_CPU_X86 0
#endif

namespace aim {
namespace cpu {
namespace kern {

// ---------------------------------------------------------------------------------------------
// Scalar conversions (exact, round-to-nearest-even), shared by both sets.

inline float bits_to_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t float_to_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

inline float bf16_to_float(uint16_t h) { return bits_to_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return bits_to_float(sign | 0x7f800000u | (mant << 13));  // inf / NaN
  if (exp != 0) return bits_to_float(sign | ((exp + 112u) << 23) | (mant << 13));
  if (mant == 0) return bits_to_float(sign);
  // subnormal: mant * 2^-24
  const float v = static_cast<float>(mant) * 5.9604644775390625e-08f;
  return sign ? -v : v;
}

inline uint16_t float_to_half(float f) {
  const uint32_t u = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65536: inf
  if (a >= 0x38800000u) {  // normal half
    const uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
    return static_cast<uint16_t>(sign | (r >> 13));
  }
  if (a < 0x33000000u) return sign;  // < 2^-25: rounds to zero
  // subnormal half: value = m * 2^-24 with m = a's full mantissa shifted
  const uint32_t e = a >> 23;                   // 102..112
  const uint32_t m = (a & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - e;              // 14..24
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
  return static_cast<uint16_t>(sign | q);
}

// 2^x without a library call (so loops over it vectorise): the same Cephes polynomial as the AVX2
// kernels, results below 2^-126 flushed to 0 (x = -inf gives 0), NaN stays NaN.
inline float exp2_poly(float x) {
  const bool normal = !(x < -126.0f);
  x = std::min(std::max(x, -127.0f), 127.0f);
  const float t = x + 12582912.0f;  // 1.5 * 2^23: rounds x to the nearest integer in t's low bits
  const float n = t - 12582912.0f;
  const float f = x - n;
  float p = 1.535336188319500e-4f;
  p = p * f + 1.339887440266574e-3f;
  p = p * f + 9.618437357674640e-3f;
  p = p * f + 5.550332471162809e-2f;
  p = p * f + 2.402264791363012e-1f;
  p = p * f + 6.931472028550421e-1f;
  p = p * f + 1.0f;
  const uint32_t ni = float_to_bits(t) - 0x4b400000u;  // n as a two's-complement integer
  const float r = p * bits_to_float((ni + 127u) << 23);
  return normal ? r : 0.0f;
}

// Mask bits of 8 consecutive columns starting at `col` (a multiple of 8) in a 128-bit mask row.
inline uint32_t mask_byte(const uint32_t* row_words, int col) {
  return (row_words[col >> 5] >> (col & 31)) & 0xffu;
}

// Row-major (A(i,p) = A[i*lda + p]) or column-major (A(i,p) = A[p*lda + i]) left operand.
enum class ALayout { kRows, kCols };

// ---------------------------------------------------------------------------------------------
// Portable kernels.

struct Generic {
  static const char* name() { return "generic"; }

  template <int MR, int NR, ALayout AL, bool Acc>
  static void micro(int K, const float* __restrict A, ptrdiff_t lda, const float* __restrict B,
                    ptrdiff_t ldb, float* __restrict C, ptrdiff_t ldc) {
    float acc[MR][NR];
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] = Acc ? C[i * ldc + j] : 0.0f;
    for (int p = 0; p < K; ++p) {
      const float* b = B + p * ldb;
      for (int i = 0; i < MR; ++i) {
        const float a = AL == ALayout::kRows ? A[i * lda + p] : A[p * lda + i];
        for (int j = 0; j < NR; ++j) acc[i][j] += a * b[j];
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) C[i * ldc + j] = acc[i][j];
  }

  template <int NR, ALayout AL, bool Acc>
  static void row_tiles(int M, int K, const float* A, ptrdiff_t lda, const float* B, ptrdiff_t ldb,
                        float* C, ptrdiff_t ldc) {
    int i = 0;
    for (; i + 4 <= M; i += 4) {
      const float* Ai = AL == ALayout::kRows ? A + i * lda : A + i;
      micro<4, NR, AL, Acc>(K, Ai, lda, B, ldb, C + i * ldc, ldc);
    }
    for (; i < M; ++i) {
      const float* Ai = AL == ALayout::kRows ? A + i * lda : A + i;
      micro<1, NR, AL, Acc>(K, Ai, lda, B, ldb, C + i * ldc, ldc);
    }
  }

  // C[M x N] (+)= A[M x K] B[K x N]; N a multiple of 8.
  template <ALayout AL, bool Acc>
  static void gemm(int M, int N, int K, const float* A, ptrdiff_t lda, const float* B,
                   ptrdiff_t ldb, float* C, ptrdiff_t ldc) {
    for (int j = 0; j < N; j += 8) row_tiles<8, AL, Acc>(M, K, A, lda, B + j, ldb, C + j, ldc);
  }

  // Forward online-softmax step on a transposed score tile St[key][query] (rows < nk, columns <
  // nqp, a multiple of 8): apply the transposed mask (maskT: per key row, 4 words of query bits;
  // null for a full block), update the running max m and sum l of every query column, write the
  // factor alpha that rescales the query's output, and turn St into probabilities.
  static void fwd_softmax_cols(float* St, int ld, int nk, int nqp, const uint32_t* maskT, float* m,
                               float* l, float* alpha) {
    float mx[128], base[128], sum[128];
    for (int q = 0; q < nqp; ++q) mx[q] = m[q];
    for (int k = 0; k < nk; ++k) {
      float* row = St + static_cast<ptrdiff_t>(k) * ld;
      const uint32_t* mw = maskT ? maskT + k * 4 : nullptr;
      for (int q = 0; q < nqp; ++q) {
        if (mw && !((mw[q >> 5] >> (q & 31)) & 1u)) row[q] = -INFINITY;
        mx[q] = std::max(mx[q], row[q]);
      }
    }
    for (int q = 0; q < nqp; ++q) {
      base[q] = mx[q] == -INFINITY ? 0.0f : mx[q];
      alpha[q] = exp2_poly(m[q] - base[q]);
      m[q] = mx[q];
      sum[q] = 0.0f;
    }
    for (int k = 0; k < nk; ++k) {
      float* row = St + static_cast<ptrdiff_t>(k) * ld;
      for (int q = 0; q < nqp; ++q) {
        const float p = exp2_poly(row[q] - base[q]);
        row[q] = p;
        sum[q] += p;
      }
    }
    for (int q = 0; q < nqp; ++q) l[q] = l[q] * alpha[q] + sum[q];
  }

  static void scale_rows(float* O, int ld, int n, int ncols, const float* alpha) {
    for (int i = 0; i < n; ++i) {
      const float a = alpha[i];
      if (a == 1.0f) continue;
      float* r = O + static_cast<ptrdiff_t>(i) * ld;
      for (int j = 0; j < ncols; ++j) r[j] *= a;
    }
  }

  // Backward: S[q][k] = exp2(S*c - base[q]), 0 where the mask (row-major, null = full) hides it.
  static void bwd_probs(float* S, int ld, int nq, int nkp, const uint32_t* mask, float c,
                        const float* base) {
    for (int i = 0; i < nq; ++i) {
      float* r = S + static_cast<ptrdiff_t>(i) * ld;
      const float b = base[i];
      for (int j = 0; j < nkp; ++j) r[j] = exp2_poly(r[j] * c - b);
      if (mask) {
        const uint32_t* mw = mask + i * 4;
        for (int j = 0; j < nkp; ++j)
          if (!((mw[j >> 5] >> (j & 31)) & 1u)) r[j] = 0.0f;
      }
    }
  }

  // dP[q][k] = P[q][k] * (dP[q][k] - delta[q]).
  static void bwd_dsoftmax(const float* P, float* dP, int ld, int nq, int nkp,
                           const float* delta) {
    for (int i = 0; i < nq; ++i) {
      const float* p = P + static_cast<ptrdiff_t>(i) * ld;
      float* d = dP + static_cast<ptrdiff_t>(i) * ld;
      const float di = delta[i];
      for (int j = 0; j < nkp; ++j) d[j] = p[j] * (d[j] - di);
    }
  }

  // dst[r][0..D) = src row r * mul, dst[r][D..Dp) = 0.
  static void load_rows(int dtype, const void* src, int64_t stride, int n, int D, int Dp,
                        float* dst, int ld, float mul) {
    for (int r = 0; r < n; ++r) {
      float* o = dst + static_cast<ptrdiff_t>(r) * ld;
      if (dtype == kFloat32) {
        const float* s = static_cast<const float*>(src) + r * stride;
        for (int d = 0; d < D; ++d) o[d] = s[d] * mul;
      } else {
        const uint16_t* s = static_cast<const uint16_t*>(src) + r * stride;
        if (dtype == kFloat16)
          for (int d = 0; d < D; ++d) o[d] = half_to_float(s[d]) * mul;
        else
          for (int d = 0; d < D; ++d) o[d] = bf16_to_float(s[d]) * mul;
      }
      for (int d = D; d < Dp; ++d) o[d] = 0.0f;
    }
  }

  // dst row r = src[r][0..D) * (rowmul ? rowmul[r] : 1) * mul, rounded to dtype.
  static void store_rows(int dtype, const float* src, int ld, int n, int D, void* dst,
                         int64_t stride, const float* rowmul, float mul) {
    for (int r = 0; r < n; ++r) {
      const float* s = src + static_cast<ptrdiff_t>(r) * ld;
      const float f = rowmul ? rowmul[r] * mul : mul;
      if (dtype == kFloat32) {
        float* o = static_cast<float*>(dst) + r * stride;
        for (int d = 0; d < D; ++d) o[d] = s[d] * f;
      } else {
        uint16_t* o = static_cast<uint16_t*>(dst) + r * stride;
        if (dtype == kFloat16)
          for (int d = 0; d < D; ++d) o[d] = float_to_half(s[d] * f);
        else
          for (int d = 0; d < D; ++d) o[d] = float_to_bf16(s[d] * f);
      }
    }
  }

  static float dot(const float* a, const float* b, int n) {
    float s = 0.0f;
    for (int i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
  }
};

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA (+ F16C for half conversions).

#if AIM_CPU_X86
#define AIM_AVX2 __attribute__((target("avx2,fma,f16c")))

// 2^x, Cephes exp2f polynomial on [-0.5, 0.5] (relative error about 2e-7); x is clamped to
// [-127, 127], and results below 2^-126 (x < -126, x = -inf included) are exactly 0, so no
// subnormal ever reaches the GEMMs. A NaN stays NaN (max/min return their second operand then).
AIM_AVX2 inline __m256 exp2_avx2(__m256 x) {
  const __m256 normal = _mm256_cmp_ps(x, _mm256_set1_ps(-126.0f), _CMP_NLT_UQ);
  x = _mm256_min_ps(_mm256_set1_ps(127.0f), _mm256_max_ps(_mm256_set1_ps(-127.0f), x));
  const __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(x, n);
  __m256 p = _mm256_set1_ps(1.535336188319500e-4f);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.339887440266574e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618437357674640e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550332471162809e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402264791363012e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931472028550421e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), normal);
}

// All-ones lanes where bit j of `bits` (j = lane 0..7) is set.
AIM_AVX2 inline __m256 bits_to_lanes(uint32_t bits) {
  const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256i b = _mm256_and_si256(_mm256_set1_epi32(static_cast<int>(bits)), sel);
  return _mm256_castsi256_ps(_mm256_cmpeq_epi32(b, sel));
}

struct Avx2 {
  static const char* name() { return "avx2"; }

  // C[MR x 8*NV] (+)= A[MR x K] B[K x 8*NV]: MR*NV accumulators in ymm registers, B rows loaded
  // as vectors, A elements broadcast.
  template <int MR, int NV, ALayout AL, bool Acc>
  AIM_AVX2 static void micro(int K, const float* __restrict A, ptrdiff_t lda,
                             const float* __restrict B, ptrdiff_t ldb, float* __restrict C,
                             ptrdiff_t ldc) {
    __m256 c[MR][NV];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v)
        c[i][v] = Acc ? _mm256_loadu_ps(C + i * ldc + 8 * v) : _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int p = 0; p < K; ++p) {
      __m256 b[NV];
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) b[v] = _mm256_loadu_ps(B + 8 * v);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256 a = _mm256_broadcast_ss(AL == ALayout::kRows ? A + i * lda : A + i);
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) c[i][v] = _mm256_fmadd_ps(a, b[v], c[i][v]);
      }
      B += ldb;
      A += AL == ALayout::kRows ? 1 : lda;
    }
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) _mm256_storeu_ps(C + i * ldc + 8 * v, c[i][v]);
  }

  template <int NV, ALayout AL, bool Acc>
  AIM_AVX2 static void row_tiles(int M, int K, const float* A, ptrdiff_t lda, const float* B,
                                 ptrdiff_t ldb, float* C, ptrdiff_t ldc) {
    constexpr int MR = NV == 2 ? 6 : 8;
    int i = 0;
    for (; i + MR <= M; i += MR) {
      const float* Ai = AL == ALayout::kRows ? A + i * lda : A + i;
      micro<MR, NV, AL, Acc>(K, Ai, lda, B, ldb, C + i * ldc, ldc);
    }
    const int rest = M - i;
    if (rest == 0) return;
    const float* Ai = AL == ALayout::kRows ? A + i * lda : A + i;
    float* Ci = C + i * ldc;
    switch (rest) {
      case 1: micro<1, NV, AL, Acc>(K, Ai, lda, B, ldb, Ci, ldc); break;
      case 2: micro<2, NV, AL, Acc>(K, Ai, lda, B, ldb, Ci, ldc); break;
      case 3: micro<3, NV, AL, Acc>(K, Ai, lda, B, ldb, Ci, ldc); break;
      case 4: micro<4, NV, AL, Acc>(K, Ai, lda, B, ldb, Ci, ldc); break;
      case 5: micro<5, NV, AL, Acc>(K, Ai, lda, B, ldb, Ci, ldc); break;
      case 6: micro<6, NV, AL, Acc>(K, Ai, lda, B, ldb, Ci, ldc); break;
      default: micro<7, NV, AL, Acc>(K, Ai, lda, B, ldb, Ci, ldc); break;
    }
  }

  // C[M x N] (+)= A[M x K] B[K x N]; N a multiple of 8. Column panels of 16 (one of 8 at the
  // end), each swept over all row tiles while the K x 16 panel of B stays in L1.
  template <ALayout AL, bool Acc>
  AIM_AVX2 static void gemm(int M, int N, int K, const float* A, ptrdiff_t lda, const float* B,
                            ptrdiff_t ldb, float* C, ptrdiff_t ldc) {
    int j = 0;
    for (; j + 16 <= N; j += 16) row_tiles<2, AL, Acc>(M, K, A, lda, B + j, ldb, C + j, ldc);
    if (j < N) row_tiles<1, AL, Acc>(M, K, A, lda, B + j, ldb, C + j, ldc);
  }

  AIM_AVX2 static void fwd_softmax_cols(float* St, int ld, int nk, int nqp, const uint32_t* maskT,
                                        float* m, float* l, float* alpha) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    // Four query vectors (32 columns, two cache lines a row) at a time, keys inner.
    for (int q0 = 0; q0 < nqp; q0 += 32) {
      const int nv = std::min(4, (nqp - q0) / 8);
      __m256 mx[4], base[4], sum[4];
      for (int v = 0; v < 4; ++v) mx[v] = v < nv ? _mm256_loadu_ps(m + q0 + 8 * v) : ninf;
      for (int k = 0; k < nk; ++k) {
        float* row = St + static_cast<ptrdiff_t>(k) * ld + q0;
        if (maskT) {
          const uint32_t* mw = maskT + k * 4;
          for (int v = 0; v < nv; ++v) {
            const __m256 keep = bits_to_lanes(mask_byte(mw, q0 + 8 * v));
            const __m256 s = _mm256_blendv_ps(ninf, _mm256_loadu_ps(row + 8 * v), keep);
            _mm256_storeu_ps(row + 8 * v, s);
            mx[v] = _mm256_max_ps(mx[v], s);
          }
        } else {
          for (int v = 0; v < nv; ++v) mx[v] = _mm256_max_ps(mx[v], _mm256_loadu_ps(row + 8 * v));
        }
      }
      for (int v = 0; v < nv; ++v) {
        const __m256 is_ninf = _mm256_cmp_ps(mx[v], ninf, _CMP_EQ_OQ);
        base[v] = _mm256_andnot_ps(is_ninf, mx[v]);  // -inf -> 0
        const __m256 a = exp2_avx2(_mm256_sub_ps(_mm256_loadu_ps(m + q0 + 8 * v), base[v]));
        _mm256_storeu_ps(alpha + q0 + 8 * v, a);
        _mm256_storeu_ps(m + q0 + 8 * v, mx[v]);
        sum[v] = _mm256_setzero_ps();
      }
      for (int k = 0; k < nk; ++k) {
        float* row = St + static_cast<ptrdiff_t>(k) * ld + q0;
        for (int v = 0; v < nv; ++v) {
          const __m256 p = exp2_avx2(_mm256_sub_ps(_mm256_loadu_ps(row + 8 * v), base[v]));
          _mm256_storeu_ps(row + 8 * v, p);
          sum[v] = _mm256_add_ps(sum[v], p);
        }
      }
      for (int v = 0; v < nv; ++v) {
        const __m256 lv = _mm256_loadu_ps(l + q0 + 8 * v);
        _mm256_storeu_ps(l + q0 + 8 * v,
                         _mm256_fmadd_ps(lv, _mm256_loadu_ps(alpha + q0 + 8 * v), sum[v]));
      }
    }
  }

  AIM_AVX2 static void scale_rows(float* O, int ld, int n, int ncols, const float* alpha) {
    for (int i = 0; i < n; ++i) {
      if (alpha[i] == 1.0f) continue;
      const __m256 a = _mm256_set1_ps(alpha[i]);
      float* r = O + static_cast<ptrdiff_t>(i) * ld;
      for (int j = 0; j < ncols; j += 8) _mm256_storeu_ps(r + j, _mm256_mul_ps(_mm256_loadu_ps(r + j), a));
    }
  }

  AIM_AVX2 static void bwd_probs(float* S, int ld, int nq, int nkp, const uint32_t* mask, float c,
                                 const float* base) {
    const __m256 cv = _mm256_set1_ps(c);
    for (int i = 0; i < nq; ++i) {
      float* r = S + static_cast<ptrdiff_t>(i) * ld;
      const __m256 b = _mm256_set1_ps(base[i]);
      if (mask) {
        const uint32_t* mw = mask + i * 4;
        for (int j = 0; j < nkp; j += 8) {
          const __m256 p = exp2_avx2(_mm256_fmsub_ps(_mm256_loadu_ps(r + j), cv, b));
          _mm256_storeu_ps(r + j, _mm256_and_ps(p, bits_to_lanes(mask_byte(mw, j))));
        }
      } else {
        for (int j = 0; j < nkp; j += 8)
          _mm256_storeu_ps(r + j, exp2_avx2(_mm256_fmsub_ps(_mm256_loadu_ps(r + j), cv, b)));
      }
    }
  }

  AIM_AVX2 static void bwd_dsoftmax(const float* P, float* dP, int ld, int nq, int nkp,
                                    const float* delta) {
    for (int i = 0; i < nq; ++i) {
      const float* p = P + static_cast<ptrdiff_t>(i) * ld;
      float* d = dP + static_cast<ptrdiff_t>(i) * ld;
      const __m256 di = _mm256_set1_ps(delta[i]);
      for (int j = 0; j < nkp; j += 8)
        _mm256_storeu_ps(d + j, _mm256_mul_ps(_mm256_loadu_ps(p + j),
                                              _mm256_sub_ps(_mm256_loadu_ps(d + j), di)));
    }
  }

  AIM_AVX2 static void load_rows(int dtype, const void* src, int64_t stride, int n, int D, int Dp,
                                 float* dst, int ld, float mul) {
    const __m256 mv = _mm256_set1_ps(mul);
    for (int r = 0; r < n; ++r) {
      float* o = dst + static_cast<ptrdiff_t>(r) * ld;
      int d = 0;
      if (dtype == kFloat32) {
        const float* s = static_cast<const float*>(src) + r * stride;
        for (; d + 8 <= D; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(s + d), mv));
        for (; d < D; ++d) o[d] = s[d] * mul;
      } else if (dtype == kFloat16) {
        const uint16_t* s = static_cast<const uint16_t*>(src) + r * stride;
        for (; d + 8 <= D; d += 8) {
          const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + d));
          _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_cvtph_ps(h), mv));
        }
        for (; d < D; ++d) o[d] = half_to_float(s[d]) * mul;
      } else {
        const uint16_t* s = static_cast<const uint16_t*>(src) + r * stride;
        for (; d + 8 <= D; d += 8) {
          const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + d));
          const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
          _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_castsi256_ps(w), mv));
        }
        for (; d < D; ++d) o[d] = bf16_to_float(s[d]) * mul;
      }
      for (; d < Dp; ++d) o[d] = 0.0f;
    }
  }

  AIM_AVX2 static void store_rows(int dtype, const float* src, int ld, int n, int D, void* dst,
                                  int64_t stride, const float* rowmul, float mul) {
    for (int r = 0; r < n; ++r) {
      const float* s = src + static_cast<ptrdiff_t>(r) * ld;
      const float f = rowmul ? rowmul[r] * mul : mul;
      const __m256 fv = _mm256_set1_ps(f);
      int d = 0;
      if (dtype == kFloat32) {
        float* o = static_cast<float*>(dst) + r * stride;
        for (; d + 8 <= D; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(s + d), fv));
        for (; d < D; ++d) o[d] = s[d] * f;
      } else if (dtype == kFloat16) {
        uint16_t* o = static_cast<uint16_t*>(dst) + r * stride;
        for (; d + 8 <= D; d += 8) {
          const __m128i h = _mm256_cvtps_ph(_mm256_mul_ps(_mm256_loadu_ps(s + d), fv),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(o + d), h);
        }
        for (; d < D; ++d) o[d] = float_to_half(s[d] * f);
      } else {
        uint16_t* o = static_cast<uint16_t*>(dst) + r * stride;
        for (; d < D; ++d) o[d] = float_to_bf16(s[d] * f);
      }
    }
  }

  AIM_AVX2 static float dot(const float* a, const float* b, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    alignas(32) float t[8];
    _mm256_store_ps(t, acc);
    float s = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
  }
};

inline bool avx2_supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
}
#else
inline bool avx2_supported() { return false; }
#endif

}  // namespace kern
}  // namespace cpu
}  // namespace aim
