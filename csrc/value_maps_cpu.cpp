// CPU kernels of the value-map ops. All arithmetic is in aim/value_maps.h (shared with CUDA); this
// file only orders the loops and splits them over OpenMP threads.
//
// render: one task per (b, t, v) map: zero it, then splat each visible point's blob over its pixel
//   box only (a column-weight row and a row weight per line, so no exp per pixel), in point order.
// render backward: one task per (b, t): per view, recombine the blobs over their boxes, then sum
//   each blob's gradient over the pixels that pass it one (see render_backward_typed).
// sample / sample backward: each thread one contiguous range of (b, t) slabs (all on the calling
//   thread below kParallelSamples), walked in chunks of samples (see for_each_sample); in the
//   backward a range's slabs of grad_maps and rows of grad_points, which no other thread touches.
#include "value_maps_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace aim {
namespace cpu {
namespace {

using vmap::as;
using vmap::as_mut;
using vmap::SampleIndex;

// Calls fn(y, wy, wx, n) for each row y of the blob's pixel box: wy is the row's weight and wx[i]
// the weight of column blob.x_lo + i, i < n (computed once into `column_weight`, width entries).
template <typename T, typename Fn>
void for_each_blob_row(const vmap::Blob<T>& blob, T* column_weight, Fn&& fn) {
  const int32_t n = blob.x_hi - blob.x_lo + 1;
  for (int32_t i = 0; i < n; ++i) column_weight[i] = vmap::axis_weight(T(blob.x_lo + i) - blob.u, blob.sigma_u);
  for (int32_t y = blob.y_lo; y <= blob.y_hi; ++y) {
    fn(y, vmap::axis_weight(T(y) - blob.v, blob.sigma_v), static_cast<const T*>(column_weight), n);
  }
}

// The blobs of view v of slab (b, t), in point order; visible[p] says whether point p has one.
template <typename T>
void make_view_blobs(const vmap::RenderShape& s, const T* points, const uint8_t* mask, const vmap::Camera<T>& cam,
                     const vmap::BlobParams& params, int64_t b, int64_t t, vmap::Blob<T>* blobs, uint8_t* visible) {
  const SampleIndex idx{s.frames, s.views, s.points};
  for (int64_t p = 0; p < s.points; ++p) {
    const bool masked_in = mask[(b * s.frames + t) * s.points + p] != 0;
    visible[p] = vmap::make_blob(cam, points + idx.point(b, t, p), masked_in, params, s.height, s.width, &blobs[p]);
  }
}

// Per-thread scratch of the render kernels.
template <typename T>
struct RenderScratch {
  std::vector<T> column_weight;
  std::vector<vmap::Blob<T>> blobs;
  std::vector<uint8_t> visible;

