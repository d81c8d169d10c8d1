"""Input checks of the value-map entry points: :func:`aim.ops.render_value_maps`,
:func:`aim.ops.sample_value_maps` and the registered ops behind them
(``torch.ops.aim.render_value_maps``, ``sample_value_maps`` and their ``_backward`` ops), which
anyone can call directly.

Shapes, dtypes and devices are checked everywhere (tensor metadata: no device synchronisation).
Values are checked where that is cheap: the canvas view boxes on the CPU here, non-finite
cameras in the CPU kernels, and on a GPU by the public functions only (one reduction; the
registered ops skip it there, where it would synchronise). Problems are one-line
:class:`~aim.errors.UsageError` (``TypeError`` where an argument is not a tensor at all).
"""

from __future__ import annotations

import math

import torch

from aim.errors import UsageError
from aim.ops._native import COMBINE_CODES

Tensor = torch.Tensor
VALUE_MAP_DTYPES = (torch.float32, torch.float64)
BOX_COLUMNS = 6  # (offset_u, offset_v, scale_u, scale_v, width, height)


def check_tensor(where: str, name: str, t, dims: int, shape: str, tail: tuple[int, ...] = ()) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{where}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.dim() != dims or (tail and tuple(t.shape[-len(tail):]) != tail):
        raise UsageError(f"{where}: {name} must be {shape}, got shape {tuple(t.shape)}")


def check_points(where: str, points) -> None:
    check_tensor(where, "points", points, 4, "(B, T, P, 3)", tail=(3,))
    if points.dtype not in VALUE_MAP_DTYPES:
        raise UsageError(f"{where}: points has unsupported dtype {points.dtype} (float32 or float64)")
    if points.device.type not in ("cpu", "cuda"):
        raise UsageError(f"{where}: unsupported device {points.device}")


def check_same_device(where: str, **tensors: Tensor) -> None:
    devices = {name: t.device for name, t in tensors.items()}
    first = next(iter(devices.values()))
    if any(d != first for d in devices.values()):
        raise UsageError(f"{where}: inputs are on different devices: " +
                         ", ".join(f"{n} {d}" for n, d in devices.items()))


def check_agree(where: str, dim: str, **sizes: int) -> None:
    # Pairwise, not a set: under torch.compile the sizes are symbolic (unhashable) ints.
    first = next(iter(sizes.values()))
    if any(s != first for s in sizes.values()):
        listed = ", ".join(f"{n} {s}" for n, s in sizes.items())
        raise UsageError(f"{where}: {dim} differs between inputs: {listed}")


def check_cameras(where: str, intrinsics, extrinsics) -> None:
    check_tensor(where, "intrinsics", intrinsics, 4, "(B, V, 3, 3)", tail=(3, 3))
    check_tensor(where, "extrinsics", extrinsics, 5, "(B, T, V, 4, 4)", tail=(4, 4))
    for name, t in (("intrinsics", intrinsics), ("extrinsics", extrinsics)):
        if not t.is_floating_point():
            raise UsageError(f"{where}: {name} must be a floating tensor, got {t.dtype}")


def check_dtypes_match(where: str, points: Tensor, **tensors: Tensor) -> None:
    """The registered ops read every floating input as the points' dtype (one dtype code per call)."""
    for name, t in tensors.items():
        if t.dtype != points.dtype:
            raise UsageError(f"{where}: {name} is {t.dtype}, points {points.dtype}: every floating input of the op "
                             "has the points' dtype (aim.ops.render_value_maps / sample_value_maps cast the cameras)")


def check_render_args(where: str, points, point_mask, intrinsics, extrinsics, height, width, r_world, sigma_min,
                      sigma_max, combine) -> None:
    """Everything render takes: shapes that agree, one device, image size, blob parameters, combine."""
    check_points(where, points)
    batch, frames, num_points = points.shape[:3]
    check_tensor(where, "point_mask", point_mask, 3, "(B, T, P)")
    if point_mask.dtype != torch.bool:
        raise UsageError(f"{where}: point_mask must be bool, got {point_mask.dtype}")
    check_cameras(where, intrinsics, extrinsics)
    check_same_device(where, points=points, point_mask=point_mask, intrinsics=intrinsics, extrinsics=extrinsics)
    check_agree(where, "batch (B)", points=batch, point_mask=point_mask.shape[0], intrinsics=intrinsics.shape[0],
                extrinsics=extrinsics.shape[0])
    check_agree(where, "frames (T)", points=frames, point_mask=point_mask.shape[1], extrinsics=extrinsics.shape[1])
    check_agree(where, "points (P)", points=num_points, point_mask=point_mask.shape[2])
    check_agree(where, "views (V)", intrinsics=intrinsics.shape[1], extrinsics=extrinsics.shape[2])
    for name, size in (("height", height), ("width", width)):
        if not isinstance(size, (int, torch.SymInt)) or isinstance(size, bool) or size < 1:
            raise UsageError(f"{where}: {name} must be a positive int, got {size!r}")
    check_blob(where, r_world, sigma_min, sigma_max, combine)


