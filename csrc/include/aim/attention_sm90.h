// Layout arithmetic of the Hopper (sm_90a) attention kernels: the shared-memory tile layout that TMA
// writes and wgmma reads, the wgmma shared-memory descriptors, which accumulator element each thread
// owns, the backward's shared-memory map, its step walk and its pipeline phases.
//
// Nothing here touches the GPU: these are plain integer functions that the kernels
// (cuda/attention_fwd_sm90.cu, cuda/attention_bwd_sm90.cu) call and that the CPU tests call too
// (tests/cuda/sm90_layout_probe.cpp prints them; cuda/fragment_check_sm90*.py replay them against
// the PTX ISA's layouts), so the numbers the GPU uses are the numbers that were checked.
//
// Tiles hold 16-bit elements (bf16, f16) in the canonical 128-byte-swizzle layout of wgmma: a tile
// of R rows x C columns is C/64 "column atoms" of R rows x 128 bytes (64 elements), atoms R*128
// bytes apart; the 16-byte chunk c (0..7) of row r of an atom sits at chunk slot c ^ (r & 7). With
// the tile on a 1024-byte boundary this is the "Swizzle<3,4,3>" pattern on absolute shared
// addresses (byte bits 4-6 ^= bits 7-9), which is also what a TMA load with
// CU_TENSOR_MAP_SWIZZLE_128B and a box of 64 columns x R rows writes.
#pragma once

#include <cstdint>

#include "aim/attention_layout.h"

namespace aim {
namespace sm90 {

constexpr int kAtomCols = 64;       // 16-bit elements per 128-byte swizzled row
constexpr uint32_t kRowBytes = 128;  // bytes per row of one column atom
constexpr uint32_t kGroupBytes = 8 * kRowBytes;  // 8 rows: one period of the swizzle (SBO)

// Bytes of one column atom of a tile with `rows` rows.
AIM_HOST_DEVICE constexpr uint32_t atom_bytes(int rows) { return static_cast<uint32_t>(rows) * kRowBytes; }

// Byte offset of element (r, col) in a swizzled tile of `rows` rows.
AIM_HOST_DEVICE constexpr uint32_t sw128_offset(int rows, int r, int col) {
  return static_cast<uint32_t>(col >> 6) * atom_bytes(rows) + static_cast<uint32_t>(r) * kRowBytes +
         (static_cast<uint32_t>(((col & 63) >> 3) ^ (r & 7)) << 4) + static_cast<uint32_t>(col & 7) * 2u;
}

// wgmma shared-memory matrix descriptor, 128-byte swizzle (PTX ISA "Matrix Descriptor Format"):
// start address >> 4 in bits 0-13, leading-dimension byte offset >> 4 in bits 16-29, stride-
// dimension byte offset >> 4 in bits 32-45, base offset 0 in bits 49-51 (atoms 1024-byte aligned),
// swizzle mode 1 (128B) in bits 62-63.
AIM_HOST_DEVICE constexpr uint64_t desc_sw128(uint32_t smem_addr, uint32_t lbo_bytes, uint32_t sbo_bytes) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFFu) >> 4) |
         (static_cast<uint64_t>((lbo_bytes & 0x3FFFFu) >> 4) << 16) |
         (static_cast<uint64_t>((sbo_bytes & 0x3FFFFu) >> 4) << 32) | (uint64_t{1} << 62);
}

// Descriptor start offset (bytes from the tile base) of k-step kk (16 elements along the contiguous
// dimension) of a K-major operand whose 64 (or N) rows start at row0 of a tile of `rows` rows:
// four k-steps per 128-byte row (32 bytes each, inside the swizzled row), then the next atom.
// LBO is unused for swizzled K-major operands (encoded 1); SBO = kGroupBytes.
AIM_HOST_DEVICE constexpr uint32_t kmajor_start(int rows, int row0, int kk) {
  return static_cast<uint32_t>(kk >> 2) * atom_bytes(rows) + static_cast<uint32_t>(row0) * kRowBytes +
         static_cast<uint32_t>(kk & 3) * 32u;
}

// Descriptor start offset of k-step kk (16 rows of the tile) of an MN-major operand (the tile's
// rows run along K, its columns along N) whose N range starts at column n0 (a multiple of 64):
// LBO = atom_bytes(rows) (next 64 columns), SBO = kGroupBytes (next 8 rows).
AIM_HOST_DEVICE constexpr uint32_t mnmajor_start(int rows, int n0, int kk) {
  return static_cast<uint32_t>(n0 >> 6) * atom_bytes(rows) + static_cast<uint32_t>(kk) * 16u * kRowBytes;
}

