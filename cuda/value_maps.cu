// CUDA kernels of the value-map ops. All arithmetic (projection, blob, bilinear weights, chain rule)
// is in aim/value_maps.h, which the CPU kernels share; this file only maps threads to work, stages
// blobs in shared memory and accumulates with atomics.
//
// render: a block per run of up to 8 consecutive 32 x 32 pixel tiles of one (b, t, v) map
//   (grid-stride over the runs). Each pass, the block's 256 threads build the blobs of up to 256
//   points, keep those that land in the image (compacted in point order: ballot + per-warp counts,
//   so the per-pixel combine order is the CPU's and the sum mode matches it), then, tile by tile,
//   each thread combines the blobs that meet the tile into its 4 pixels (one column, rows ty, ty+8,
//   ty+16, ty+24) and stores them; a warp writes 32 consecutive pixels of a row. With more than 256
//   points, a pass after the first reads back the partial result its thread stored.
// render backward: a block per tile; a sweep over the points stages the blobs that meet the tile
//   and recombines its pixels (tracking the winning point under max), a second sweep sums each
//   staged blob's moments over the pixels that pass it their gradient (aim/value_maps.h), reduces
//   them per warp, and lane 0 adds the warp's share of the point's gradient with atomicAdd.
// sample: a thread per (b, t, p, v) sample.
// sample backward: a thread per (b, t, p), looping over views in order (so grad_points needs no
//   atomics and sums in the CPU's order); grad_maps gets the 4 bilinear weights by atomicAdd.
//
// Resources (nvcc 13.0, -O3 --use_fast_math, ptxas -v, sm_90; no spills, no stack):
//   render_kernel<float>           64 registers (capped), 9248 B shared  <double> 122, 13344 B shared
//   render_backward_kernel<float>  83 (max), 80 (sum)                <double> 136 (max), 132 (sum)
//   sample_kernel<float>           40                                <double>  64
//   sample_backward<float>         78                                <double> 114
// Every kernel has run on an H200 (tests/ops/test_value_maps.py, compute-sanitizer memcheck and
// racecheck: benchmarks/gpu_suite.sh); figures in benchmarks/RESULTS.md.
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "aim/value_maps.h"
#include "value_maps_cuda.h"

namespace aim {
namespace gpu {
namespace {

using vmap::as;
using vmap::as_mut;
using vmap::SampleIndex;

// 32 x 32 tiles: 32 columns = one warp per row (128-byte float stores); 8 warps cover the 32 rows
// in 4 steps, so a thread's column weight exp(...) is reused for 4 pixels, and the per-tile cost
// of building the P blobs is spread over 1024 pixels.
struct RenderTraits {
  static constexpr int kTile = 32;
  static constexpr int kThreads = 256;
  static constexpr int kWarps = kThreads / 32;
  static constexpr int kRowsPerThread = kTile / kWarps;
  // Tiles per forward block: its blobs are built once for all of them (the per-block projection and
  // compaction, a few dependent global loads and barriers, would otherwise cost as much as a tile's
  // stores), while a 256 x 320 map still splits into 10 blocks to fill the GPU at small batches.
  static constexpr int kTilesPerBlock = 8;
};

constexpr int kThreads = 256;       // sample kernels: one sample (or point) per thread
constexpr int64_t kMaxGrid = 1 << 20;  // grid-stride loops cover anything larger

void check_launch(const char* kernel) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("aim CUDA value maps: launching ") + kernel + " failed: " +
                             cudaGetErrorString(err));
  }
}

int grid_for(int64_t work, int64_t per_block) {
  return static_cast<int>(std::min<int64_t>((work + per_block - 1) / per_block, kMaxGrid));
}

// Where a render block's work is: tile `tile` of the grid-stride loop.
struct RenderTile {
  int64_t map, b, t, v, x0, y0;
};

__device__ RenderTile render_tile(const vmap::RenderShape& s, int64_t tile, int64_t tiles_x, int64_t tiles_per_map) {
  const int64_t m = tile / tiles_per_map, r = tile % tiles_per_map;
  return RenderTile{m, m / (s.views * s.frames), (m / s.views) % s.frames, m % s.views,
                    (r % tiles_x) * RenderTraits::kTile, (r / tiles_x) * RenderTraits::kTile};
}

