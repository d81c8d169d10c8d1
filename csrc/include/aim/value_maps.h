// Camera projection, Gaussian blobs and bilinear sampling of the value-map ops, shared by the CPU
// kernels (csrc/value_maps_cpu.cpp) and the CUDA kernels (cuda/value_maps.cu).
//
// Every number the two ops produce is computed by a function of this header; the kernels only walk
// indices, split work and accumulate (max, sum, atomics). The CPU tests therefore exercise the same
// arithmetic the GPU runs. Nothing here includes framework headers.
//
// Conventions (python/aim/ops/value_maps.py states them for users; the issue fixes them):
//  * extrinsics: 4x4 world-to-camera, row-major; x_cam = R x_world + t with R = E[0:3, 0:3],
//    t = E[0:3, 3]; the last row is ignored (assumed 0 0 0 1). OpenCV frame: x right, y down,
//    z forward.
//  * intrinsics: 3x3 in pixels, row-major; u = K00 xn + K01 yn + K02, v = K10 xn + K11 yn + K12 with
//    (xn, yn) = (x / z, y / z); the last row is ignored (assumed 0 0 1).
//  * pixel (u, v) = (column, row), pixel centres at integer coordinates; a point is inside an image
//    of width W and height H when 0 <= u <= W - 1 and 0 <= v <= H - 1 (so its four bilinear
//    neighbours exist, the extent grid_sample(align_corners=True) samples).
//  * a point is in front of the camera when z > kMinDepth; NaN coordinates are never in front or
//    inside (every comparison with NaN is false), so non-finite points come out invalid.
#pragma once

#include <math.h>
#include <stdint.h>

#include <stdexcept>
#include <string>

#include "aim/native_codes.h"

#ifndef AIM_HOST_DEVICE
#if defined(__CUDACC__)
#define AIM_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define AIM_HOST_DEVICE inline
#endif
#endif

namespace aim {
namespace vmap {

// Depth (world units, along the optical axis) at or below which a point counts as behind the camera.
constexpr double kMinDepth = 1e-6;
// A blob reaches zero at this many sigmas (an elliptical cut); the Gaussian is shifted and rescaled
// so that it is continuous there: g = max(0, (exp(-d^2/2) - e) / (1 - e)), e = exp(-kBlobRadius^2/2).
constexpr double kBlobRadius = 3.0;
constexpr double kBlobFloor = 0.011108996538242306;  // exp(-4.5)
constexpr double kBlobScale = 1.0112337927024855;    // 1 / (1 - exp(-4.5))

// How render combines the blobs of several points on one pixel (python/aim/ops/value_maps.py's _COMBINE).
constexpr int kCombineMax = 0;
constexpr int kCombineSum = 1;  // sum clamped to 1

// ---------------------------------------------------------------------------------------------
// Shapes and argument bundles (element strides, raw pointers).

struct RenderShape {
  int64_t batch, frames, views, points, height, width;
};

// Sampling: `views` cameras per (batch, frame); the maps have `map_views` images per (batch,
// frame): map_views == views (one map per view) or 1 (a packed canvas, with view boxes).
struct SampleShape {
  int64_t batch, frames, views, points;
  int64_t map_views, height, width;
};

// (B, T, Vm, H, W) maps with arbitrary element strides.
struct StridedMaps {
  uintptr_t data;
  int64_t stride[5];
};

// Typed scalar math that resolves to the float or double routine on the host and the device.
AIM_HOST_DEVICE float vm_exp(float x) { return expf(x); }
AIM_HOST_DEVICE double vm_exp(double x) { return exp(x); }
AIM_HOST_DEVICE float vm_floor(float x) { return floorf(x); }
AIM_HOST_DEVICE double vm_floor(double x) { return floor(x); }
AIM_HOST_DEVICE float vm_ceil(float x) { return ceilf(x); }
AIM_HOST_DEVICE double vm_ceil(double x) { return ceil(x); }
AIM_HOST_DEVICE float vm_abs(float x) { return fabsf(x); }
AIM_HOST_DEVICE double vm_abs(double x) { return fabs(x); }

template <typename T>
AIM_HOST_DEVICE T clamp_to(T x, T lo, T hi) {
  return x < lo ? lo : (x > hi ? hi : x);
}

// ---------------------------------------------------------------------------------------------
// Camera and projection.

template <typename T>
struct Camera {
  T r[9];  // world -> camera rotation, row-major
  T t[3];  // world -> camera translation
  T k[6];  // the first two rows of K: u = k0 xn + k1 yn + k2, v = k3 xn + k4 yn + k5
};

// intrinsics: one contiguous row-major 3x3; extrinsics: one contiguous row-major 4x4.
template <typename T>
AIM_HOST_DEVICE Camera<T> load_camera(const T* intrinsics, const T* extrinsics) {
  Camera<T> c;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) c.r[3 * i + j] = extrinsics[4 * i + j];
    c.t[i] = extrinsics[4 * i + 3];
  }
  for (int j = 0; j < 6; ++j) c.k[j] = intrinsics[j];
  return c;
}