// Accumulator of an m64nNk16 wgmma (fp32): register d[j][e] of thread `t` (0..127 in the
// warpgroup) holds row acc_row(t, e), column acc_col(t, j, e): warp t/32 holds rows 16(t/32).., in
// mma.sync's m16n8 C layout, repeated over the N/8 column groups j. The register-A fragment of
// m64nNk16 (16-bit) is mma.sync's m16n8k16 A layout of the same rows: register i of k-step kk holds
// (row acc_row(t, 2 * (i & 1)), columns 16kk + 8(i >> 1) + 2(t & 3) + {0, 1}), which is exactly
// the accumulator pair d[2kk + (i >> 1)][2 (i & 1) + {0, 1}]: P and dS go from accumulators to A
// operands without moving (acc_to_a_index).
AIM_HOST_DEVICE constexpr int acc_row(int t, int e) { return 16 * (t >> 5) + ((t & 31) >> 2) + 8 * (e >> 1); }
AIM_HOST_DEVICE constexpr int acc_col(int t, int j, int e) { return 8 * j + 2 * (t & 3) + (e & 1); }
// Column group j of the accumulator -> (k-step, A register pair) of the register-A operand:
// register 2*(j & 1) + h of k-step j / 2 holds d[j][2h], d[j][2h + 1] (h = 0: row acc_row(t, 0),
// h = 1: row acc_row(t, 2)).
AIM_HOST_DEVICE constexpr int acc_to_a_kstep(int j) { return j >> 1; }
AIM_HOST_DEVICE constexpr int acc_to_a_reg(int j, int h) { return 2 * (j & 1) + h; }

// stmatrix.x4.trans of the A registers of k-step kq (16 columns of an accumulator tile whose rows
// are keys and columns are queries) into a K-major tile [query][key] of `rows` rows: lane L gives
// the address of memory row (L & 7) of matrix L >> 3; matrix i holds keys key0 + 8(i & 1).. and
// queries 16kq + 8(i >> 1)... key0 is the warp's first key (a multiple of 16).
AIM_HOST_DEVICE constexpr uint32_t stmatrix_trans_row(int rows, int key0, int kq, int lane) {
  return sw128_offset(rows, 16 * kq + 8 * ((lane >> 3) >> 1) + (lane & 7), key0 + 8 * ((lane >> 3) & 1));
}

// Mask word and bit of block-local key `key` in a row of a partial block's mask (see
// aim/attention_layout.h): rows are queries, 32 keys per word.
AIM_HOST_DEVICE constexpr int key_mask_word(int key) { return key >> 5; }
AIM_HOST_DEVICE constexpr int key_mask_shift(int key) { return key & 31; }

// Pipeline of `stages` shared-memory stages: step t uses stage t % stages; a consumer waits for the
// "full" barrier's phase (t / stages) & 1, the producer for the "empty" barrier's opposite phase
// (a fresh barrier counts as having completed the phase before its first, so the producer's first
// pass over the stages does not wait).
AIM_HOST_DEVICE constexpr int stage_of(int t, int stages) { return t % stages; }
AIM_HOST_DEVICE constexpr uint32_t full_parity(int t, int stages) { return static_cast<uint32_t>((t / stages) & 1); }
AIM_HOST_DEVICE constexpr uint32_t empty_parity(int t, int stages) { return full_parity(t, stages) ^ 1u; }