// An inclusive-exclusive pixel rectangle of one map: staged blobs are those that meet it.
struct PixelBox {
  int64_t x0, y0, x1, y1;
};

template <typename T>
__device__ bool meets(const vmap::Blob<T>& blob, const PixelBox& box) {
  return blob.x_hi >= box.x0 && blob.x_lo < box.x1 && blob.y_hi >= box.y0 && blob.y_lo < box.y1;
}

__device__ PixelBox tile_box(const RenderTile& tile) {
  return PixelBox{tile.x0, tile.y0, tile.x0 + RenderTraits::kTile, tile.y0 + RenderTraits::kTile};
}

// Shared memory of a render block: the blobs of one pass of up to kThreads points that meet its
// pixels, in point order, with their point indices.
template <typename T>
struct TileBlobs {
  vmap::Blob<T> blob[RenderTraits::kThreads];
  int point[RenderTraits::kThreads];
  int warp_hits[RenderTraits::kWarps];
};

// Builds the blobs of points p0 .. p0 + kThreads - 1 (a thread each) in the map of `tile` and
// compacts those that meet `box` into `staged` in point order (ballot + per-warp counts); returns
// their number. Every thread of the block calls it; the caller syncs before the next call
// rewrites `staged`.
template <typename T>
__device__ int stage_blobs(const vmap::RenderShape& s, const RenderTile& tile, const PixelBox& box,
                           const T* __restrict__ points, const uint8_t* __restrict__ mask,
                           const T* __restrict__ intrinsics, const T* __restrict__ extrinsics,
                           const vmap::BlobParams& params, int64_t p0, TileBlobs<T>& staged) {
  using Traits = RenderTraits;
  const SampleIndex idx{s.frames, s.views, s.points};
  const vmap::Camera<T> cam = idx.camera(intrinsics, extrinsics, tile.b, tile.t, tile.v);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int64_t p = p0 + tid;
  vmap::Blob<T> blob{};
  const bool hit = p < s.points &&
                   vmap::make_blob(cam, points + idx.point(tile.b, tile.t, p),
                                   mask[(tile.b * s.frames + tile.t) * s.points + p] != 0, params, s.height, s.width,
                                   &blob) &&
                   meets(blob, box);
  const unsigned ballot = __ballot_sync(0xffffffffu, hit);
  if (lane == 0) staged.warp_hits[warp] = __popc(ballot);
  __syncthreads();
  int offset = 0, count = 0;
  for (int w = 0; w < Traits::kWarps; ++w) {
    offset += w < warp ? staged.warp_hits[w] : 0;
    count += staged.warp_hits[w];
  }
  if (hit) {
    const int slot = offset + __popc(ballot & ((1u << lane) - 1u));
    staged.blob[slot] = blob;
    staged.point[slot] = static_cast<int>(p);
  }
  __syncthreads();
  return count;
}

// Row of this thread's k-th pixel in a tile (its column is x0 + lane).
__device__ int64_t tile_row(const RenderTile& tile, int k) {
  return tile.y0 + (threadIdx.x >> 5) + RenderTraits::kWarps * k;
}

// Combines the staged blobs that meet the tile into this thread's pixels (acc), in point order;
// with max, winner[k] becomes the point whose blob is the largest so far (strictly: the first one
// on ties).
template <typename T, int kMode, bool kTrackWinner>
__device__ void combine_staged(const RenderTile& tile, const TileBlobs<T>& staged, int count,
                               T (&acc)[RenderTraits::kRowsPerThread], int (&winner)[RenderTraits::kRowsPerThread]) {
  const int64_t x = tile.x0 + (threadIdx.x & 31);
  const PixelBox box = tile_box(tile);
  for (int i = 0; i < count; ++i) {
    const vmap::Blob<T>& bl = staged.blob[i];
    if (!meets(bl, box) || x < bl.x_lo || x > bl.x_hi) continue;
    const T wx = vmap::axis_weight(T(x) - bl.u, bl.sigma_u);
    for (int k = 0; k < RenderTraits::kRowsPerThread; ++k) {
      const int64_t y = tile_row(tile, k);
      if (y >= bl.y_lo && y <= bl.y_hi) {
        const T g = vmap::blob_value(wx, vmap::axis_weight(T(y) - bl.v, bl.sigma_v));
        if (kTrackWinner && g > acc[k]) winner[k] = staged.point[i];
        acc[k] = vmap::combine(acc[k], g, kMode);
      }
    }
  }
}