template <typename T>
struct Projection {
  T inv_z;   // 1 / z, 0 when not in front
  T xn, yn;  // x / z, y / z (0 when not in front)
  T u, v;    // view pixel coordinates
  bool in_front;
};

template <typename T>
AIM_HOST_DEVICE Projection<T> project(const Camera<T>& c, const T* world) {
  T xc[3];
  for (int i = 0; i < 3; ++i) {
    xc[i] = c.r[3 * i] * world[0] + c.r[3 * i + 1] * world[1] + c.r[3 * i + 2] * world[2] + c.t[i];
  }
  Projection<T> p;
  p.in_front = xc[2] > T(kMinDepth);
  p.inv_z = p.in_front ? T(1) / xc[2] : T(0);
  p.xn = p.in_front ? xc[0] * p.inv_z : T(0);
  p.yn = p.in_front ? xc[1] * p.inv_z : T(0);
  p.u = c.k[0] * p.xn + c.k[1] * p.yn + c.k[2];
  p.v = c.k[3] * p.xn + c.k[4] * p.yn + c.k[5];
  return p;
}

template <typename T>
AIM_HOST_DEVICE bool inside_image(T u, T v, T width, T height) {
  return u >= T(0) && u <= width - T(1) && v >= T(0) && v <= height - T(1);
}

// ---------------------------------------------------------------------------------------------
// Render: one truncated Gaussian blob per visible point.

template <typename T>
struct Blob {
  T u, v;            // centre, view pixels
  T sigma_u, sigma_v;  // pixels: clamp(|K00| r / z, ...) and clamp(|K11| r / z, ...)
  int32_t x_lo, x_hi, y_lo, y_hi;  // inclusive pixel box outside which the blob is 0, clipped to the image
};

struct BlobParams {
  double r_world, sigma_min, sigma_max;
};

// |focal| r_world / z: a blob's width in pixels along the axis of `focal` (K00 or K11), before
// the clamp to [sigma_min, sigma_max].
template <typename T>
AIM_HOST_DEVICE T blob_sigma_unclamped(T focal, const Projection<T>& p, const BlobParams& params) {
  return vm_abs(focal) * T(params.r_world) * p.inv_z;
}

// The blob of `world` in this camera, or false when the point contributes nothing (masked out,
// not in front, or centre outside the image).
template <typename T>
AIM_HOST_DEVICE bool make_blob(const Camera<T>& c, const T* world, bool masked_in, const BlobParams& params,
                               int64_t height, int64_t width, Blob<T>* blob) {
  if (!masked_in) return false;
  const Projection<T> p = project(c, world);
  const T w = T(width), h = T(height);
  if (!p.in_front || !inside_image(p.u, p.v, w, h)) return false;
  blob->u = p.u;
  blob->v = p.v;
  blob->sigma_u = clamp_to(blob_sigma_unclamped(c.k[0], p, params), T(params.sigma_min), T(params.sigma_max));
  blob->sigma_v = clamp_to(blob_sigma_unclamped(c.k[4], p, params), T(params.sigma_min), T(params.sigma_max));
  const T ru = T(kBlobRadius) * blob->sigma_u, rv = T(kBlobRadius) * blob->sigma_v;
  blob->x_lo = static_cast<int32_t>(clamp_to(vm_ceil(p.u - ru), T(0), w - T(1)));
  blob->x_hi = static_cast<int32_t>(clamp_to(vm_floor(p.u + ru), T(0), w - T(1)));
  blob->y_lo = static_cast<int32_t>(clamp_to(vm_ceil(p.v - rv), T(0), h - T(1)));
  blob->y_hi = static_cast<int32_t>(clamp_to(vm_floor(p.v + rv), T(0), h - T(1)));
  return true;
}

