// Thin, named wrappers around the Hopper-only PTX of the sm_90a attention kernels: warpgroup MMA
// (wgmma, from shared-memory descriptors or with A in registers), the async-proxy fence, mbarriers
// (init, arrive, expect-tx, parity wait, cp.async arrival), TMA tile loads (cp.async.bulk.tensor),
// named barriers, stmatrix and setmaxnreg. Include only from files compiled for sm_90a.
//
// Layouts these instructions read and write (tiles, descriptors, fragments) are computed by
// aim/attention_sm90.h and replayed in cuda/fragment_check_sm90*.py.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

namespace aim {
namespace gpu {

// ---- wgmma (PTX ISA 9.7.15) ---------------------------------------------------------------------

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Generic-proxy shared-memory writes (cp.async, st.shared, stmatrix) -> visible to the async proxy
// (wgmma, TMA) once a barrier follows.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Pin registers at this point of the program: the compiler may neither move reads of them above an
// earlier wgmma.wait_group nor move writes below a later wgmma, and must keep them intact until
// here (A operands of an in-flight wgmma are read asynchronously).
template <int kN>
__device__ __forceinline__ void fence_regs(float (&d)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[i][e])::"memory");
  }
}
template <int kN>
__device__ __forceinline__ void fence_regs(uint32_t (&a)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) {
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+r"(a[i][e])::"memory");
  }
}

// Wgmma<T, N>::ss<kTransB>(d, desc_a, desc_b, scale_d): D(64 x N, fp32) (+)= A(64 x 16) * B(16 x N),
// A K-major from shared memory, B from shared memory K-major (kTransB = 0) or N-major (1).
// Wgmma<T, N>::rs(d, a, desc_b, scale_d): the same with A in registers (m16n8k16 A layout per
// warp) and B N-major (imm-trans-b = 1). scale_d = 0 overwrites D.
template <typename T, int kN>
struct Wgmma;

#define AIM_WG_F4(d, j) "+f"(d[j][0]), "+f"(d[j][1]), "+f"(d[j][2]), "+f"(d[j][3])
#define AIM_WG_ACC32(d) \
  AIM_WG_F4(d, 0), AIM_WG_F4(d, 1), AIM_WG_F4(d, 2), AIM_WG_F4(d, 3), AIM_WG_F4(d, 4), AIM_WG_F4(d, 5), \
      AIM_WG_F4(d, 6), AIM_WG_F4(d, 7)
#define AIM_WG_ACC64(d)                                                                                   \
  AIM_WG_ACC32(d), AIM_WG_F4(d, 8), AIM_WG_F4(d, 9), AIM_WG_F4(d, 10), AIM_WG_F4(d, 11), AIM_WG_F4(d, 12), \
      AIM_WG_F4(d, 13), AIM_WG_F4(d, 14), AIM_WG_F4(d, 15)
#define AIM_WG_REGS32                                                                                     \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
  "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
#define AIM_WG_REGS64                                                                                      \
  AIM_WG_REGS32                                                                                            \
  ", %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, " \
  "%52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"

// NREG accumulator registers are operands 0..NREG-1; the operand numbers after them (P0.. = NREG..)
// are spelled out per shape.
#define AIM_DEFINE_WGMMA(CTYPE, PTYPE, N, REGS, ACC, P0, P1, P2, P3, P4, P5)                                \
  template <>                                                                                              \
  struct Wgmma<CTYPE, N> {                                                                                 \
    template <int kTransB>                                                                                 \
    static __device__ __forceinline__ void ss(float (&d)[N / 8][4], uint64_t desc_a, uint64_t desc_b,     \
                                              int scale_d) {                                               \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" P2 ", 0;\n"                                       \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTYPE "." PTYPE " {" REGS "}, %" P0  \
                   ", %" P1 ", p, 1, 1, 0, %" P3 ";\n}\n"                                                   \
                   : ACC(d)                                                                                \
                   : "l"(desc_a), "l"(desc_b), "r"(scale_d), "n"(kTransB)                                 \
                   : "memory");                                                                            \
    }                                                                                                      \
    static __device__ __forceinline__ void rs(float (&d)[N / 8][4], const uint32_t (&a)[4], uint64_t desc_b, \
                                              int scale_d) {                                               \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" P5 ", 0;\n"                                       \
                   "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." PTYPE "." PTYPE " {" REGS "}, {%" P0 \
                   ", %" P1 ", %" P2 ", %" P3 "}, %" P4 ", p, 1, 1, 1;\n}\n"                                \
                   : ACC(d)                                                                                \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d)                \
                   : "memory");                                                                            \
    }                                                                                                      \
  };