  explicit RenderScratch(const vmap::RenderShape& s)
      : column_weight(static_cast<size_t>(s.width)), blobs(static_cast<size_t>(s.points)),
        visible(static_cast<size_t>(s.points)) {}
};

template <typename T, int kMode>
void render_typed(const vmap::RenderShape& s, const T* points, const uint8_t* mask, const T* intrinsics,
                  const T* extrinsics, const vmap::BlobParams& params, T* out) {
  const SampleIndex idx{s.frames, s.views, s.points};
  const int64_t maps = s.batch * s.frames * s.views, pixels = s.height * s.width;
#pragma omp parallel
  {
    RenderScratch<T> scratch(s);
#pragma omp for schedule(dynamic, 1)
    for (int64_t m = 0; m < maps; ++m) {
      const int64_t v = m % s.views, t = (m / s.views) % s.frames, b = m / (s.views * s.frames);
      T* map = out + m * pixels;
      std::fill(map, map + pixels, T(0));
      const vmap::Camera<T> cam = idx.camera(intrinsics, extrinsics, b, t, v);
      make_view_blobs(s, points, mask, cam, params, b, t, scratch.blobs.data(), scratch.visible.data());
      for (int64_t p = 0; p < s.points; ++p) {
        if (!scratch.visible[p]) continue;
        const vmap::Blob<T>& blob = scratch.blobs[p];
        for_each_blob_row(blob, scratch.column_weight.data(), [&](int32_t y, T wy, const T* wx, int32_t n) {
          T* row = map + static_cast<int64_t>(y) * s.width + blob.x_lo;
          for (int32_t i = 0; i < n; ++i) row[i] = vmap::combine(row[i], vmap::blob_value(wx[i], wy), kMode);
        });
      }
      if (kMode == vmap::kCombineSum) {
        for (int64_t i = 0; i < pixels; ++i) map[i] = vmap::finish(map[i], kMode);
      }
    }
  }
}

// One task per (b, t) slab (its views in order), so each point's gradient is summed by one
// thread in a fixed order. Per view: recombine the blobs over their boxes into a scratch map
// (with the winning point of each pixel for max), then sum each blob's moments over the pixels
// that pass it the gradient, and turn them into the point's gradient.
template <typename T, int kMode>
void render_backward_typed(const vmap::RenderShape& s, const T* points, const uint8_t* mask, const T* intrinsics,
                           const T* extrinsics, const vmap::BlobParams& params, const T* grad_out, T* grad_points) {
  const SampleIndex idx{s.frames, s.views, s.points};
  const int64_t slabs = s.batch * s.frames, pixels = s.height * s.width;
  constexpr bool kMax = kMode == vmap::kCombineMax;
#pragma omp parallel
  {
    RenderScratch<T> scratch(s);
    std::vector<T> combined(static_cast<size_t>(pixels));
    std::vector<int32_t> winner(kMax ? static_cast<size_t>(pixels) : 0);
#pragma omp for schedule(dynamic, 1)
    for (int64_t bt = 0; bt < slabs; ++bt) {
      const int64_t b = bt / s.frames, t = bt % s.frames;
      for (int64_t v = 0; v < s.views; ++v) {
        const vmap::Camera<T> cam = idx.camera(intrinsics, extrinsics, b, t, v);
        const T* grad_map = grad_out + (bt * s.views + v) * pixels;
        make_view_blobs(s, points, mask, cam, params, b, t, scratch.blobs.data(), scratch.visible.data());
        for (int64_t p = 0; p < s.points; ++p) {  // reset the pixels the blobs cover
          if (!scratch.visible[p]) continue;
          const vmap::Blob<T>& blob = scratch.blobs[p];
          for (int32_t y = blob.y_lo; y <= blob.y_hi; ++y) {
            const int64_t row = static_cast<int64_t>(y) * s.width;
            std::fill(combined.data() + row + blob.x_lo, combined.data() + row + blob.x_hi + 1, T(0));
          }
        }
        for (int64_t p = 0; p < s.points; ++p) {
          if (!scratch.visible[p]) continue;
          const vmap::Blob<T>& blob = scratch.blobs[p];
          for_each_blob_row(blob, scratch.column_weight.data(), [&](int32_t y, T wy, const T* wx, int32_t n) {
            const int64_t row = static_cast<int64_t>(y) * s.width + blob.x_lo;
            for (int32_t i = 0; i < n; ++i) {
              const T g = vmap::blob_value(wx[i], wy);
              if (kMax && g > combined[row + i]) winner[row + i] = static_cast<int32_t>(p);
              combined[row + i] = vmap::combine(combined[row + i], g, kMode);
            }
          });
        }
        for (int64_t p = 0; p < s.points; ++p) {
          if (!scratch.visible[p]) continue;
          const vmap::Blob<T>& blob = scratch.blobs[p];
          vmap::BlobMoments<T> moments{T(0), T(0), T(0), T(0)};
          for_each_blob_row(blob, scratch.column_weight.data(), [&](int32_t y, T wy, const T* wx, int32_t n) {
            const int64_t row = static_cast<int64_t>(y) * s.width + blob.x_lo;
            const T dv = T(y) - blob.v;
            for (int32_t i = 0; i < n; ++i) {
              // With max, a pixel whose blobs are all 0 has no winner; add_blob_pixel skips it.
              const bool passes = kMax ? winner[row + i] == p && combined[row + i] > T(0)
                                       : vmap::sum_passes_gradient(combined[row + i]);
              if (passes) vmap::add_blob_pixel(grad_map[row + i], wx[i], wy, T(blob.x_lo + i) - blob.u, dv, &moments);
            }
          });
          vmap::add_blob_point_gradient(cam, points + idx.point(b, t, p), params, moments,
                                        grad_points + idx.point(b, t, p));
        }
      }
    }
  }
}

// Sampling walks the samples of a range of (b, t) slabs in (b, t, v, p) order, in chunks of three
// passes: locate the chunk's points (all the arithmetic, and a write prefetch of grad_map's rows
// in the backward), load the four neighbours of every sample in a loop that does nothing else,
// then use them in order. The maps are usually far larger than the caches and every sample
// touches two random cache lines and, with 4 KB pages, a page walk; a bare load loop keeps many
// of them in flight, where loads among the arithmetic (or software prefetches, which stalled on
// the page walks) wait in turn. Chunks run across views and slabs, so a few points per frame (the
// reward's two end-effector targets) fill them too.
constexpr int64_t kSampleChunk = 64;
// Fewer samples than this (about 1 ms of work on one core) run on the calling thread alone: when
// the machine's other cores are busy, a parallel region waits for a descheduled thread, a
// scheduler tick (4-8 ms measured on a loaded 2-core VM at 3,072 samples, against 0.1-0.2 ms on
// one thread).
constexpr int64_t kParallelSamples = 16384;

// The camera, canvas box and map of one (b, t, v) view, and where its samples' results go.
template <typename T>
struct SampleView {
  vmap::Camera<T> cam;
  vmap::ViewBox<T> box;
  vmap::MapView<T> map;
  T* grad_map;        // its (b, t, vm) image of grad_maps, or null
  const T* points;    // the (P, 3) points of slab (b, t)
  int64_t value;      // index of (b, t, p = 0, v) in values (B, T, P, V)
  int64_t point;      // index of (b, t, p = 0) in points and grad_points (B, T, P, 3)
};

// One sample between locating it and using it.
template <typename T>
struct Located {
  const SampleView<T>* view;
  int64_t p;
  vmap::MapPoint<T> at;
  vmap::Bilinear<T> corners;
  int64_t offset;  // of corner 0 in the map, when all four corners are inside it
  bool interior;   // all four corners inside the map (else reads go through MapView::at)
  T corner[4];     // the map at the four corners, when interior