// exp(-(d / sigma)^2 / 2): the blob factors into a column weight times a row weight.
template <typename T>
AIM_HOST_DEVICE T axis_weight(T d, T sigma) {
  const T s = d / sigma;
  return vm_exp(T(-0.5) * s * s);
}

// The blob's value from its column and row weights: 1 at the centre, 0 from kBlobRadius sigmas on.
template <typename T>
AIM_HOST_DEVICE T blob_value(T column_weight, T row_weight) {
  const T g = (column_weight * row_weight - T(kBlobFloor)) * T(kBlobScale);
  return g > T(0) ? g : T(0);
}

template <typename T>
AIM_HOST_DEVICE T combine(T acc, T g, int mode) {
  return mode == kCombineMax ? (g > acc ? g : acc) : acc + g;
}

template <typename T>
AIM_HOST_DEVICE T finish(T acc, int mode) {
  return mode == kCombineSum && acc > T(1) ? T(1) : acc;
}

// Render backward. A pixel passes its gradient to the blobs it was combined from: with max, to
// the first point (in point order) whose blob is the maximum, if that is > 0; with sum, to every
// blob while the sum is <= 1 (not clamped). The kernels recompute the combination to know which.

// Whether a pixel whose combined value is `acc` passes its gradient on to the blobs summed into it.
template <typename T>
AIM_HOST_DEVICE bool sum_passes_gradient(T acc) {
  return acc <= T(1);
}

// Sums over one blob's pixels of q du, q dv, q du^2, q dv^2, with du = x - u, dv = y - v and
// q = (upstream gradient) kBlobScale wx wy, the derivative of the blob with respect to
// log(wx wy) where the blob is > 0. With them, d loss / d u = sum(q du) / sigma_u^2 and
// d loss / d sigma_u = sum(q du^2) / sigma_u^3 (and the same for v).
template <typename T>
struct BlobMoments {
  T u, v, uu, vv;
};

// Adds one pixel of a blob to its moments: its upstream gradient, the column and row weights it
// was made from, and its offset (du, dv) from the blob's centre.
template <typename T>
AIM_HOST_DEVICE void add_blob_pixel(T grad, T column_weight, T row_weight, T du, T dv, BlobMoments<T>* m) {
  const T w = column_weight * row_weight;
  if (!((w - T(kBlobFloor)) * T(kBlobScale) > T(0))) return;  // the blob's clamp at 0: no gradient there
  const T q = grad * T(kBlobScale) * w;
  m->u += q * du;
  m->v += q * dv;
  m->uu += q * du * du;
  m->vv += q * dv * dv;
}

// ---------------------------------------------------------------------------------------------
// Sample: project, map into the (possibly packed) value map, bilinear interpolation.

// Where a view sits in the map: map pixel = offset + scale * view pixel; the view's own image is
// width x height view pixels. For unpacked maps: offset 0, scale 1, the map's own size.
template <typename T>
struct ViewBox {
  T offset_u, offset_v, scale_u, scale_v, width, height;
};

// boxes: contiguous (views, 6) rows (offset_u, offset_v, scale_u, scale_v, width, height).
template <typename T>
AIM_HOST_DEVICE ViewBox<T> load_view_box(const T* boxes, int64_t view, int64_t map_height, int64_t map_width) {
  if (boxes == nullptr) return ViewBox<T>{T(0), T(0), T(1), T(1), T(map_width), T(map_height)};
  const T* b = boxes + 6 * view;
  return ViewBox<T>{b[0], b[1], b[2], b[3], b[4], b[5]};
}

template <typename T>
struct MapPoint {
  Projection<T> proj;
  T x, y;  // map pixel coordinates (column, row)
  bool valid;  // in front and inside the view's own image
};

template <typename T>
AIM_HOST_DEVICE MapPoint<T> locate(const Camera<T>& c, const ViewBox<T>& box, const T* world) {
  MapPoint<T> m;
  m.proj = project(c, world);
  m.valid = m.proj.in_front && inside_image(m.proj.u, m.proj.v, box.width, box.height);
  m.x = m.valid ? box.offset_u + box.scale_u * m.proj.u : T(0);
  m.y = m.valid ? box.offset_v + box.scale_v * m.proj.v : T(0);
  return m;
}

