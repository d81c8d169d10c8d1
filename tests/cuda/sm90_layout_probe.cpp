// Prints the Hopper kernels' layout arithmetic (aim/attention_sm90.h) over every argument the
// kernels use, one "name arg... value" line each, for tests/cuda/test_sm90_layout.py to compare
// with the formulas that cuda/fragment_check_sm90*.py replay. Host C++ only.
#include <cstdio>
#include <initializer_list>

#include "aim/attention_sm90.h"

namespace {

template <int kD>
void print_tiles() {
  using T = aim::sm90::BwdTiles<kD>;
  std::printf("tiles %d %d %d %d %d %u %u %u %u %u %u %u %u %u %u %u %u %u %u %u\n", kD, T::kStepQueries,
              T::kStepsPerBlock, T::kStages, T::kThreads, T::kOffK, T::kOffV, T::kOffQ, T::kOffDo, T::kOffDs,
              T::kOffLse, T::kOffDelta, T::kOffMask, T::kOffBarriers, T::kSmemBytes, T::kFullArrivals,
              T::kEmptyArrivals, T::kFullTxBytes, T::kKVTxBytes, T::kQBytes);
  for (int w = 0; w < T::kConsumers; ++w) std::printf("dq_tile %d %d %d %d\n", kD, w, T::dq_row0(w), T::dq_col0(w));
}

}  // namespace

int main() {
  using namespace aim::sm90;
  for (int rows : {64, 128}) {
    for (int r = 0; r < rows; ++r) {
      for (int col = 0; col < 128; ++col) std::printf("sw128_offset %d %d %d %u\n", rows, r, col, sw128_offset(rows, r, col));
    }
    for (int row0 : {0, 64}) {
      for (int kk = 0; kk < 8; ++kk) std::printf("kmajor_start %d %d %d %u\n", rows, row0, kk, kmajor_start(rows, row0, kk));
    }
    for (int n0 : {0, 64}) {
      for (int kk = 0; kk < rows / 16; ++kk) {
        std::printf("mnmajor_start %d %d %d %u\n", rows, n0, kk, mnmajor_start(rows, n0, kk));
      }
    }
    for (int key0 = 0; key0 < 128; key0 += 16) {
      for (int kq = 0; kq < rows / 16; ++kq) {
        for (int lane = 0; lane < 32; ++lane) {
          std::printf("stmatrix_trans_row %d %d %d %d %u\n", rows, key0, kq, lane, stmatrix_trans_row(rows, key0, kq, lane));
        }
      }
    }
  }
  for (uint32_t addr : {0u, 1024u, 0x2A3F0u, 0x3FC00u}) {
    for (uint32_t lbo : {16u, 8192u, 16384u}) {
      std::printf("desc_sw128 %u %u 1024 %llu\n", addr, lbo, static_cast<unsigned long long>(desc_sw128(addr, lbo, 1024)));
    }
  }
  for (int t = 0; t < 128; ++t) {
    for (int e = 0; e < 4; ++e) {
      std::printf("acc_row %d %d %d\n", t, e, acc_row(t, e));
      for (int j = 0; j < 16; ++j) std::printf("acc_col %d %d %d %d\n", t, j, e, acc_col(t, j, e));
    }
  }
  for (int j = 0; j < 16; ++j) {
    for (int h = 0; h < 2; ++h) std::printf("acc_to_a %d %d %d %d\n", j, h, acc_to_a_kstep(j), acc_to_a_reg(j, h));
  }
  for (int key = 0; key < 128; ++key) std::printf("key_mask %d %d %d\n", key, key_mask_word(key), key_mask_shift(key));
  for (int t = 0; t < 12; ++t) {
    std::printf("pipeline %d %d %u %u\n", t, stage_of(t, 2), full_parity(t, 2), empty_parity(t, 2));
    for (int spb : {1, 2}) std::printf("bwd_step %d %d %d %d\n", t, spb, bwd_step(t, spb).entry, bwd_step(t, spb).sub);
  }
  print_tiles<64>();
  print_tiles<128>();
  return 0;
}