  int64_t value_index(int64_t views) const { return view->value + p * views; }
};

template <typename T>
struct SampleInputs {
  const vmap::SampleShape& s;
  const vmap::StridedMaps& maps;
  const T *points, *intrinsics, *extrinsics, *boxes;
  T* grad_maps;  // null when not accumulated

  SampleView<T> view(int64_t bt, int64_t v) const {
    const SampleIndex idx{s.frames, s.views, s.points};
    const int64_t b = bt / s.frames, t = bt % s.frames, pixels = s.height * s.width;
    const int64_t map_image = bt * s.map_views + (s.map_views == 1 ? 0 : v);
    T* grad_map = grad_maps == nullptr ? nullptr : grad_maps + map_image * pixels;
    return SampleView<T>{idx.camera(intrinsics, extrinsics, b, t, v),
                         vmap::load_view_box(boxes, v, s.height, s.width),
                         vmap::map_view<T>(maps, s, b, t, v),
                         grad_map,
                         points + idx.point(b, t, 0),
                         idx.value(b, t, 0, v),
                         idx.point(b, t, 0)};
  }
};

// The interpolated value (and derivatives) of a valid located sample.
template <typename T>
vmap::Sampled<T> sample_located(const Located<T>& l) {
  if (!l.interior) return vmap::sample_bilinear(l.view->map, l.corners);
  return vmap::interpolate(l.corner[0], l.corner[1], l.corner[2], l.corner[3], l.corners);
}

// Calls fn(located) for every sample of slabs [bt_begin, bt_end), in (b, t, v, p) order.
template <typename T, typename Fn>
void for_each_sample(const SampleInputs<T>& in, int64_t bt_begin, int64_t bt_end, Fn&& fn) {
  const vmap::SampleShape& s = in.s;
  if (bt_begin >= bt_end || s.points == 0 || s.views == 0) return;
  SampleView<T> views[kSampleChunk + 1];  // the views of one chunk's samples
  Located<T> located[kSampleChunk];
  int64_t bt = bt_begin, v = 0, p = 0;
  views[0] = in.view(bt, v);
  while (bt < bt_end) {
    int64_t n = 0, current = 0;
    for (; n < kSampleChunk && bt < bt_end; ++n) {
      const SampleView<T>& view = views[current];
      Located<T>& l = located[n];
      l.view = &view;
      l.p = p;
      l.at = vmap::locate(view.cam, view.box, view.points + 3 * p);
      l.interior = false;
      if (l.at.valid) {
        const vmap::MapView<T>& map = view.map;
        l.interior = l.at.x >= T(0) && l.at.y >= T(0) && l.at.x < T(map.width - 1) && l.at.y < T(map.height - 1);
        if (l.interior) {
          l.corners = vmap::bilinear_inside(l.at.x, l.at.y);
          const int64_t x = l.corners.x0, y = l.corners.y0;
          l.offset = y * map.stride_h + x * map.stride_w;
          if (view.grad_map != nullptr) {
            __builtin_prefetch(view.grad_map + y * map.width + x, 1);
            __builtin_prefetch(view.grad_map + (y + 1) * map.width + x, 1);
          }
        } else {
          l.corners = vmap::bilinear_at(l.at.x, l.at.y);
        }
      }
      if (++p == s.points) {
        p = 0;
        if (++v == s.views) {
          v = 0;
          ++bt;
        }
        if (bt < bt_end) views[++current] = in.view(bt, v);
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      Located<T>& l = located[i];
      if (!l.interior) continue;
      const vmap::MapView<T>& map = l.view->map;
      const T* m = map.data + l.offset;
      l.corner[0] = m[0];
      l.corner[1] = m[map.stride_w];
      l.corner[2] = m[map.stride_h];
      l.corner[3] = m[map.stride_h + map.stride_w];
    }
    for (int64_t i = 0; i < n; ++i) fn(located[i]);
    views[0] = views[current];
  }
}

// Runs body(bt_begin, bt_end) over all slabs: on the calling thread for small problems, else
// each OpenMP thread on one contiguous range (so chunks span slabs and results do not depend on
// the split: every output element is written by one thread, in (v, p) order).
template <typename Body>
void over_slabs(const vmap::SampleShape& s, Body&& body) {
  const int64_t slabs = s.batch * s.frames;
  if (slabs * s.points * s.views < kParallelSamples || omp_get_max_threads() == 1) {
    body(int64_t{0}, slabs);
    return;
  }
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    body(slabs * thread / threads, slabs * (thread + 1) / threads);
  }
}

template <typename T>
void sample_typed(const SampleInputs<T>& in, T* values, uint8_t* valid) {
  const int64_t views = in.s.views;
  over_slabs(in.s, [&](int64_t bt_begin, int64_t bt_end) {
    for_each_sample(in, bt_begin, bt_end, [&](const Located<T>& l) {
      const int64_t o = l.value_index(views);
      values[o] = l.at.valid ? sample_located(l).value : T(0);
      valid[o] = l.at.valid ? 1 : 0;
    });
  });
}

template <typename T>
void sample_backward_typed(const SampleInputs<T>& in, const T* grad_values, T* grad_points) {
  const vmap::SampleShape& s = in.s;
  const int64_t views = s.views;
  over_slabs(s, [&](int64_t bt_begin, int64_t bt_end) {
    if (grad_points != nullptr) {
      std::fill(grad_points + bt_begin * s.points * 3, grad_points + bt_end * s.points * 3, T(0));
    }
    for_each_sample(in, bt_begin, bt_end, [&](const Located<T>& l) {
      if (!l.at.valid) return;
      const T g = grad_values[l.value_index(views)];
      const SampleView<T>& view = *l.view;
      if (view.grad_map != nullptr) {
        const int64_t width = s.width;
        if (l.interior) {
          T* gm = view.grad_map + l.corners.y0 * width + l.corners.x0;
          for (int c = 0; c < 4; ++c) gm[(c >> 1) * width + (c & 1)] += g * l.corners.weight(c);
        } else {
          for (int c = 0; c < 4; ++c) {
            const int64_t x = l.corners.corner_x(c), y = l.corners.corner_y(c);
            if (x >= 0 && x < width && y >= 0 && y < s.height) view.grad_map[y * width + x] += g * l.corners.weight(c);
          }
        }
      }
      if (grad_points != nullptr) {
        const vmap::Sampled<T> sm = sample_located(l);
        vmap::add_point_gradient(view.cam, view.box, l.at.proj, g * sm.d_x, g * sm.d_y,
                                 grad_points + view.point + 3 * l.p);
      }
    });
  });
}

// Non-finite cameras are an error (python/aim/ops/value_maps.py leaves this check to the CPU
// kernels: here it costs nothing, in Python two reductions per call).
template <typename T>
void check_finite(const char* op, const char* name, const T* data, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(data[i])) {
      throw std::invalid_argument(std::string("aim.ops.") + op + ": " + name + " contains non-finite values");
    }
  }
}