// One (H, W) map with element strides; reads outside it are 0 (grid_sample's padding "zeros").
template <typename T>
struct MapView {
  const T* data;
  int64_t stride_h, stride_w, height, width;

  AIM_HOST_DEVICE T at(int64_t y, int64_t x) const {
    return (x >= 0 && x < width && y >= 0 && y < height) ? data[y * stride_h + x * stride_w] : T(0);
  }
};

// The four neighbours of (x, y): corner c in 0..3 is (x0 + (c & 1), y0 + (c >> 1)).
template <typename T>
struct Bilinear {
  int64_t x0, y0;
  T fx, fy;  // x - x0, y - y0 in [0, 1)

  AIM_HOST_DEVICE int64_t corner_x(int c) const { return x0 + (c & 1); }
  AIM_HOST_DEVICE int64_t corner_y(int c) const { return y0 + (c >> 1); }
  AIM_HOST_DEVICE T weight(int c) const { return ((c & 1) ? fx : T(1) - fx) * ((c >> 1) ? fy : T(1) - fy); }
};

template <typename T>
AIM_HOST_DEVICE Bilinear<T> bilinear_at(T x, T y) {
  const T fx0 = vm_floor(x), fy0 = vm_floor(y);
  return Bilinear<T>{static_cast<int64_t>(fx0), static_cast<int64_t>(fy0), x - fx0, y - fy0};
}

// bilinear_at for 0 <= x < width - 1 and 0 <= y < height - 1 (all four neighbours inside a map of
// that size), where truncation is the floor: the same result for a fraction of the instructions.
template <typename T>
AIM_HOST_DEVICE Bilinear<T> bilinear_inside(T x, T y) {
  const int64_t x0 = static_cast<int64_t>(x), y0 = static_cast<int64_t>(y);
  return Bilinear<T>{x0, y0, x - T(x0), y - T(y0)};
}

template <typename T>
struct Sampled {
  T value;
  T d_x, d_y;  // d value / d (map x, map y)
};

// Interpolates the four neighbours m_yx (m01 is corner 1: x0 + 1, y0) at b's fractions.
template <typename T>
AIM_HOST_DEVICE Sampled<T> interpolate(T m00, T m01, T m10, T m11, const Bilinear<T>& b) {
  Sampled<T> s;
  s.value = (T(1) - b.fy) * ((T(1) - b.fx) * m00 + b.fx * m01) + b.fy * ((T(1) - b.fx) * m10 + b.fx * m11);
  s.d_x = (T(1) - b.fy) * (m01 - m00) + b.fy * (m11 - m10);
  s.d_y = (T(1) - b.fx) * (m10 - m00) + b.fx * (m11 - m01);
  return s;
}

template <typename T>
AIM_HOST_DEVICE Sampled<T> sample_bilinear(const MapView<T>& map, const Bilinear<T>& b) {
  return interpolate(map.at(b.y0, b.x0), map.at(b.y0, b.x0 + 1), map.at(b.y0 + 1, b.x0),
                     map.at(b.y0 + 1, b.x0 + 1), b);
}

// d / d world point of a quantity whose derivatives with respect to the view pixel coordinates
// (u, v) and, directly, the camera depth z are (g_u, g_v, g_z): through the intrinsics, the
// perspective division and the extrinsics. Adds into grad[0..2]. Only meaningful in front.
template <typename T>
AIM_HOST_DEVICE void add_projection_gradient(const Camera<T>& c, const Projection<T>& p, T g_u, T g_v, T g_z,
                                             T* grad) {
  const T g_xn = g_u * c.k[0] + g_v * c.k[3];
  const T g_yn = g_u * c.k[1] + g_v * c.k[4];
  const T g_cam[3] = {g_xn * p.inv_z, g_yn * p.inv_z, -(g_xn * p.xn + g_yn * p.yn) * p.inv_z + g_z};
  for (int j = 0; j < 3; ++j) grad[j] += c.r[j] * g_cam[0] + c.r[3 + j] * g_cam[1] + c.r[6 + j] * g_cam[2];
}

// d / d world point of a quantity whose derivative with respect to the map coordinates is
// (g_x, g_y), by the chain rule through box, intrinsics, perspective division and extrinsics.
// Adds into grad[0..2]. Only meaningful for a valid MapPoint.
template <typename T>
AIM_HOST_DEVICE void add_point_gradient(const Camera<T>& c, const ViewBox<T>& box, const Projection<T>& p, T g_x,
                                        T g_y, T* grad) {
  add_projection_gradient(c, p, g_x * box.scale_u, g_y * box.scale_v, T(0), grad);
}