// Float is held at 64 registers (no spills) so that 4 blocks (32 warps) fit on an SM, against 3 at
// the 80 it takes unbounded; double needs more registers and is left to the compiler.
template <typename T, int kMode>
__global__ void __launch_bounds__(RenderTraits::kThreads, sizeof(T) == 4 ? 4 : 1)
    render_kernel(vmap::RenderShape s, const T* __restrict__ points, const uint8_t* __restrict__ mask,
                  const T* __restrict__ intrinsics, const T* __restrict__ extrinsics, vmap::BlobParams params,
                  T* __restrict__ out, int64_t tiles_x, int64_t tiles_per_map, int64_t runs_per_map,
                  int64_t total_runs) {
  using Traits = RenderTraits;
  __shared__ TileBlobs<T> staged;
  const PixelBox image{0, 0, s.width, s.height};
  const int64_t x_in_tile = threadIdx.x & 31;
  for (int64_t n = blockIdx.x; n < total_runs; n += gridDim.x) {
    const int64_t map = n / runs_per_map, first = (n % runs_per_map) * Traits::kTilesPerBlock;
    const int64_t last = first + Traits::kTilesPerBlock < tiles_per_map ? first + Traits::kTilesPerBlock : tiles_per_map;
    const RenderTile run_start = render_tile(s, map * tiles_per_map + first, tiles_x, tiles_per_map);
    T* out_map = out + map * s.height * s.width;
    // One pass even without points: the maps are still written (as zeros).
    for (int64_t p0 = 0; p0 == 0 || p0 < s.points; p0 += Traits::kThreads) {
      const int count = stage_blobs(s, run_start, image, points, mask, intrinsics, extrinsics, params, p0, staged);
      const bool first_pass = p0 == 0, last_pass = p0 + Traits::kThreads >= s.points;
      for (int64_t i = first; i < last; ++i) {
        const RenderTile tile = render_tile(s, map * tiles_per_map + i, tiles_x, tiles_per_map);
        const int64_t x = tile.x0 + x_in_tile;
        T acc[Traits::kRowsPerThread];
        int unused[Traits::kRowsPerThread];
        for (int k = 0; k < Traits::kRowsPerThread; ++k) {
          const int64_t y = tile_row(tile, k);
          // A later pass resumes from what this same thread stored (program order makes it visible).
          acc[k] = !first_pass && x < s.width && y < s.height ? out_map[y * s.width + x] : T(0);
        }
        combine_staged<T, kMode, false>(tile, staged, count, acc, unused);
        for (int k = 0; k < Traits::kRowsPerThread; ++k) {
          const int64_t y = tile_row(tile, k);
          if (x < s.width && y < s.height) out_map[y * s.width + x] = last_pass ? vmap::finish(acc[k], kMode) : acc[k];
        }
      }
      __syncthreads();  // `staged` is rewritten by the next pass or run
    }
  }
}

template <typename T>
__device__ T warp_sum(T x) {
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_down_sync(0xffffffffu, x, offset);
  return x;
}