template <typename T>
void check_cameras(const char* op, int64_t batch, int64_t frames, int64_t views, const T* intrinsics,
                   const T* extrinsics) {
  check_finite(op, "intrinsics", intrinsics, batch * views * 9);
  check_finite(op, "extrinsics", extrinsics, batch * frames * views * 16);
}

void check_combine(int combine) {
  if (combine != vmap::kCombineMax && combine != vmap::kCombineSum) {
    throw std::invalid_argument("render_value_maps: unknown combine mode " + std::to_string(combine));
  }
}

}  // namespace

void ValueMapKernels::render(int dtype, const vmap::RenderShape& shape, uintptr_t points, uintptr_t point_mask,
                             uintptr_t intrinsics, uintptr_t extrinsics, const vmap::BlobParams& params, int combine,
                             uintptr_t out, uintptr_t /*stream*/) {
  check_combine(combine);
  vmap::dispatch_dtype(dtype, "value maps", [&](auto tag) {
    using T = decltype(tag);
    check_cameras("render_value_maps", shape.batch, shape.frames, shape.views, as<T>(intrinsics), as<T>(extrinsics));
    const auto kernel =
        combine == vmap::kCombineMax ? render_typed<T, vmap::kCombineMax> : render_typed<T, vmap::kCombineSum>;
    kernel(shape, as<T>(points), as<uint8_t>(point_mask), as<T>(intrinsics), as<T>(extrinsics), params,
           as_mut<T>(out));
  });
}

