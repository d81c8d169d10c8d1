"""``aim.ops.value_maps``: spatial value maps (docs/method.md §4, §6) rendered from 3-D points and sampled at them.

* :func:`render_value_maps` turns annotated 3-D contact points into heat maps, one per camera
  view and frame (the value-map labels of docs/method.md §4); differentiable with respect to the points,
  so a loss on the maps can move them.
* :func:`sample_value_maps` projects 3-D points (e.g. predicted end-effector targets) into every
  view and reads the value maps there, bilinearly: the dense reward M_t(Pi(p_t)) of docs/method.md §6, and
  a training signal, since it is differentiable with respect to the maps and the points.

Both run native kernels (C++/OpenMP on CPU, CUDA on GPU) through ``torch.library`` custom ops
(``aim::render_value_maps``, ``aim::render_value_maps_backward``, ``aim::sample_value_maps``,
``aim::sample_value_maps_backward``) with fake and autograd registrations;
``aim.ops.value_maps_reference`` holds the plain PyTorch twins. Eager sampling calls the same
op bodies through a plain ``autograd.Function`` (or directly when no gradient is needed): the
dispatcher round trip costs more than the kernel for the few-point reward calls; torch.compile
traces the custom ops. Inputs are checked by the public functions and again by the registered ops
(:mod:`aim.ops.value_map_checks`), so bad input raises a one-line :class:`~aim.errors.UsageError`
(``TypeError`` for a non-tensor) naming the problem before native code runs (non-finite cameras:
in the CPU kernels, as ``ValueError``).

Conventions (fixed; every caller agrees)
-----------------------------------------
Shapes: value maps (B, T, V, H, W); points (B, T, P, 3) in world coordinates; point_mask (B, T, P)
bool; intrinsics (B, V, 3, 3); extrinsics (B, T, V, 4, 4) (per frame, since wrist cameras move).

* Camera frame: OpenCV (x right, y down, z forward). ``extrinsics`` map world to camera:
  x_cam = E[:3, :3] x_world + E[:3, 3]; the last row is ignored (taken as 0 0 0 1).
* Pixels: ``intrinsics`` are in pixels; u = K00 x/z + K01 y/z + K02, v = K10 x/z + K11 y/z + K12
  (skew allowed; the last row is ignored, taken as 0 0 1). (u, v) = (column, row) and pixel
  centres sit at integer coordinates: pixel [row i, column j] is the point (u, v) = (j, i).
* Valid: a point is valid in a view when it is in front of the camera (z > ``MIN_DEPTH``) and
  projects inside the view's image, 0 <= u <= W - 1 and 0 <= v <= H - 1 (where all four bilinear
  neighbours exist: the extent ``grid_sample(align_corners=True)`` samples). Points at zero or
  negative depth, off-image, or with non-finite coordinates are invalid: value 0, gradient 0,
  never NaN. Non-finite intrinsics or extrinsics raise ``ValueError``.
* Blob width: sigma_u = clamp(|K00| r_world / z, sigma_min, sigma_max) and sigma_v the same with
  K11, so with fx != fy the blob is an axis-aligned ellipse that stays round in the world. The
  blob is a Gaussian cut at ``BLOB_RADIUS`` sigmas and shifted to reach 0 there continuously:
  g = max(0, (exp(-d^2/2) - e) / (1 - e)), d^2 = (du/sigma_u)^2 + (dv/sigma_v)^2,
  e = exp(-BLOB_RADIUS^2/2). Its peak is exactly 1 at the projected point.
* Combining points (render): ``"max"`` (default) takes the largest blob at each pixel, so
  overlapping blobs never exceed 1 and each keeps its own peak; ``"sum"`` adds them and clamps
  at 1. Only valid points whose mask is True contribute; a point's centre must be on the image.
* Render gradient (with respect to the points; through each blob's centre and, where the clamp
  does not hold it, its width): with ``"max"`` a pixel passes its gradient to the first point
  (in point order) whose blob is the maximum there, with ``"sum"`` to every blob while the sum
  is <= 1. Points that make no blob get 0.
* Packed canvas (sample): the model decodes all views into one canvas image. Give
  ``view_offsets`` (V, 2), ``view_scales`` (V, 2) and ``view_sizes`` (V, 2), all in (u, v)
  order: view v's pixel (u, v) lies at canvas pixel (offset_u + scale_u u, offset_v + scale_v v),
  and its own image is (width, height) = view_sizes[v] pixels (the size its intrinsics refer to).
  Validity uses the view's own image; reads outside the canvas are 0. For a view downsampled by
  an integer factor s into the canvas (s x s area averaging, pixel centres at integers on both
  sides), scale = 1/s and offset = origin + (1/s - 1)/2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from aim.errors import UsageError
from aim.ops._native import COMBINE_CODES, DTYPE_CODES, device_guard, require_native, stream_handle
from aim.ops.value_map_checks import (
    check_dtypes_match,
    check_gradient,
    check_render_args,
    check_sample_args,
    check_tensor,
    check_view_boxes,
)

Tensor = torch.Tensor

# Constants of csrc/include/aim/value_maps.h, the math both native kernels share.
MIN_DEPTH = 1e-6  # world units: points at z <= MIN_DEPTH are behind the camera
BLOB_RADIUS = 3.0  # sigmas: the blob reaches 0 there
BLOB_FLOOR = 0.011108996538242306  # exp(-BLOB_RADIUS**2 / 2)
BLOB_SCALE = 1.0112337927024855  # 1 / (1 - BLOB_FLOOR)


def render_value_maps(
    points: Tensor,
    point_mask: Tensor | None,
    intrinsics: Tensor,
    extrinsics: Tensor,
    height: int,
    width: int,
    r_world: float,
    sigma_min: float,
    sigma_max: float,
    combine: str = "max",
) -> Tensor:
    """Heat maps (B, T, V, height, width) in [0, 1]: each masked-in point's Gaussian blob in each view.

    ``points`` (B, T, P, 3) world coordinates, float32 or float64 (the output's dtype);
    ``point_mask`` (B, T, P) bool, or None for all points; ``intrinsics`` (B, V, 3, 3) and
    ``extrinsics`` (B, T, V, 4, 4) are cast to the points' dtype. ``r_world`` is the blob's
    radius in world units (sigma_px = clamp(focal * r_world / depth, sigma_min, sigma_max));
    ``combine`` is ``"max"`` or ``"sum"`` (clamped at 1). See the module docstring for the
    conventions. Differentiable with respect to ``points`` (not the cameras); the gradient is
    piecewise smooth, jumping where blobs swap places under ``"max"`` or the sum reaches 1.
    """
    where = "aim.ops.render_value_maps"
    if point_mask is None and isinstance(points, Tensor) and points.dim() == 4:
        point_mask = torch.ones(points.shape[:3], dtype=torch.bool, device=points.device)
    check_render_args(where, points, point_mask, intrinsics, extrinsics, height, width, r_world, sigma_min, sigma_max,
                      combine)
    r_world, sigma_min, sigma_max = float(r_world), float(sigma_min), float(sigma_max)
    intrinsics, extrinsics = _cameras(where, points, intrinsics, extrinsics)
    return torch.ops.aim.render_value_maps(
        points, point_mask, intrinsics, extrinsics, height, width, r_world, sigma_min, sigma_max, combine
    )


def sample_value_maps(
    value_maps: Tensor,
    points: Tensor,
    intrinsics: Tensor,
    extrinsics: Tensor,
    view_offsets: Tensor | Sequence | None = None,
    view_scales: Tensor | Sequence | None = None,
    view_sizes: Tensor | Sequence | None = None,
) -> tuple[Tensor, Tensor]:
    """(values, valid), both (B, T, P, V): the value maps read bilinearly where each point projects.

    ``value_maps`` (B, T, V, H, W), float32 or float64, any strides; ``points`` (B, T, P, 3) of the
    same dtype; ``intrinsics`` (B, V, 3, 3) and ``extrinsics`` (B, T, V, 4, 4) are cast to it.
    ``valid`` (bool) marks points in front of the camera and inside the view's image; invalid
    entries have value 0 and no gradient. Differentiable with respect to ``value_maps`` and
    ``points`` (chain rule through the projection; bilinear interpolation is piecewise linear, so
    the point gradient jumps where a point crosses a pixel centre line); not with respect to the
    cameras.

    Packed canvas: pass ``view_offsets``, ``view_scales`` (default 1) and ``view_sizes``, each
    (V, 2) in (u, v) order (tensors or nested sequences; Python sequences avoid a device sync),
    and ``value_maps`` as one canvas per frame, (B, T, Hc, Wc) or (B, T, 1, Hc, Wc). See the module
    docstring for the mapping.
    """
    where = "aim.ops.sample_value_maps"
    canvas = view_offsets is not None or view_scales is not None or view_sizes is not None
    if canvas and isinstance(value_maps, Tensor) and value_maps.dim() == 4:
        value_maps = value_maps.unsqueeze(2)
    check_sample_args(where, value_maps, points, intrinsics, extrinsics, canvas)
    views = intrinsics.shape[1]
    intrinsics, extrinsics = _cameras(where, points, intrinsics, extrinsics)
    boxes = None
    if canvas:
        boxes = canvas_view_boxes(views, view_offsets, view_scales, view_sizes, points.dtype, points.device)
    if _compiling() or type(value_maps) is not Tensor or type(points) is not Tensor:
        return torch.ops.aim.sample_value_maps(value_maps, points, intrinsics, extrinsics, boxes)
    if torch.is_grad_enabled() and (value_maps.requires_grad or points.requires_grad):
        return _EagerSample.apply(value_maps, points, intrinsics, extrinsics, boxes)
    return _sample_values(value_maps, points, intrinsics, extrinsics, boxes)


def canvas_view_boxes(
    views: int,
    view_offsets: Tensor | Sequence | None,
    view_scales: Tensor | Sequence | None,
    view_sizes: Tensor | Sequence | None,
    dtype: torch.dtype,
    device: torch.device,
) -> Tensor:
    """(V, 6) rows (offset_u, offset_v, scale_u, scale_v, width, height): where each view sits in a canvas.

    The form the native kernels read (``aim::vmap::ViewBox``); ``view_scales`` defaults to 1,
    ``view_offsets`` to 0, ``view_sizes`` is required. Raises :class:`~aim.errors.UsageError` for a
    wrong shape, non-finite values, scales <= 0 or sizes < 1.
    """
    where = "aim.ops.sample_value_maps"
    if view_sizes is None:
        raise UsageError(f"{where}: a packed canvas needs view_sizes (V, 2) (width, height) of every view")
    parts = {}
    for name, given, default in (("view_offsets", view_offsets, 0.0), ("view_scales", view_scales, 1.0),
                                 ("view_sizes", view_sizes, None)):
        # Checked where it was given (host lists need no device sync), moved to `device` at the end.
        t = torch.full((views, 2), default) if given is None else torch.as_tensor(given)
        t = t.to(torch.float64)
        if tuple(t.shape) != (views, 2):
            raise UsageError(
                f"{where}: {name} must be (V, 2) = ({views}, 2) in (u, v) order, got shape {tuple(t.shape)}"
            )
        if not _compiling() and not bool(torch.isfinite(t).all()):
            raise UsageError(f"{where}: {name} contains non-finite values")
        parts[name] = t
    if not _compiling():
        if bool((parts["view_scales"] <= 0).any()):
            raise UsageError(f"{where}: view_scales must be > 0")
        if bool((parts["view_sizes"] < 1).any()):
            raise UsageError(f"{where}: view_sizes must be >= 1 (width, height in view pixels)")
    boxes = torch.cat([parts[name].to(device) for name in ("view_offsets", "view_scales", "view_sizes")], dim=1)
    return boxes.to(dtype).contiguous()


# ---------------------------------------------------------------------------------------------
# Input checks.


def _compiling() -> bool:
    return torch.compiler.is_compiling()


def _all_finite(*tensors: Tensor) -> bool:
    # One reduction over all of them (NaN propagates through amax), so one device sync on a GPU:
    # a fifth of the cost of isfinite().all() per tensor.
    flat = torch.cat([t.reshape(-1) for t in tensors]) if len(tensors) > 1 else tensors[0]
    return flat.abs().amax().item() < math.inf


def _cameras(where: str, points: Tensor, intrinsics: Tensor, extrinsics: Tensor) -> tuple[Tensor, Tensor]:
    """The cameras in the points' dtype, contiguous, checked finite.

    On CPU the native kernels check them (a loop over a few hundred numbers, where two torch
    reductions cost ~20 us, most of a small sampling call); on GPU it is done here with one
    reduction (one device sync), skipped under torch.compile (it syncs)."""
    cams = {name: t.detach().to(points.dtype).contiguous()
            for name, t in (("intrinsics", intrinsics), ("extrinsics", extrinsics))}
    checked = [t for t in cams.values() if t.numel()]
    if points.device.type != "cpu" and not _compiling() and checked and not _all_finite(*checked):
        name = next(n for n, t in cams.items() if t.numel() and not _all_finite(t))
        raise UsageError(f"{where}: {name} contains non-finite values (after casting to {points.dtype})")
    return cams["intrinsics"], cams["extrinsics"]


# ---------------------------------------------------------------------------------------------
# The custom ops: allocate, hand raw pointers and strides to the native module.


def _sample_args(value_maps: Tensor, points: Tensor, intrinsics: Tensor, extrinsics: Tensor, boxes: Tensor | None):
    """Shape tuple (B, T, V, P, Vm, H, W), strided maps, and the point/camera/box pointers (contiguous inputs)."""
    batch, frames, num_points, _ = points.shape
    shape = (batch, frames, intrinsics.shape[1], num_points, *value_maps.shape[2:])
    maps = (value_maps.data_ptr(), *value_maps.stride())
    box_ptr = 0 if boxes is None else boxes.data_ptr()
    return shape, maps, points.data_ptr(), intrinsics.data_ptr(), extrinsics.data_ptr(), box_ptr


# The registered ops check their own inputs (they are public: torch.ops.aim.*), in the fake
# (trace-time) and the real bodies alike; see aim.ops.value_map_checks for what is checked where.
_RENDER = "torch.ops.aim.render_value_maps"
_RENDER_BWD = "torch.ops.aim.render_value_maps_backward"
_SAMPLE = "torch.ops.aim.sample_value_maps"
_SAMPLE_BWD = "torch.ops.aim.sample_value_maps_backward"


def _check_render_op(where, points, point_mask, intrinsics, extrinsics, height, width, r_world, sigma_min,
                     sigma_max, combine) -> None:
    check_render_args(where, points, point_mask, intrinsics, extrinsics, height, width, r_world, sigma_min,
                      sigma_max, combine)
    check_dtypes_match(where, points, intrinsics=intrinsics, extrinsics=extrinsics)


def _check_render_backward_op(grad_out, points, point_mask, intrinsics, extrinsics, r_world, sigma_min, sigma_max,
                              combine) -> None:
    layout = "(B, T, V, H, W)"
    check_tensor(_RENDER_BWD, "grad_out", grad_out, 5, layout)
    _check_render_op(_RENDER_BWD, points, point_mask, intrinsics, extrinsics, grad_out.shape[3], grad_out.shape[4],
                     r_world, sigma_min, sigma_max, combine)
    shape = (*points.shape[:2], intrinsics.shape[1], *grad_out.shape[3:])
    check_gradient(_RENDER_BWD, "grad_out", grad_out, points, shape, layout)


def _check_sample_op(where, value_maps, points, intrinsics, extrinsics, view_boxes, values: bool) -> None:
    check_sample_args(where, value_maps, points, intrinsics, extrinsics, canvas=view_boxes is not None)
    check_dtypes_match(where, points, intrinsics=intrinsics, extrinsics=extrinsics)
    if view_boxes is not None:
        check_view_boxes(where, view_boxes, points, intrinsics.shape[1], values)


def _check_sample_backward_op(grad_values, value_maps, points, intrinsics, extrinsics, view_boxes, values) -> None:
    _check_sample_op(_SAMPLE_BWD, value_maps, points, intrinsics, extrinsics, view_boxes, values)
    check_gradient(_SAMPLE_BWD, "grad_values", grad_values, points, (*points.shape[:3], intrinsics.shape[1]),
                   "(B, T, P, V)")


@torch.library.custom_op("aim::render_value_maps", mutates_args=())
def _render(
    points: Tensor, point_mask: Tensor, intrinsics: Tensor, extrinsics: Tensor,
    height: int, width: int, r_world: float, sigma_min: float, sigma_max: float, combine: str,
) -> Tensor:
    _check_render_op(_RENDER, points, point_mask, intrinsics, extrinsics, height, width, r_world, sigma_min,
                     sigma_max, combine)
    points, point_mask, intrinsics, extrinsics = (t.contiguous() for t in (points, point_mask, intrinsics, extrinsics))
    batch, frames, num_points, _ = points.shape
    views = intrinsics.shape[1]
    out = points.new_empty((batch, frames, views, height, width))
    if out.numel():
        with device_guard(points.device):
            require_native(points.device).render_value_maps(
                DTYPE_CODES[points.dtype], (batch, frames, views, num_points, height, width),
                points.data_ptr(), point_mask.data_ptr(), intrinsics.data_ptr(), extrinsics.data_ptr(),
                (r_world, sigma_min, sigma_max), COMBINE_CODES[combine], out.data_ptr(), stream_handle(points.device),
            )
    return out


@_render.register_fake
def _render_fake(points, point_mask, intrinsics, extrinsics, height, width, r_world, sigma_min, sigma_max, combine):
    _check_render_op(_RENDER, points, point_mask, intrinsics, extrinsics, height, width, r_world, sigma_min,
                     sigma_max, combine)
    return points.new_empty((points.shape[0], points.shape[1], intrinsics.shape[1], height, width))


@torch.library.custom_op("aim::render_value_maps_backward", mutates_args=())
def _render_backward(
    grad_out: Tensor, points: Tensor, point_mask: Tensor, intrinsics: Tensor, extrinsics: Tensor,
    r_world: float, sigma_min: float, sigma_max: float, combine: str,
) -> Tensor:
    """grad_points (B, T, P, 3) of render, given grad_out (B, T, V, H, W)."""
    _check_render_backward_op(grad_out, points, point_mask, intrinsics, extrinsics, r_world, sigma_min, sigma_max,
                              combine)
    grad_out, points, point_mask, intrinsics, extrinsics = (
        t.contiguous() for t in (grad_out, points, point_mask, intrinsics, extrinsics)
    )
    batch, frames, views, height, width = grad_out.shape
    # Zeroed here: the kernels add each view's (and, on CUDA, each tile's) share into it.
    grad_points = torch.zeros_like(points)
    if grad_out.numel() and points.numel():
        with device_guard(points.device):
            require_native(points.device).render_value_maps_backward(
                DTYPE_CODES[points.dtype], (batch, frames, views, points.shape[2], height, width),
                points.data_ptr(), point_mask.data_ptr(), intrinsics.data_ptr(), extrinsics.data_ptr(),
                (r_world, sigma_min, sigma_max), COMBINE_CODES[combine], grad_out.data_ptr(), grad_points.data_ptr(),
                stream_handle(points.device),
            )
    return grad_points


@_render_backward.register_fake
def _render_backward_fake(grad_out, points, point_mask, intrinsics, extrinsics, r_world, sigma_min, sigma_max,
                          combine):
    _check_render_backward_op(grad_out, points, point_mask, intrinsics, extrinsics, r_world, sigma_min, sigma_max,
                              combine)
    return points.new_empty(points.shape)


def _render_setup_context(ctx, inputs, output) -> None:
    points, point_mask, intrinsics, extrinsics, _, _, r_world, sigma_min, sigma_max, combine = inputs
    ctx.save_for_backward(points, point_mask, intrinsics, extrinsics)
    ctx.blob = (r_world, sigma_min, sigma_max, combine)


def _render_autograd_backward(ctx, grad_out: Tensor):
    grad_points = None
    if ctx.needs_input_grad[0]:
        grad_points = torch.ops.aim.render_value_maps_backward(grad_out, *ctx.saved_tensors, *ctx.blob)
    return grad_points, None, None, None, None, None, None, None, None, None


_render.register_autograd(_render_autograd_backward, setup_context=_render_setup_context)


def _sample_values(
    value_maps: Tensor, points: Tensor, intrinsics: Tensor, extrinsics: Tensor, view_boxes: Tensor | None
) -> tuple[Tensor, Tensor]:
    points, intrinsics, extrinsics = (t.contiguous() for t in (points, intrinsics, extrinsics))
    view_boxes = None if view_boxes is None else view_boxes.contiguous()
    out_shape = (*points.shape[:3], intrinsics.shape[1])
    values = points.new_empty(out_shape)
    valid = torch.empty(out_shape, dtype=torch.bool, device=points.device)
    if values.numel():
        shape, maps, *ptrs = _sample_args(value_maps, points, intrinsics, extrinsics, view_boxes)
        with device_guard(points.device):
            require_native(points.device).sample_value_maps(
                DTYPE_CODES[points.dtype], shape, maps, *ptrs, values.data_ptr(), valid.data_ptr(),
                stream_handle(points.device),
            )
    return values, valid


def _sample_gradients(
    grad_values: Tensor, value_maps: Tensor, points: Tensor, intrinsics: Tensor, extrinsics: Tensor,
    view_boxes: Tensor | None, maps_grad: bool, points_grad: bool,
) -> tuple[Tensor, Tensor]:
    """(grad_maps, grad_points); each is an empty (0,) tensor when its flag is False."""
    grad_values, points, intrinsics, extrinsics = (
        t.contiguous() for t in (grad_values, points, intrinsics, extrinsics)
    )
    view_boxes = None if view_boxes is None else view_boxes.contiguous()
    # Zeroed here: the kernels only add the four bilinear weights of each sample into it.
    grad_maps = value_maps.new_zeros(value_maps.shape) if maps_grad else value_maps.new_empty(0)
    grad_points = torch.empty_like(points) if points_grad else points.new_empty(0)
    if (maps_grad or points_grad) and grad_values.numel():
        shape, maps, *ptrs = _sample_args(value_maps, points, intrinsics, extrinsics, view_boxes)
        with device_guard(points.device):
            require_native(points.device).sample_value_maps_backward(
                DTYPE_CODES[points.dtype], shape, maps, *ptrs, grad_values.data_ptr(),
                grad_maps.data_ptr() if maps_grad else 0, grad_points.data_ptr() if points_grad else 0,
                stream_handle(points.device),
            )
    elif points_grad:
        grad_points.zero_()
    return grad_maps, grad_points


@torch.library.custom_op("aim::sample_value_maps", mutates_args=())
def _sample(
    value_maps: Tensor, points: Tensor, intrinsics: Tensor, extrinsics: Tensor, view_boxes: Tensor | None
) -> tuple[Tensor, Tensor]:
    _check_sample_op(_SAMPLE, value_maps, points, intrinsics, extrinsics, view_boxes, values=True)
    return _sample_values(value_maps, points, intrinsics, extrinsics, view_boxes)


@torch.library.custom_op("aim::sample_value_maps_backward", mutates_args=())
def _sample_backward(
    grad_values: Tensor, value_maps: Tensor, points: Tensor, intrinsics: Tensor, extrinsics: Tensor,
    view_boxes: Tensor | None, maps_grad: bool, points_grad: bool,
) -> tuple[Tensor, Tensor]:
    _check_sample_backward_op(grad_values, value_maps, points, intrinsics, extrinsics, view_boxes, values=True)
    return _sample_gradients(grad_values, value_maps, points, intrinsics, extrinsics, view_boxes, maps_grad,
                             points_grad)


@_sample.register_fake
def _sample_fake(value_maps, points, intrinsics, extrinsics, view_boxes):
    _check_sample_op(_SAMPLE, value_maps, points, intrinsics, extrinsics, view_boxes, values=False)
    out_shape = (*points.shape[:3], intrinsics.shape[1])
    return points.new_empty(out_shape), points.new_empty(out_shape, dtype=torch.bool)


@_sample_backward.register_fake
def _sample_backward_fake(grad_values, value_maps, points, intrinsics, extrinsics, view_boxes, maps_grad, points_grad):
    _check_sample_backward_op(grad_values, value_maps, points, intrinsics, extrinsics, view_boxes, values=False)
    grad_maps = value_maps.new_empty(value_maps.shape) if maps_grad else value_maps.new_empty(0)
    grad_points = points.new_empty(points.shape) if points_grad else points.new_empty(0)
    return grad_maps, grad_points


def _sample_setup_context(ctx, inputs, output) -> None:
    ctx.save_for_backward(*inputs)
    ctx.mark_non_differentiable(output[1])


def _sample_input_grads(ctx, grad_values: Tensor | None, gradients=_sample_gradients):
    """The five input gradients of sampling, computed by ``gradients`` (the backward op or its body)."""
    maps_grad, points_grad = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if grad_values is None or not (maps_grad or points_grad):
        return None, None, None, None, None
    value_maps, points, intrinsics, extrinsics, view_boxes = ctx.saved_tensors
    grad_maps, grad_points = gradients(
        grad_values, value_maps, points, intrinsics, extrinsics, view_boxes, maps_grad, points_grad
    )
    return (grad_maps if maps_grad else None), (grad_points if points_grad else None), None, None, None


def _sample_autograd_backward(ctx, grad_values: Tensor | None, grad_valid: Tensor | None):
    return _sample_input_grads(ctx, grad_values, torch.ops.aim.sample_value_maps_backward)


_sample.register_autograd(_sample_autograd_backward, setup_context=_sample_setup_context)


class _EagerSample(torch.autograd.Function):
    """The custom op's forward and backward bodies without the dispatcher: eager calls only.

    ``torch.ops.aim.sample_value_maps`` goes Python -> dispatcher -> Python autograd -> dispatcher
    -> Python kernel, about 70 us a call on CPU, more than the kernel itself for a few thousand
    samples (the reward's case). torch.compile and tensor subclasses take the custom op."""

    @staticmethod
    def forward(ctx, value_maps, points, intrinsics, extrinsics, view_boxes):
        values, valid = _sample_values(value_maps, points, intrinsics, extrinsics, view_boxes)
        _sample_setup_context(ctx, (value_maps, points, intrinsics, extrinsics, view_boxes), (values, valid))
        return values, valid

    @staticmethod
    def backward(ctx, grad_values, grad_valid):
        return _sample_input_grads(ctx, grad_values)