// d / d world point of a blob's contribution to the loss, from its moments over the blob's
// pixels (BlobMoments): through its centre (u, v) and, where the clamp does not hold them, its
// widths sigma = |focal| r_world / z. Adds into grad[0..2]. `world` must make a blob (make_blob).
template <typename T>
AIM_HOST_DEVICE void add_blob_point_gradient(const Camera<T>& c, const T* world, const BlobParams& params,
                                             const BlobMoments<T>& m, T* grad) {
  const Projection<T> p = project(c, world);
  const T lo = T(params.sigma_min), hi = T(params.sigma_max);
  const T raw_u = blob_sigma_unclamped(c.k[0], p, params), raw_v = blob_sigma_unclamped(c.k[4], p, params);
  const T sigma_u = clamp_to(raw_u, lo, hi), sigma_v = clamp_to(raw_v, lo, hi);
  const T g_u = m.u / (sigma_u * sigma_u), g_v = m.v / (sigma_v * sigma_v);
  // sigma = raw (proportional to 1 / z) where lo <= raw <= hi, so d sigma / d z = -sigma / z there.
  const T g_sigma_u = raw_u >= lo && raw_u <= hi ? m.uu / (sigma_u * sigma_u * sigma_u) : T(0);
  const T g_sigma_v = raw_v >= lo && raw_v <= hi ? m.vv / (sigma_v * sigma_v * sigma_v) : T(0);
  add_projection_gradient(c, p, g_u, g_v, -(g_sigma_u * sigma_u + g_sigma_v * sigma_v) * p.inv_z, grad);
}

// ---------------------------------------------------------------------------------------------
// Index math of the contiguous inputs (B, T, P, 3) points, (B, V, 3, 3) intrinsics,
// (B, T, V, 4, 4) extrinsics, (B, T, P) mask, (B, T, P, V) values.

struct SampleIndex {
  int64_t frames, views, points;

  AIM_HOST_DEVICE int64_t point(int64_t b, int64_t t, int64_t p) const { return ((b * frames + t) * points + p) * 3; }
  AIM_HOST_DEVICE int64_t intrinsics(int64_t b, int64_t v) const { return (b * views + v) * 9; }
  AIM_HOST_DEVICE int64_t extrinsics(int64_t b, int64_t t, int64_t v) const {
    return ((b * frames + t) * views + v) * 16;
  }
  AIM_HOST_DEVICE int64_t value(int64_t b, int64_t t, int64_t p, int64_t v) const {
    return ((b * frames + t) * points + p) * views + v;
  }
  // The camera of view v at frame t of sample b.
  template <typename T>
  AIM_HOST_DEVICE Camera<T> camera(const T* intrinsics_base, const T* extrinsics_base, int64_t b, int64_t t,
                                   int64_t v) const {
    return load_camera(intrinsics_base + intrinsics(b, v), extrinsics_base + extrinsics(b, t, v));
  }
};

template <typename T>
AIM_HOST_DEVICE MapView<T> map_view(const StridedMaps& maps, const SampleShape& s, int64_t b, int64_t t,
                                    int64_t view) {
  const int64_t vm = s.map_views == 1 ? 0 : view;
  const T* base = reinterpret_cast<const T*>(maps.data) + b * maps.stride[0] + t * maps.stride[1] + vm * maps.stride[2];
  return MapView<T>{base, maps.stride[3], maps.stride[4], s.height, s.width};
}

// Calls fn(float{}) or fn(double{}) for the dtype code kFloat32 or kFloat64 (aim/native_codes.h;
// host only); `op` names the caller in the error.
template <typename Fn>
inline void dispatch_dtype(int dtype, const char* op, Fn&& fn) {
  if (dtype == kFloat32) {
    fn(float{});
  } else if (dtype == kFloat64) {
    fn(double{});
  } else {
    throw std::invalid_argument(std::string(op) + ": unsupported dtype code " + std::to_string(dtype) +
                                " (float32 or float64)");
  }
}

// The ops' arrays arrive as integer addresses (the bindings never see a framework tensor).
template <typename T>
inline const T* as(uintptr_t address) {
  return reinterpret_cast<const T*>(address);
}
template <typename T>
inline T* as_mut(uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

}  // namespace vmap
}  // namespace aim