void ValueMapKernels::render_backward(int dtype, const vmap::RenderShape& shape, uintptr_t points,
                                      uintptr_t point_mask, uintptr_t intrinsics, uintptr_t extrinsics,
                                      const vmap::BlobParams& params, int combine, uintptr_t grad_out,
                                      uintptr_t grad_points, uintptr_t /*stream*/) {
  check_combine(combine);
  vmap::dispatch_dtype(dtype, "value maps", [&](auto tag) {
    using T = decltype(tag);
    const auto kernel = combine == vmap::kCombineMax ? render_backward_typed<T, vmap::kCombineMax>
                                                     : render_backward_typed<T, vmap::kCombineSum>;
    kernel(shape, as<T>(points), as<uint8_t>(point_mask), as<T>(intrinsics), as<T>(extrinsics), params,
           as<T>(grad_out), as_mut<T>(grad_points));
  });
}

void ValueMapKernels::sample(int dtype, const vmap::SampleShape& shape, const vmap::StridedMaps& maps,
                             uintptr_t points, uintptr_t intrinsics, uintptr_t extrinsics, uintptr_t view_boxes,
                             uintptr_t values, uintptr_t valid, uintptr_t /*stream*/) {
  vmap::dispatch_dtype(dtype, "value maps", [&](auto tag) {
    using T = decltype(tag);
    check_cameras("sample_value_maps", shape.batch, shape.frames, shape.views, as<T>(intrinsics), as<T>(extrinsics));
    const SampleInputs<T> in{shape, maps, as<T>(points), as<T>(intrinsics), as<T>(extrinsics), as<T>(view_boxes),
                             nullptr};
    sample_typed<T>(in, as_mut<T>(values), as_mut<uint8_t>(valid));
  });
}

void ValueMapKernels::sample_backward(int dtype, const vmap::SampleShape& shape, const vmap::StridedMaps& maps,
                                      uintptr_t points, uintptr_t intrinsics, uintptr_t extrinsics,
                                      uintptr_t view_boxes, uintptr_t grad_values, uintptr_t grad_maps,
                                      uintptr_t grad_points, uintptr_t /*stream*/) {
  vmap::dispatch_dtype(dtype, "value maps", [&](auto tag) {
    using T = decltype(tag);
    const SampleInputs<T> in{shape, maps, as<T>(points), as<T>(intrinsics), as<T>(extrinsics), as<T>(view_boxes),
                             as_mut<T>(grad_maps)};
    sample_backward_typed<T>(in, as<T>(grad_values), as_mut<T>(grad_points));
  });
}

}  // namespace cpu
}  // namespace aim