AIM_DEFINE_WGMMA(__nv_bfloat16, "bf16", 64, AIM_WG_REGS32, AIM_WG_ACC32, "32", "33", "34", "35", "36", "37")
AIM_DEFINE_WGMMA(__half, "f16", 64, AIM_WG_REGS32, AIM_WG_ACC32, "32", "33", "34", "35", "36", "37")
AIM_DEFINE_WGMMA(__nv_bfloat16, "bf16", 128, AIM_WG_REGS64, AIM_WG_ACC64, "64", "65", "66", "67", "68", "69")
AIM_DEFINE_WGMMA(__half, "f16", 128, AIM_WG_REGS64, AIM_WG_ACC64, "64", "65", "66", "67", "68", "69")

#undef AIM_DEFINE_WGMMA
#undef AIM_WG_REGS64
#undef AIM_WG_REGS32
#undef AIM_WG_ACC64
#undef AIM_WG_ACC32
#undef AIM_WG_F4

// ---- mbarriers (PTX ISA 9.7.13.15) --------------------------------------------------------------

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(arrivals) : "memory");
}
// Makes the initialised barriers visible to the async proxy (TMA's complete-tx) and other threads;
// a CTA barrier must follow before any other thread uses them.
__device__ __forceinline__ void fence_mbar_init() { asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory"); }

__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.shared::cta.b64 state, [%0];\n}\n" ::"r"(bar) : "memory");
}
// One arrival that also adds `bytes` to the transaction count the current phase waits for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("{\n.reg .b64 state;\nmbarrier.arrive.expect_tx.shared::cta.b64 state, [%0], %1;\n}\n" ::"r"(bar),
               "r"(bytes)
               : "memory");
}
// One arrival, triggered when every cp.async this thread issued so far has landed; the barrier's
// arrival count must include it (.noinc).
__device__ __forceinline__ void cp_async_arrive_noinc(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
// Block until the phase with this parity has completed (acquire: the data it guards is visible).
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (done == 0);
}

// ---- TMA (PTX ISA 9.7.9.25) ---------------------------------------------------------------------

// Tile load of the 4-D tensor map `map` (a __grid_constant__ kernel parameter) at coordinates
// (c0 innermost .. c3) into shared memory at `dst`, completing `bytes` of the transaction count of
// the mbarrier `bar`. Elements outside the tensor are written as zeros.
__device__ __forceinline__ void tma_load_4d(uint32_t dst, const void* map, uint32_t bar, int c0, int c1, int c2,
                                            int c3) {
  asm volatile(
      "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, "
      "%6}], [%2];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3)
      : "memory");
}
__device__ __forceinline__ void prefetch_tensor_map(const void* map) {
  asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// ---- warps, warpgroups ---------------------------------------------------------------------------

// Barrier kId (1..15; 0 is __syncthreads) among kThreads threads (a multiple of 32). The id is an
// immediate so that ptxas knows which hardware barriers the kernel uses.
template <int kId, int kThreads>
__device__ __forceinline__ void named_barrier_sync() {
  asm volatile("bar.sync %0, %1;\n" ::"n"(kId), "n"(kThreads) : "memory");
}

template <int kRegs>
__device__ __forceinline__ void warpgroup_regs_increase() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void warpgroup_regs_decrease() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// Four 8x8 16-bit matrices from registers to shared memory, transposed: lane l's register i holds
// row l/4, columns 2(l%4), 2(l%4)+1 of matrix i, which land in memory row 2(l%4)(+1), column l/4;
// lanes 8i..8i+7 give the addresses of matrix i's 8 memory rows (16 bytes each).
__device__ __forceinline__ void stmatrix_x4_trans(uint32_t addr, const uint32_t (&r)[4]) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r[0]),
               "r"(r[1]), "r"(r[2]), "r"(r[3])
               : "memory");
}

}  // namespace gpu
}  // namespace aim