// Tiles of the Hopper backward (attention_bwd_sm90.cu), per head dim.
//  * One CTA per 128-key layout block: a producer warpgroup (one warp issues TMA loads) and two
//    consumer warpgroups, consumer w owning keys 64w..64w+63, whose dK and dV (64 x kD fp32 each)
//    stay in its registers across the whole by_key list.
//  * A step is kStepQueries queries of a listed query block (64 for kD = 128, a whole block of
//    128 for kD = 64): S^T, dP^T are 64 keys x kStepQueries per consumer (kStepQueries/2 fp32
//    registers each), dK, dV kD/2 each: 32 + 32 + 64 + 64 = 192 at kD = 128, 64 + 64 + 32 + 32
//    = 192 at kD = 64.
//  * dQ of a step (kStepQueries x kD) is split over the consumers as two 64 x 64 tiles: by columns
//    for kD = 128 (consumer w: columns 64w..), by rows for kD = 64 (consumer w: queries 64w..).
//  * Shared memory (byte offsets from a 1024-aligned base): K, V (128 rows), kStages stages of Q,
//    dO (kStepQueries rows), kStages stages of dS ([query][128 keys], the A of dQ = dS K), then
//    per stage lse and delta (kStepQueries floats each) and the mask words of the step's rows
//    (kStepQueries x 4), then the mbarriers.
template <int kD>
struct BwdTiles {
  static constexpr int kStepQueries = kD == 128 ? 64 : 128;
  static constexpr int kStepsPerBlock = kLayoutBlock / kStepQueries;
  static constexpr int kStages = 2;
  static constexpr int kConsumers = 2;                 // consumer warpgroups
  static constexpr int kThreads = 128 * (1 + kConsumers);
  static constexpr int kAtomsD = kD / kAtomCols;       // column atoms of a Q/K/V/dO tile
  static constexpr uint32_t kKVBytes = kLayoutBlock * kD * 2;
  static constexpr uint32_t kQBytes = kStepQueries * kD * 2;
  static constexpr uint32_t kDsBytes = kStepQueries * kLayoutBlock * 2;
  static constexpr uint32_t kVecBytes = kStepQueries * 4;          // lse or delta of one stage
  static constexpr uint32_t kMaskBytes = kStepQueries * kMaskWordsPerRow * 4;
  static constexpr uint32_t kOffK = 0;
  static constexpr uint32_t kOffV = kOffK + kKVBytes;
  static constexpr uint32_t kOffQ = kOffV + kKVBytes;               // + stage * kQBytes
  static constexpr uint32_t kOffDo = kOffQ + kStages * kQBytes;
  static constexpr uint32_t kOffDs = kOffDo + kStages * kQBytes;    // + stage * kDsBytes
  static constexpr uint32_t kOffLse = kOffDs + kStages * kDsBytes;  // + stage * kVecBytes
  static constexpr uint32_t kOffDelta = kOffLse + kStages * kVecBytes;
  static constexpr uint32_t kOffMask = kOffDelta + kStages * kVecBytes;
  static constexpr uint32_t kOffBarriers = kOffMask + kStages * kMaskBytes;  // full[s], empty[s], kv
  static constexpr uint32_t kBarrierBytes = (2 * kStages + 1) * 8;
  static constexpr uint32_t kSmemBytes = kOffBarriers + kBarrierBytes + 1024;  // + alignment slack
  // Arrivals that complete a stage's "full" barrier: the TMA-issuing lane (with the transaction
  // bytes of Q and dO) and the 32 lanes whose cp.async copies (lse, delta, mask) arrive on it.
  static constexpr uint32_t kFullArrivals = 1 + 32;
  static constexpr uint32_t kEmptyArrivals = 128 * kConsumers;  // every consumer thread releases
  static constexpr uint32_t kFullTxBytes = 2 * kQBytes;
  static constexpr uint32_t kKVTxBytes = 2 * kKVBytes;
  // dQ tile (64 x 64) of consumer w: first query row and first column within the step.
  static AIM_HOST_DEVICE constexpr int dq_row0(int w) { return kStepQueries == 128 ? 64 * w : 0; }
  static AIM_HOST_DEVICE constexpr int dq_col0(int w) { return kStepQueries == 64 ? 64 * w : 0; }

  static_assert(kD == 64 || kD == 128, "head_dim 64 or 128");
  static_assert(kOffQ % 1024 == 0 && kOffDo % 1024 == 0 && kOffDs % 1024 == 0 && kQBytes % 1024 == 0 &&
                    kDsBytes % 1024 == 0,
                "swizzled tiles must start on 1024-byte boundaries");
  static_assert(kOffBarriers % 8 == 0, "mbarriers are 8-byte aligned");
  static_assert(kVecBytes % 32 == 0 && (kStepQueries * kMaskWordsPerRow) % 32 == 0, "whole lanes per copy");
  static_assert(kFullTxBytes < (1u << 20), "mbarrier transaction count range");
};

// Step t of a backward CTA's walk over its by_key list: list entry t / kStepsPerBlock, queries
// sub * kStepQueries .. + kStepQueries - 1 of that query block.
struct BwdStep {
  int entry;  // offset into the key block's by_key list
  int sub;    // which kStepQueries-query part of the query block
};
AIM_HOST_DEVICE constexpr BwdStep bwd_step(int t, int steps_per_block) {
  return BwdStep{t / steps_per_block, t % steps_per_block};
}

}  // namespace sm90
}  // namespace aim