def check_blob(where: str, r_world, sigma_min, sigma_max, combine) -> None:
    r_world, sigma_min, sigma_max = float(r_world), float(sigma_min), float(sigma_max)
    if not (0.0 <= r_world < math.inf):
        raise UsageError(f"{where}: r_world must be finite and >= 0, got {r_world}")
    if not (0.0 < sigma_min <= sigma_max < math.inf):
        raise UsageError(
            f"{where}: need 0 < sigma_min <= sigma_max < inf, got sigma_min={sigma_min}, sigma_max={sigma_max}"
        )
    if combine not in COMBINE_CODES:
        raise UsageError(f"{where}: combine must be one of {sorted(COMBINE_CODES)}, got {combine!r}")


def check_sample_args(where: str, value_maps, points, intrinsics, extrinsics, canvas: bool) -> None:
    """Everything sampling takes; with ``canvas`` the maps are one (B, T, 1, Hc, Wc) canvas per frame."""
    check_points(where, points)
    shape = "(B, T, 1, Hc, Wc) or (B, T, Hc, Wc) canvas" if canvas else "(B, T, V, H, W)"
    check_tensor(where, "value_maps", value_maps, 5, shape)
    check_cameras(where, intrinsics, extrinsics)
    check_same_device(where, value_maps=value_maps, points=points, intrinsics=intrinsics, extrinsics=extrinsics)
    if value_maps.dtype != points.dtype:
        raise UsageError(f"{where}: value_maps and points dtypes differ: {value_maps.dtype}, {points.dtype}")
    views = intrinsics.shape[1]
    check_agree(where, "batch (B)", value_maps=value_maps.shape[0], points=points.shape[0],
                intrinsics=intrinsics.shape[0], extrinsics=extrinsics.shape[0])
    check_agree(where, "frames (T)", value_maps=value_maps.shape[1], points=points.shape[1],
                extrinsics=extrinsics.shape[1])
    check_agree(where, "views (V)", intrinsics=views, extrinsics=extrinsics.shape[2],
                **({} if canvas else {"value_maps": value_maps.shape[2]}))
    if canvas and value_maps.shape[2] != 1:
        raise UsageError(
            f"{where}: with view offsets/scales/sizes value_maps is one canvas per frame, (B, T, 1, Hc, Wc) "
            f"or (B, T, Hc, Wc); got shape {tuple(value_maps.shape)}"
        )
    if value_maps.shape[3] < 1 or value_maps.shape[4] < 1:
        raise UsageError(f"{where}: value_maps has an empty image: shape {tuple(value_maps.shape)}")


def check_view_boxes(where: str, boxes, points: Tensor, views: int, values: bool) -> None:
    """The (V, 6) boxes the sample ops take for a canvas (:func:`aim.ops.value_maps.canvas_view_boxes`
    makes them); with ``values`` (real, CPU tensors) also finite, scales > 0 and sizes >= 1."""
    check_tensor(where, "view_boxes", boxes, 2, f"(V, {BOX_COLUMNS}) = ({views}, {BOX_COLUMNS})")
    if tuple(boxes.shape) != (views, BOX_COLUMNS):
        raise UsageError(f"{where}: view_boxes must be (V, {BOX_COLUMNS}) = ({views}, {BOX_COLUMNS}), "
                         f"got shape {tuple(boxes.shape)}")
    check_same_device(where, points=points, view_boxes=boxes)
    check_dtypes_match(where, points, view_boxes=boxes)
    if values and boxes.device.type == "cpu":
        if not bool(torch.isfinite(boxes).all()):
            raise UsageError(f"{where}: view_boxes contains non-finite values")
        if bool((boxes[:, 2:4] <= 0).any()) or bool((boxes[:, 4:6] < 1).any()):
            raise UsageError(f"{where}: view_boxes need scales > 0 (columns 2, 3) and sizes >= 1 (columns 4, 5)")


def check_gradient(where: str, name: str, grad, points: Tensor, shape: tuple[int, ...], layout: str) -> None:
    """An upstream gradient: a tensor of ``shape`` with the points' dtype and device."""
    check_tensor(where, name, grad, len(shape), layout)
    if tuple(grad.shape) != tuple(shape):
        raise UsageError(f"{where}: {name} must be {layout} = {tuple(shape)}, got {tuple(grad.shape)}")
    check_same_device(where, points=points, **{name: grad})
    check_dtypes_match(where, points, **{name: grad})