// Two sweeps over the points per tile: the first recombines the pixels (the forward's arithmetic,
// tracking the winner under max); the second sums, per staged blob, its moments over the pixels
// that pass it their gradient, reduces them over each warp, and lane 0 adds that warp's share of
// the point's gradient with atomics (the chain rule is linear in the moments).
// One block per SM at least: without the explicit 1, ptxas caps the double/max variant at 128
// registers and spills (it needs about 135).
template <typename T, int kMode>
__global__ void __launch_bounds__(RenderTraits::kThreads, 1)
    render_backward_kernel(vmap::RenderShape s, const T* __restrict__ points, const uint8_t* __restrict__ mask,
                           const T* __restrict__ intrinsics, const T* __restrict__ extrinsics,
                           vmap::BlobParams params, const T* __restrict__ grad_out, T* __restrict__ grad_points,
                           int64_t tiles_x, int64_t tiles_per_map, int64_t total_tiles) {
  using Traits = RenderTraits;
  constexpr bool kMax = kMode == vmap::kCombineMax;
  __shared__ TileBlobs<T> staged;
  const SampleIndex idx{s.frames, s.views, s.points};
  const int lane = threadIdx.x & 31;
  for (int64_t n = blockIdx.x; n < total_tiles; n += gridDim.x) {
    const RenderTile tile = render_tile(s, n, tiles_x, tiles_per_map);
    const int64_t x = tile.x0 + lane;
    T acc[Traits::kRowsPerThread], grad[Traits::kRowsPerThread];
    int winner[Traits::kRowsPerThread];
    for (int k = 0; k < Traits::kRowsPerThread; ++k) {
      const int64_t y = tile_row(tile, k);
      acc[k] = T(0);
      winner[k] = -1;
      grad[k] = x < s.width && y < s.height ? grad_out[(tile.map * s.height + y) * s.width + x] : T(0);
    }
    for (int64_t p0 = 0; p0 < s.points; p0 += Traits::kThreads) {
      const int count = stage_blobs(s, tile, tile_box(tile), points, mask, intrinsics, extrinsics, params, p0, staged);
      combine_staged<T, kMode, kMax>(tile, staged, count, acc, winner);
      __syncthreads();
    }
    for (int64_t p0 = 0; p0 < s.points; p0 += Traits::kThreads) {
      const int count = stage_blobs(s, tile, tile_box(tile), points, mask, intrinsics, extrinsics, params, p0, staged);
      for (int i = 0; i < count; ++i) {
        const vmap::Blob<T>& bl = staged.blob[i];
        const int p = staged.point[i];
        vmap::BlobMoments<T> m{T(0), T(0), T(0), T(0)};
        if (x >= bl.x_lo && x <= bl.x_hi) {
          const T wx = vmap::axis_weight(T(x) - bl.u, bl.sigma_u);
          for (int k = 0; k < Traits::kRowsPerThread; ++k) {
            const int64_t y = tile_row(tile, k);
            const bool passes = kMax ? winner[k] == p && acc[k] > T(0) : vmap::sum_passes_gradient(acc[k]);
            if (y >= bl.y_lo && y <= bl.y_hi && passes) {
              vmap::add_blob_pixel(grad[k], wx, vmap::axis_weight(T(y) - bl.v, bl.sigma_v), T(x) - bl.u,
                                   T(y) - bl.v, &m);
            }
          }
        }
        m = vmap::BlobMoments<T>{warp_sum(m.u), warp_sum(m.v), warp_sum(m.uu), warp_sum(m.vv)};
        if (lane == 0 && (m.u != T(0) || m.v != T(0) || m.uu != T(0) || m.vv != T(0))) {
          T g[3] = {T(0), T(0), T(0)};
          const vmap::Camera<T> cam = idx.camera(intrinsics, extrinsics, tile.b, tile.t, tile.v);
          vmap::add_blob_point_gradient(cam, points + idx.point(tile.b, tile.t, p), params, m, g);
          T* out = grad_points + idx.point(tile.b, tile.t, p);
          for (int j = 0; j < 3; ++j) atomicAdd(out + j, g[j]);
        }
      }
      __syncthreads();
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    sample_kernel(vmap::SampleShape s, vmap::StridedMaps maps, const T* __restrict__ points,
                  const T* __restrict__ intrinsics, const T* __restrict__ extrinsics, const T* __restrict__ boxes,
                  T* __restrict__ values, uint8_t* __restrict__ valid) {
  const SampleIndex idx{s.frames, s.views, s.points};
  const int64_t total = s.batch * s.frames * s.points * s.views;
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < total; n += int64_t{gridDim.x} * blockDim.x) {
    // n is also the (B, T, P, V) output index.
    const int64_t v = n % s.views, p = (n / s.views) % s.points, bt = n / (s.views * s.points);
    const int64_t b = bt / s.frames, t = bt % s.frames;
    const vmap::Camera<T> cam = idx.camera(intrinsics, extrinsics, b, t, v);
    const vmap::ViewBox<T> box = vmap::load_view_box(boxes, v, s.height, s.width);
    const vmap::MapPoint<T> mp = vmap::locate(cam, box, points + idx.point(b, t, p));
    T value = T(0);
    if (mp.valid) {
      value = vmap::sample_bilinear(vmap::map_view<T>(maps, s, b, t, v), vmap::bilinear_at(mp.x, mp.y)).value;
    }
    values[n] = value;
    valid[n] = mp.valid ? 1 : 0;
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    sample_backward_kernel(vmap::SampleShape s, vmap::StridedMaps maps, const T* __restrict__ points,
                           const T* __restrict__ intrinsics, const T* __restrict__ extrinsics,
                           const T* __restrict__ boxes, const T* __restrict__ grad_values, T* __restrict__ grad_maps,
                           T* __restrict__ grad_points) {
  const SampleIndex idx{s.frames, s.views, s.points};
  const int64_t total = s.batch * s.frames * s.points, pixels = s.height * s.width;
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < total; n += int64_t{gridDim.x} * blockDim.x) {
    const int64_t p = n % s.points, bt = n / s.points;
    const int64_t b = bt / s.frames, t = bt % s.frames;
    const T* world = points + idx.point(b, t, p);
    T grad[3] = {T(0), T(0), T(0)};
    for (int64_t v = 0; v < s.views; ++v) {
      const vmap::Camera<T> cam = idx.camera(intrinsics, extrinsics, b, t, v);
      const vmap::ViewBox<T> box = vmap::load_view_box(boxes, v, s.height, s.width);
      const vmap::MapPoint<T> mp = vmap::locate(cam, box, world);
      if (!mp.valid) continue;
      const T g = grad_values[idx.value(b, t, p, v)];
      const vmap::Bilinear<T> bil = vmap::bilinear_at(mp.x, mp.y);
      if (grad_maps != nullptr) {
        T* grad_map = grad_maps + (bt * s.map_views + (s.map_views == 1 ? 0 : v)) * pixels;
        for (int c = 0; c < 4; ++c) {
          const int64_t cx = bil.corner_x(c), cy = bil.corner_y(c);
          if (cx >= 0 && cx < s.width && cy >= 0 && cy < s.height) {
            atomicAdd(grad_map + cy * s.width + cx, g * bil.weight(c));
          }
        }
      }
      if (grad_points != nullptr) {
        const vmap::Sampled<T> sm = vmap::sample_bilinear(vmap::map_view<T>(maps, s, b, t, v), bil);
        vmap::add_point_gradient(cam, box, mp.proj, g * sm.d_x, g * sm.d_y, grad);
      }
    }
    if (grad_points != nullptr) {
      T* out = grad_points + idx.point(b, t, p);
      for (int j = 0; j < 3; ++j) out[j] = grad[j];
    }
  }
}

cudaStream_t as_stream(uintptr_t stream) { return reinterpret_cast<cudaStream_t>(stream); }

void check_combine(int combine) {
  if (combine != vmap::kCombineMax && combine != vmap::kCombineSum) {
    throw std::invalid_argument("CUDA render_value_maps: unknown combine mode " + std::to_string(combine));
  }
}

// The 32 x 32 tiles of every map that render and its backward walk, the forward's runs of up to
// kTilesPerBlock of them, and the block counts (forward: a run each; backward: a tile each).
struct RenderGrid {
  int64_t tiles_x, tiles_per_map, total_tiles, runs_per_map, total_runs;
  int forward_blocks, backward_blocks;
};

RenderGrid render_grid(const vmap::RenderShape& s) {
  const int64_t tile = RenderTraits::kTile, run = RenderTraits::kTilesPerBlock;
  const int64_t tiles_x = (s.width + tile - 1) / tile, tiles_per_map = tiles_x * ((s.height + tile - 1) / tile);
  const int64_t maps = s.batch * s.frames * s.views, runs_per_map = (tiles_per_map + run - 1) / run;
  return RenderGrid{tiles_x,
                    tiles_per_map,
                    maps * tiles_per_map,
                    runs_per_map,
                    maps * runs_per_map,
                    grid_for(maps * runs_per_map, 1),
                    grid_for(maps * tiles_per_map, 1)};
}

}  // namespace

void ValueMapKernels::render(int dtype, const vmap::RenderShape& s, uintptr_t points, uintptr_t point_mask,
                             uintptr_t intrinsics, uintptr_t extrinsics, const vmap::BlobParams& params, int combine,
                             uintptr_t out, uintptr_t stream) {
  check_combine(combine);
  const RenderGrid g = render_grid(s);
  if (g.total_runs == 0) return;
  vmap::dispatch_dtype(dtype, "CUDA value maps", [&](auto tag) {
    using T = decltype(tag);
    const auto kernel =
        combine == vmap::kCombineMax ? render_kernel<T, vmap::kCombineMax> : render_kernel<T, vmap::kCombineSum>;
    kernel<<<g.forward_blocks, RenderTraits::kThreads, 0, as_stream(stream)>>>(
        s, as<T>(points), as<uint8_t>(point_mask), as<T>(intrinsics), as<T>(extrinsics), params, as_mut<T>(out),
        g.tiles_x, g.tiles_per_map, g.runs_per_map, g.total_runs);
  });
  check_launch("render_kernel");
}

void ValueMapKernels::render_backward(int dtype, const vmap::RenderShape& s, uintptr_t points, uintptr_t point_mask,
                                      uintptr_t intrinsics, uintptr_t extrinsics, const vmap::BlobParams& params,
                                      int combine, uintptr_t grad_out, uintptr_t grad_points, uintptr_t stream) {
  check_combine(combine);
  const RenderGrid g = render_grid(s);
  if (g.total_tiles == 0 || s.points == 0) return;
  vmap::dispatch_dtype(dtype, "CUDA value maps", [&](auto tag) {
    using T = decltype(tag);
    const auto kernel = combine == vmap::kCombineMax ? render_backward_kernel<T, vmap::kCombineMax>
                                                     : render_backward_kernel<T, vmap::kCombineSum>;
    kernel<<<g.backward_blocks, RenderTraits::kThreads, 0, as_stream(stream)>>>(
        s, as<T>(points), as<uint8_t>(point_mask), as<T>(intrinsics), as<T>(extrinsics), params, as<T>(grad_out),
        as_mut<T>(grad_points), g.tiles_x, g.tiles_per_map, g.total_tiles);
  });
  check_launch("render_backward_kernel");
}

void ValueMapKernels::sample(int dtype, const vmap::SampleShape& s, const vmap::StridedMaps& maps, uintptr_t points,
                             uintptr_t intrinsics, uintptr_t extrinsics, uintptr_t view_boxes, uintptr_t values,
                             uintptr_t valid, uintptr_t stream) {
  const int64_t total = s.batch * s.frames * s.points * s.views;
  if (total == 0) return;
  vmap::dispatch_dtype(dtype, "CUDA value maps", [&](auto tag) {
    using T = decltype(tag);
    sample_kernel<T><<<grid_for(total, kThreads), kThreads, 0, as_stream(stream)>>>(
        s, maps, as<T>(points), as<T>(intrinsics), as<T>(extrinsics), as<T>(view_boxes), as_mut<T>(values),
        as_mut<uint8_t>(valid));
  });
  check_launch("sample_kernel");
}

void ValueMapKernels::sample_backward(int dtype, const vmap::SampleShape& s, const vmap::StridedMaps& maps,
                                      uintptr_t points, uintptr_t intrinsics, uintptr_t extrinsics,
                                      uintptr_t view_boxes, uintptr_t grad_values, uintptr_t grad_maps,
                                      uintptr_t grad_points, uintptr_t stream) {
  const int64_t total = s.batch * s.frames * s.points;
  if (total == 0 || (grad_maps == 0 && grad_points == 0)) return;
  vmap::dispatch_dtype(dtype, "CUDA value maps", [&](auto tag) {
    using T = decltype(tag);
    sample_backward_kernel<T><<<grid_for(total, kThreads), kThreads, 0, as_stream(stream)>>>(
        s, maps, as<T>(points), as<T>(intrinsics), as<T>(extrinsics), as<T>(view_boxes), as<T>(grad_values),
        as_mut<T>(grad_maps), as_mut<T>(grad_points));
  });
  check_launch("sample_backward_kernel");
}

}  // namespace gpu
}  // namespace aim
