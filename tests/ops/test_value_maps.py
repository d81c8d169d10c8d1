"""aim.ops.value_maps against its PyTorch twins, gradcheck, opcheck, camera geometry and bad input."""

import math
import re
from pathlib import Path

import pytest
import torch

from aim.ops import render_value_maps, sample_value_maps
from aim.ops.value_maps import canvas_view_boxes
from aim.ops.value_maps_reference import (
    project_points_reference,
    render_value_maps_reference,
    sample_value_maps_reference,
)

from ..conftest import DEVICES

DTYPES = [torch.float32, torch.float64]
# Absolute bounds for values in [0, 1] (float32: fast-math exp on CUDA, grid_sample's coordinate
# normalisation in the twin) and relative (norm) bounds for gradients.
VALUE_ATOL = {torch.float32: 2e-5, torch.float64: 1e-10}
GRAD_RTOL = {torch.float32: 1e-4, torch.float64: 1e-10}
BLOB = dict(r_world=0.03, sigma_min=1.0, sigma_max=4.0)  # clamps both ways at these depths
WIDE_BLOB = dict(r_world=0.3, sigma_min=0.5, sigma_max=100.0)  # never clamps: the width follows the depth


def rel_err(x: torch.Tensor, ref: torch.Tensor) -> float:
    assert torch.isfinite(x).all(), "non-finite values in the op's result"
    return ((x.double() - ref.double()).norm() / ref.double().norm().clamp_min(1e-30)).item()


def rotation(shape, dtype, scale=0.15):
    w = torch.randn(*shape, 3, dtype=torch.float64) * scale
    skew = torch.zeros(*shape, 3, 3, dtype=torch.float64)
    skew[..., 0, 1], skew[..., 0, 2], skew[..., 1, 2] = -w[..., 2], w[..., 1], -w[..., 0]
    return torch.linalg.matrix_exp(skew - skew.transpose(-1, -2)).to(dtype)


def intrinsics_for(batch, views, height, width, dtype, skew=True):
    k = torch.zeros(batch, views, 3, 3, dtype=dtype)
    fx = width * (0.8 + 0.4 * torch.rand(batch, views, dtype=dtype))
    k[..., 0, 0], k[..., 1, 1] = fx, fx * (0.9 + 0.2 * torch.rand(batch, views, dtype=dtype))
    k[..., 0, 1] = 0.01 * width * torch.randn(batch, views, dtype=dtype) if skew else 0
    k[..., 0, 2] = (width - 1) / 2 + torch.randn(batch, views, dtype=dtype)
    k[..., 1, 2] = (height - 1) / 2 + torch.randn(batch, views, dtype=dtype)
    k[..., 2, 2] = 1
    return k


def scene(device, dtype, batch=2, frames=3, views=3, points=6, height=24, width=32):
    """Cameras near the origin looking along +z (per-frame poses), points around z = 2, a mask.

    Point 0 sits behind every camera and point 1 far off-image, so both invalid paths run.
    """
    k = intrinsics_for(batch, views, height, width, dtype)
    e = torch.eye(4, dtype=dtype).repeat(batch, frames, views, 1, 1)
    e[..., :3, :3] = rotation((batch, frames, views), dtype)
    e[..., :3, 3] = 0.1 * torch.randn(batch, frames, views, 3, dtype=dtype)
    p = 0.4 * torch.randn(batch, frames, points, 3, dtype=dtype)
    p[..., 2] += 2.0
    if points >= 2:
        p[:, :, 0, 2] = -1.0
        p[:, :, 1, 0] = 50.0
    mask = torch.rand(batch, frames, points) > 0.2
    return p.to(device), mask.to(device), k.to(device), e.to(device)


def safe_from_kinks(points, k, e, width, height, margin=1e-3):
    """(B, T, P, V) bool: samples whose map coordinates are off the pixel lines and the image edge,
    where bilinear gradients jump (float32 and the twin may land on different sides)."""
    u, v, _, in_front = project_points_reference(points.double(), k.double(), e.double())
    def near(c, size):
        return ((c - c.round()).abs() < margin) | ((c - (size - 1)).abs() < margin)
    return ~(near(u, width) | near(v, height)) | ~in_front


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("combine", ["max", "sum"])
@pytest.mark.parametrize("blob", [BLOB, WIDE_BLOB], ids=["clamped-sigma", "free-sigma"])
def test_render_matches_reference_values_and_gradients(device, dtype, combine, blob):
    height, width = 40, 56
    points, mask, k, e = scene(device, dtype, points=9, height=height, width=width)
    points[:, :, 2:4] = points[:, :, 4:5] + 0.02 * torch.randn_like(points[:, :, 2:4])  # overlapping blobs
    p, ref_p = points.clone().requires_grad_(), points.clone().requires_grad_()
    out = render_value_maps(p, mask, k, e, height, width, combine=combine, **blob)
    ref = render_value_maps_reference(ref_p, mask, k, e, height, width, combine=combine, **blob)
    assert out.shape == (2, 3, 3, height, width) and out.dtype == dtype and out.device.type == device
    assert (out - ref).abs().max().item() < VALUE_ATOL[dtype]
    assert out.min() >= 0 and out.max() <= 1 and out.max() > 0.5
    if combine == "sum":
        assert (ref.detach() == 1).any(), "no clamped pixel: the sum's clamp is untested"

    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    assert rel_err(p.grad, ref_p.grad) < GRAD_RTOL[dtype]
    assert (p.grad[:, :, :2] == 0).all()  # behind the camera, off-image
    assert (p.grad[~mask.to(device)] == 0).all() and p.grad.abs().sum() > 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("combine", ["max", "sum"])
def test_render_many_points_on_many_tiles_matches_reference(device, combine):
    # 300 points: more than one 256-point pass (the CUDA forward resumes from its own partial
    # sums); 96 x 280: 27 tiles of 32 x 32, so a run of 8 tiles per CUDA block ends short.
    height, width = 96, 280
    points, mask, k, e = scene(device, torch.float32, batch=1, frames=2, views=2, points=300, height=height,
                               width=width)
    p, ref_p = points.clone().requires_grad_(), points.clone().requires_grad_()
    out = render_value_maps(p, mask, k, e, height, width, combine=combine, **BLOB)
    ref = render_value_maps_reference(ref_p, mask, k, e, height, width, combine=combine, **BLOB)
    assert (out - ref).abs().max().item() < VALUE_ATOL[torch.float32]
    assert (ref.detach() > 0.5).sum() > 100
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    assert rel_err(p.grad, ref_p.grad) < GRAD_RTOL[torch.float32]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("combine", ["max", "sum"])
@pytest.mark.parametrize("blob", [BLOB, WIDE_BLOB], ids=["clamped-sigma", "free-sigma"])
def test_gradcheck_render(device, combine, blob):
    height, width = 10, 12
    points, mask, k, e = scene(device, torch.float64, batch=1, frames=2, views=2, points=4, height=height, width=width)
    points[:, :, 3] = points[:, :, 2] + 0.05 * torch.randn_like(points[:, :, 2])  # overlapping blobs
    p = points.clone().requires_grad_()
    def fn(x):
        return render_value_maps(x, mask, k, e, height, width, combine=combine, **blob)

    assert torch.autograd.gradcheck(fn, (p,), nondet_tol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("maps_layout", ["contiguous", "channel-slice"])
def test_sample_matches_reference_values_and_gradients(device, dtype, maps_layout):
    height, width = 24, 32
    points, _, k, e = scene(device, dtype, points=7, height=height, width=width)
    if maps_layout == "contiguous":
        maps = torch.rand(2, 3, 3, height, width, dtype=dtype, device=device)
    else:  # one channel of a (B, T, V, H, W, 3) decoder output: non-unit strides everywhere
        maps = torch.rand(2, 3, 3, height, width, 3, dtype=dtype, device=device)[..., 1]
    maps.requires_grad_()
    p = points.clone().requires_grad_()
    values, valid = sample_value_maps(maps, p, k, e)
    ref_maps, ref_p = maps.detach().clone().requires_grad_(), points.clone().requires_grad_()
    ref_values, ref_valid = sample_value_maps_reference(ref_maps, ref_p, k, e)

    assert values.shape == valid.shape == (2, 3, 7, 3) and valid.dtype == torch.bool
    assert torch.equal(valid, ref_valid)
    assert not valid[:, :, :2].any() and valid.any()
    assert (values - ref_values).abs().max().item() < VALUE_ATOL[dtype]
    assert (values[~valid] == 0).all()

    grad = torch.randn_like(values) * safe_from_kinks(points, k, e, width, height).to(device)
    values.backward(grad)
    ref_values.backward(grad)
    assert rel_err(maps.grad, ref_maps.grad) < GRAD_RTOL[dtype]
    assert rel_err(p.grad, ref_p.grad) < GRAD_RTOL[dtype]
    assert (p.grad[:, :, :2] == 0).all()


def _parallel_sample_threshold() -> int:
    """kParallelSamples of the CPU kernels: problems with fewer samples run on the calling thread."""
    source = (Path(__file__).parents[2] / "csrc/value_maps_cpu.cpp").read_text()
    return int(re.search(r"constexpr int64_t kParallelSamples = (\d+);", source).group(1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch,frames,points", [(8, 240, 3), (2, 64, 50)], ids=["few-points", "many-points"])
def test_sample_at_parallel_sizes_matches_reference(device, batch, frames, points):
    """Enough samples for the CPU kernels to split the slabs over threads, with chunks of samples
    that span many slabs (three points per frame, two of them invalid) or a few views (fifty)."""
    assert batch * frames * points * 3 >= _parallel_sample_threshold()
    height, width = 24, 32
    pts, _, k, e = scene(device, torch.float64, batch=batch, frames=frames, points=points, height=height, width=width)
    maps = torch.rand(batch, frames, 3, height, width, dtype=torch.float64, device=device)
    m, p = maps.clone().requires_grad_(), pts.clone().requires_grad_()
    ref_m, ref_p = maps.clone().requires_grad_(), pts.clone().requires_grad_()
    values, valid = sample_value_maps(m, p, k, e)
    ref_values, ref_valid = sample_value_maps_reference(ref_m, ref_p, k, e)
    assert torch.equal(valid, ref_valid) and valid.float().mean() > 0.1
    assert (values - ref_values).abs().max().item() < VALUE_ATOL[torch.float64]
    grad = torch.randn_like(values)
    values.backward(grad)
    ref_values.backward(grad)
    assert rel_err(m.grad, ref_m.grad) < GRAD_RTOL[torch.float64]
    assert rel_err(p.grad, ref_p.grad) < GRAD_RTOL[torch.float64]


@pytest.mark.parametrize("side", ["serial", "parallel"])
def test_sample_cpu_result_does_not_depend_on_threads(side):
    """Just below and just above the size where the CPU kernels split the slabs over threads: one
    thread and two give identical values and gradients (each output element is summed in the same
    order), and both match the twin."""
    threshold, views, num_points, height, width = _parallel_sample_threshold(), 3, 5, 12, 16
    frames = threshold // (views * num_points) + (1 if side == "parallel" else -1)
    assert (frames * views * num_points >= threshold) == (side == "parallel")
    points, _, k, e = scene("cpu", torch.float64, batch=1, frames=frames, points=num_points, height=height,
                            width=width)
    maps = torch.rand(1, frames, views, height, width, dtype=torch.float64)
    grad = torch.randn(1, frames, num_points, views, dtype=torch.float64)
    threads = torch.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            m, p = maps.clone().requires_grad_(), points.clone().requires_grad_()
            values, valid = sample_value_maps(m, p, k, e)
            values.backward(grad)
            results.append((values, valid, m.grad, p.grad))
    finally:
        torch.set_num_threads(threads)
    for one, two in zip(*results):
        assert torch.equal(one, two)
    ref_m, ref_p = maps.clone().requires_grad_(), points.clone().requires_grad_()
    ref_values, ref_valid = sample_value_maps_reference(ref_m, ref_p, k, e)
    ref_values.backward(grad)
    values, valid, maps_grad, points_grad = results[0]
    assert torch.equal(valid, ref_valid) and valid.float().mean() > 0.1
    assert (values - ref_values).abs().max().item() < VALUE_ATOL[torch.float64]
    assert rel_err(maps_grad, ref_m.grad) < GRAD_RTOL[torch.float64]
    assert rel_err(points_grad, ref_p.grad) < GRAD_RTOL[torch.float64]


@pytest.mark.parametrize("device", DEVICES)
def test_sample_on_the_image_border(device):
    """Points exactly on the first and last pixel lines (where the kernels leave their fast path:
    some bilinear neighbours are outside the map, with weight 0) read a linear ramp exactly and
    put their map gradient where the twin does."""
    dtype, height, width = torch.float64, 9, 13
    k = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 1]], dtype=dtype).expand(1, 1, 3, 3)
    e = torch.eye(4, dtype=dtype).expand(1, 1, 1, 4, 4)
    uv = torch.tensor([[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1], [width - 1, 3.25],
                       [5.5, height - 1], [5.5, 3.25]], dtype=dtype)
    points = torch.cat([uv / 2, torch.ones(len(uv), 1, dtype=dtype)], dim=1).expand(1, 1, -1, 3)
    ramp = torch.arange(width, dtype=dtype) + 100 * torch.arange(height, dtype=dtype)[:, None]
    maps = (ramp + torch.rand(height, width, dtype=dtype)).expand(1, 1, 1, height, width).to(device)
    m, ref_m = maps.clone().requires_grad_(), maps.clone().requires_grad_()
    values, valid = sample_value_maps(m, points.to(device), k.to(device), e.to(device))
    ref_values, _ = sample_value_maps_reference(ref_m, points.to(device), k.to(device), e.to(device))
    assert valid.all()
    assert (values - ref_values).abs().max().item() < VALUE_ATOL[dtype]
    grad = torch.randn_like(values)
    values.backward(grad)
    ref_values.backward(grad)
    assert rel_err(m.grad, ref_m.grad) < GRAD_RTOL[dtype]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("canvas", [False, True], ids=["per-view", "canvas"])
@pytest.mark.parametrize("wrt", [(), ("maps",), ("points",), ("maps", "points")], ids=str)
def test_sample_eager_path_equals_the_custom_op(device, canvas, wrt):
    """In eager mode sample_value_maps runs the custom op's bodies without the dispatcher; the
    registered op (what torch.compile runs) gives the same values and gradients, bit for bit."""
    height, width = 12, 16
    points, _, k, e = scene(device, torch.float32, height=height, width=width)
    maps = torch.rand(2, 3, 1 if canvas else 3, 2 * height if canvas else height, 2 * width if canvas else width,
                      device=device)
    layout = {"view_offsets": [[0, 0], [width, 0], [0, height]], "view_sizes": [[width, height]] * 3} if canvas else {}
    boxes = canvas_view_boxes(3, layout["view_offsets"], None, layout["view_sizes"], maps.dtype, maps.device) \
        if canvas else None
    grad = torch.randn(2, 3, points.shape[2], 3, device=device)
    results = []
    for call in (lambda m, p: sample_value_maps(m, p, k, e, **layout),
                 lambda m, p: torch.ops.aim.sample_value_maps(m, p, k, e, boxes)):
        m, p = maps.clone().requires_grad_("maps" in wrt), points.clone().requires_grad_("points" in wrt)
        values, valid = call(m, p)
        assert values.requires_grad == bool(wrt) and not valid.requires_grad
        if wrt:
            values.backward(grad)
        results.append((values, valid, m.grad, p.grad))
    (values, valid, maps_grad, points_grad), op_results = results
    assert torch.equal(values, op_results[0]) and torch.equal(valid, op_results[1]) and valid.any()
    for name, g, op_g in (("maps", maps_grad, op_results[2]), ("points", points_grad, op_results[3])):
        assert (g is None) == (name not in wrt)
        if g is not None:
            assert g.abs().sum() > 0 and torch.equal(g, op_g)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_sample(device):
    height, width = 6, 8
    points, _, k, e = scene(device, torch.float64, batch=1, frames=2, views=2, points=4, height=height, width=width)
    maps = torch.rand(1, 2, 2, height, width, dtype=torch.float64, device=device, requires_grad=True)
    p = points.clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda m, x: sample_value_maps(m, x, k, e)[0], (maps, p), nondet_tol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_gradcheck_sample_canvas(device):
    points, _, k, e = scene(device, torch.float64, batch=1, frames=1, views=2, points=4, height=6, width=7)
    canvas = torch.rand(1, 1, 6, 16, dtype=torch.float64, device=device, requires_grad=True)
    layout = dict(view_offsets=[[0, 0], [8, 0]], view_scales=[[1, 1], [1.1, 0.9]], view_sizes=[[7, 6], [7, 6]])
    p = points.clone().requires_grad_()
    fn = lambda m, x: sample_value_maps(m, x, k, e, **layout)[0]  # noqa: E731
    assert torch.autograd.gradcheck(fn, (canvas, p), nondet_tol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
def test_opcheck(device):
    points, mask, k, e = scene(device, torch.float32, batch=1, frames=2, views=2, points=5, height=12, width=16)
    maps = torch.rand(1, 2, 2, 12, 16, device=device, requires_grad=True)
    p = points.clone().requires_grad_()
    for combine in ("max", "sum"):
        torch.library.opcheck(torch.ops.aim.render_value_maps.default,
                              (p, mask, k, e, 12, 16, 0.3, 0.5, 100.0, combine))
    grad_maps = torch.randn(1, 2, 2, 12, 16, device=device)
    torch.library.opcheck(torch.ops.aim.render_value_maps_backward.default,
                          (grad_maps, points, mask, k, e, 0.3, 0.5, 100.0, "max"))
    torch.library.opcheck(torch.ops.aim.sample_value_maps.default, (maps, p, k, e, None))
    boxes = torch.tensor([[0, 0, 1, 1, 8, 12], [8, 0, 0.5, 1, 16, 12]], dtype=torch.float32, device=device)
    torch.library.opcheck(torch.ops.aim.sample_value_maps.default, (maps[:, :, :1], p, k, e, boxes))
    grad = torch.randn(1, 2, 5, 2, device=device)
    torch.library.opcheck(torch.ops.aim.sample_value_maps_backward.default,
                          (grad, maps.detach(), points, k, e, None, True, False))


# ---------------------------------------------------------------------------------------------
# Packed canvas.


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_canvas_sampling_equals_per_view_sampling(device, dtype):
    height, width = 20, 26
    points, _, k, e = scene(device, dtype, height=height, width=width)
    maps = torch.rand(2, 3, 3, height, width, dtype=dtype, device=device)
    # Paper layout (docs/method.md §2): head view on top, the two wrist views side by side below it.
    canvas = torch.zeros(2, 3, 2 * height, 2 * width, dtype=dtype, device=device)
    offsets = [[width // 2, 0], [0, height], [width, height]]
    for v, (ou, ov) in enumerate(offsets):
        canvas[:, :, ov:ov + height, ou:ou + width] = maps[:, :, v]
    layout = dict(view_offsets=offsets, view_sizes=[[width, height]] * 3)

    canvas.requires_grad_()
    maps.requires_grad_()
    p = points.clone().requires_grad_()
    p_canvas = points.clone().requires_grad_()
    values, valid = sample_value_maps(maps, p, k, e)
    c_values, c_valid = sample_value_maps(canvas, p_canvas, k, e, **layout)
    assert torch.equal(valid, c_valid)
    assert (values - c_values).abs().max().item() < VALUE_ATOL[dtype]

    grad = torch.randn_like(values)
    values.backward(grad)
    c_values.backward(grad)
    packed_grad = torch.stack([canvas.grad[:, :, ov:ov + height, ou:ou + width] for ou, ov in offsets], dim=2)
    assert rel_err(packed_grad, maps.grad) < GRAD_RTOL[dtype]
    assert rel_err(p_canvas.grad, p.grad) < GRAD_RTOL[dtype]
    ref_values, _ = sample_value_maps_reference(canvas.detach(), points, k, e, **layout)
    assert (c_values - ref_values).abs().max().item() < VALUE_ATOL[dtype]


@pytest.mark.parametrize("device", DEVICES)
def test_canvas_scales_map_view_pixels_affinely(device):
    """A canvas holding a linear ramp of each view's own pixel coordinates reads back (u, v)
    exactly (bilinear interpolation is exact on linear functions), whatever the scale."""
    dtype = torch.float64
    height, width = 16, 20
    points, _, k, e = scene(device, dtype, batch=1, frames=2, views=2, height=height, width=width)
    offsets, scales = [[0.25, 1.0], [22.0, 3.5]], [[0.5, 0.5], [2.0, 1.5]]
    # View 0 covers canvas columns 0.25..9.75, view 1 columns 22..60: each column holds the u of
    # the view it belongs to, so every valid sample's 2 x 2 neighbourhood lies in its own view.
    cols = torch.arange(64, dtype=dtype, device=device)
    second = cols >= 21
    u_of_column = (cols - torch.where(second, 22.0, 0.25)) / torch.where(second, 2.0, 0.5)
    canvas = u_of_column.expand(1, 2, 40, 64)  # stride-0 batch, frame and row dimensions
    values, valid = sample_value_maps(canvas, points, k, e, view_offsets=offsets, view_scales=scales,
                                      view_sizes=[[width, height]] * 2)
    u, v, _, in_front = project_points_reference(points, k, e)
    assert valid.any()
    assert torch.allclose(values[valid], u[valid], atol=1e-9)
    assert torch.equal(valid, in_front & (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1))


@pytest.mark.parametrize("device", DEVICES)
def test_canvas_validity_is_the_views_own_region(device):
    """A point that lands just right of view 0's region, on view 1's part of the canvas, is invalid."""
    dtype = torch.float32
    k = intrinsics_for(1, 2, 10, 10, dtype, skew=False).to(device)
    k[..., 0, 2], k[..., 1, 2] = 4.5, 4.5
    e = torch.eye(4, dtype=dtype, device=device).repeat(1, 1, 2, 1, 1)
    f = k[0, 0, 0, 0].item()
    # u = 4.5 + f x / z = 9.5 in view 0: outside its columns 0..9, though canvas column 10 exists.
    x = 5.0 / f
    points = torch.tensor([[[[x * 2, 0.0, 2.0]]]], dtype=dtype, device=device)
    canvas = torch.ones(1, 1, 10, 20, dtype=dtype, device=device)
    values, valid = sample_value_maps(canvas, points, k, e, view_offsets=[[0, 0], [10, 0]], view_sizes=[[10, 10]] * 2)
    assert not valid[0, 0, 0, 0] and values[0, 0, 0, 0] == 0


# ---------------------------------------------------------------------------------------------
# Camera geometry.


def look_at(eye: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """World-to-camera 4x4 of an OpenCV camera at ``eye`` whose optical axis passes through ``target``."""
    z = target - eye
    z = z / z.norm()
    down = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype)  # OpenCV: y points down
    x = torch.linalg.cross(down, z)
    x = x / x.norm()
    y = torch.linalg.cross(z, x)
    r = torch.stack([x, y, z])
    e = torch.eye(4, dtype=eye.dtype)
    e[:3, :3], e[:3, 3] = r, -r @ eye
    return e


@pytest.mark.parametrize("device", DEVICES)
def test_point_on_optical_axis_lands_on_principal_point(device):
    dtype = torch.float64
    height, width, cx, cy = 30, 40, 23.0, 11.0
    k = torch.tensor([[100.0, 0, cx], [0, 90.0, cy], [0, 0, 1]], dtype=dtype).expand(1, 1, 3, 3)
    eye = torch.tensor([0.3, -0.2, 0.1], dtype=dtype)
    target = torch.tensor([1.0, 0.5, 2.0], dtype=dtype)
    e = look_at(eye, target).expand(1, 1, 1, 4, 4)
    points = target.expand(1, 1, 1, 3)
    out = render_value_maps(points.to(device), None, k.to(device), e.to(device), height, width, **BLOB)[0, 0, 0]
    assert out[int(cy), int(cx)].item() == pytest.approx(1.0, abs=1e-12)
    assert divmod(out.argmax().item(), width) == (int(cy), int(cx))
    ramp = torch.arange(width, dtype=dtype).expand(1, 1, 1, height, width).to(device)
    values, valid = sample_value_maps(ramp, points.to(device), k.to(device), e.to(device))
    assert valid.all() and values.item() == pytest.approx(cx, abs=1e-9)


@pytest.mark.parametrize("device", DEVICES)
def test_points_behind_or_at_the_camera_are_invalid_without_nan(device):
    dtype = torch.float64
    k = intrinsics_for(1, 1, 16, 16, dtype).to(device)
    e = torch.eye(4, dtype=dtype, device=device).expand(1, 1, 1, 4, 4)
    points = torch.tensor([[[[0.0, 0.0, -2.0], [0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 1e-9],
                             [float("nan"), 0.0, 2.0], [0.0, float("inf"), 2.0], [0.0, 0.0, float("inf")]]]],
                          dtype=dtype, device=device)
    maps = torch.rand(1, 1, 1, 16, 16, dtype=dtype, device=device, requires_grad=True)
    p = points.clone().requires_grad_()
    values, valid = sample_value_maps(maps, p, k, e)
    assert not valid.any() and (values == 0).all()
    values.sum().backward()
    assert (p.grad == 0).all() and (maps.grad == 0).all()
    out = render_value_maps(points, None, k, e, 16, 16, **BLOB)
    assert (out == 0).all()


@pytest.mark.parametrize("device", DEVICES)
def test_translating_the_camera_moves_the_blob(device):
    dtype = torch.float64
    height, width, fx, z, dx = 32, 48, 100.0, 2.0, 0.1  # the blob moves by fx * dx / z = 5 pixels
    k = torch.tensor([[fx, 0, 30.0], [0, fx, 15.0], [0, 0, 1]], dtype=dtype).expand(1, 2, 3, 3).to(device)
    e = torch.eye(4, dtype=dtype).repeat(1, 1, 2, 1, 1)
    e[0, 0, 1, 0, 3] = -dx  # view 1's camera sits dx to the right: x_cam = x_world - dx
    e = e.to(device)
    points = torch.tensor([[[[0.0, 0.0, z]]]], dtype=dtype, device=device)
    out = render_value_maps(points, None, k, e, height, width, **BLOB)[0, 0]
    assert torch.allclose(out[1, :, :-5], out[0, :, 5:], atol=1e-12)
    assert out[1].argmax().item() == 15 * width + 25
    ramp = torch.arange(width, dtype=dtype).expand(1, 1, 2, height, width).to(device)
    values, _ = sample_value_maps(ramp, points, k, e)
    assert values[0, 0, 0, 0].item() - values[0, 0, 0, 1].item() == pytest.approx(fx * dx / z, abs=1e-9)


@pytest.mark.parametrize("device", DEVICES)
def test_wrist_camera_uses_each_frames_extrinsics(device):
    """A wrist camera circling a target while looking at it: the target stays on the principal
    point in every frame; a second, fixed point moves; each frame equals a one-frame render."""
    dtype = torch.float64
    height, width, frames = 24, 32, 4
    k = torch.tensor([[40.0, 0, 16.0], [0, 40.0, 12.0], [0, 0, 1]], dtype=dtype).expand(1, 1, 3, 3)
    target = torch.tensor([0.0, 0.0, 1.0], dtype=dtype)
    angles = torch.linspace(0, 1.2, frames, dtype=dtype)
    eyes = [torch.stack([0.5 * a.sin(), torch.tensor(-0.1, dtype=dtype), 1.0 - 0.5 * a.cos()]) for a in angles]
    e = torch.stack([look_at(eye, target) for eye in eyes]).reshape(1, frames, 1, 4, 4)
    points = torch.stack([target, target + torch.tensor([0.1, 0.05, 0.0], dtype=dtype)]).expand(1, frames, 2, 3)
    k, e, points = k.to(device), e.to(device), points.contiguous().to(device)
    mask = torch.tensor([True, False], device=device).expand(1, frames, 2)
    out = render_value_maps(points, mask, k, e, height, width, **BLOB)
    for t in range(frames):
        assert divmod(out[0, t, 0].argmax().item(), width) == (12, 16)
        single = render_value_maps(points[:, t:t + 1], mask[:, t:t + 1], k, e[:, t:t + 1], height, width, **BLOB)
        assert torch.equal(single[0, 0], out[0, t])
    u, _, _, _ = project_points_reference(points, k, e)
    assert torch.allclose(u[0, :, 0, 0], torch.full((frames,), 16.0, dtype=dtype, device=device), atol=1e-9)
    assert u[0, :, 1, 0].max() - u[0, :, 1, 0].min() > 2  # the fixed point moves across the image


@pytest.mark.parametrize("device", DEVICES)
def test_render_sigma_follows_focal_length_and_depth(device):
    """sigma_px = clamp(f r / z): a point twice as far gets a blob half as wide; fx != fy gives an ellipse."""
    dtype = torch.float64
    k = torch.tensor([[60.0, 0, 40.0], [0, 30.0, 40.0], [0, 0, 1]], dtype=dtype).expand(1, 1, 3, 3).to(device)
    e = torch.eye(4, dtype=dtype, device=device).expand(1, 2, 1, 4, 4)
    points = torch.tensor([[[[0.0, 0.0, 1.0]], [[0.0, 0.0, 2.0]]]], dtype=dtype, device=device)
    out = render_value_maps(points, None, k, e, 81, 81, r_world=0.1, sigma_min=0.5, sigma_max=100.0)
    # sigma_u = 6 at z = 1, 3 at z = 2; sigma_v is half of sigma_u.
    # Blob value d pixels from the centre along one axis: (exp(-d^2 / 2 s^2) - e) / (1 - e).
    def expected(d, s):
        return (math.exp(-0.5 * (d / s) ** 2) - 0.011108996538242306) / (1 - 0.011108996538242306)
    near, far = out[0, 0, 0], out[0, 1, 0]
    assert near[40, 46].item() == pytest.approx(expected(6, 6.0), abs=1e-12)
    assert far[40, 43].item() == pytest.approx(expected(3, 3.0), abs=1e-12)
    assert near[43, 40].item() == pytest.approx(expected(3, 3.0), abs=1e-12)
    assert abs(near[40, 58].item()) < 1e-12 and near[40, 57].item() > 0  # cut at 3 sigma = 18 pixels


def test_python_constants_match_the_shared_header():
    from aim.ops import value_maps

    header = (Path(__file__).parents[2] / "csrc/include/aim/value_maps.h").read_text()
    constants = {name: float(value) for name, value in re.findall(r"constexpr double (\w+) = ([-+.e\d]+);", header)}
    for py_name, c_name in (("MIN_DEPTH", "kMinDepth"), ("BLOB_RADIUS", "kBlobRadius"),
                            ("BLOB_FLOOR", "kBlobFloor"), ("BLOB_SCALE", "kBlobScale")):
        assert constants[c_name] == getattr(value_maps, py_name), c_name
    assert value_maps.BLOB_FLOOR == math.exp(-value_maps.BLOB_RADIUS**2 / 2)
    assert value_maps.BLOB_SCALE == pytest.approx(1 / (1 - value_maps.BLOB_FLOOR), rel=1e-15)


@pytest.mark.parametrize("device", DEVICES)
def test_torch_compile_forward_and_backward(device):
    """Both ops in one fullgraph-compiled loss (a rendered target, a sampled reward) equal eager,
    values and gradients."""
    height, width = 24, 32
    points, mask, k, e = scene(device, torch.float32, points=5, height=height, width=width)
    maps = torch.rand(2, 3, 3, height, width, device=device, requires_grad=True)
    p = points.clone().requires_grad_()

    def loss(maps, p):
        target = render_value_maps(p, mask, k, e, height, width, combine="sum", **WIDE_BLOB)
        values, valid = sample_value_maps(maps, p, k, e)
        return ((maps - target) ** 2).sum() - (values * valid).sum()

    compiled = torch.compile(loss, fullgraph=True)
    value = compiled(maps, p)
    grads = torch.autograd.grad(value, (maps, p))
    eager = loss(maps, p)
    eager_grads = torch.autograd.grad(eager, (maps, p))
    assert torch.allclose(value, eager, rtol=1e-5)
    for g, ref in zip(grads, eager_grads):
        assert ref.abs().sum() > 0
        assert torch.allclose(g, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
def test_empty_inputs(device):
    points, mask, k, e = scene(device, torch.float32, points=0)
    assert (render_value_maps(points, mask, k, e, 8, 8, **BLOB) == 0).all()
    values, valid = sample_value_maps(torch.rand(2, 3, 3, 8, 8, device=device), points, k, e)
    assert values.shape == valid.shape == (2, 3, 0, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("points", [0, 3, 300])
def test_cuda_render_writes_every_pixel(points):
    # Most pixels of a render are 0, as fresh memory often is: poison the caching allocator's block
    # that the op's output will reuse, so a pixel the kernel skips shows up as NaN. 96 x 300 maps
    # have ragged tiles and runs of tiles that end short; 300 points take two passes.
    height, width = 96, 300
    p, mask, k, e = scene("cuda", torch.float32, batch=2, frames=2, views=3, points=points, height=height,
                          width=width)
    poison = torch.full((2, 2, 3, height, width), float("nan"), device="cuda")
    poisoned_block = poison.data_ptr()
    del poison
    out = render_value_maps(p, mask, k, e, height, width, **BLOB)
    assert out.data_ptr() == poisoned_block, "the output did not reuse the poisoned block: the test proves nothing"
    assert torch.isfinite(out).all()


# ---------------------------------------------------------------------------------------------
# Bad input.


def _render(points, mask, k, e, **kw):
    args = dict(height=24, width=32, **BLOB)
    args.update(kw)
    return render_value_maps(points, mask, k, e, **args)


def _sample(maps, points, k, e, **kw):
    return sample_value_maps(maps, points, k, e, **kw)


def _nan_at(t, index):
    t = t.clone()
    t[index] = float("nan")
    return t


BAD_INPUTS = [
    (lambda M, p, m, k, e: _sample(M, p[..., :2], k, e), ValueError, r"points must be \(B, T, P, 3\)"),
    (lambda M, p, m, k, e: _sample(M, p, k[..., :2, :], e), ValueError, r"intrinsics must be \(B, V, 3, 3\)"),
    (lambda M, p, m, k, e: _sample(M, p, k, e[:, :, :2]), ValueError, r"views \(V\) differs"),
    (lambda M, p, m, k, e: _sample(M[:, :2], p, k, e), ValueError, r"frames \(T\) differs"),
    (lambda M, p, m, k, e: _sample(M, p, k[:1], e), ValueError, r"batch \(B\) differs"),
    (lambda M, p, m, k, e: _sample(M, p, _nan_at(k, (0, 1, 0, 0)), e), ValueError, "intrinsics contains non-finite"),
    (lambda M, p, m, k, e: _sample(M, p, k, e * float("inf")), ValueError, "extrinsics contains non-finite"),
    (lambda M, p, m, k, e: _sample(M.half(), p.half(), k, e), ValueError, "unsupported dtype"),
    (lambda M, p, m, k, e: _sample(M.double(), p, k, e), ValueError, "dtypes differ"),
    (lambda M, p, m, k, e: _sample(M.to("meta"), p, k, e), ValueError, "different devices"),
    (lambda M, p, m, k, e: _sample(M[:, :, 0], p, k, e, view_offsets=[[0, 0]] * 3), ValueError, "view_sizes"),
    (lambda M, p, m, k, e: _sample(M, p, k, e, view_offsets=[[0, 0]] * 3, view_sizes=[[4, 4]] * 3), ValueError,
     "one canvas per frame"),
    (lambda M, p, m, k, e: _sample(M[:, :, 0], p, k, e, view_offsets=[[0, 0]] * 2, view_sizes=[[4, 4]] * 3),
     ValueError, r"view_offsets must be \(V, 2\)"),
    (lambda M, p, m, k, e: _sample(M[:, :, 0], p, k, e, view_scales=[[1, -1]] * 3, view_sizes=[[4, 4]] * 3),
     ValueError, "view_scales must be > 0"),
    (lambda M, p, m, k, e: _sample(M.tolist(), p, k, e), TypeError, "value_maps must be a torch.Tensor"),
    (lambda M, p, m, k, e: _render(p, m, k, e, sigma_min=5.0, sigma_max=2.0), ValueError, "sigma_min <= sigma_max"),
    (lambda M, p, m, k, e: _render(p, m, k, e, combine="mean"), ValueError, "combine must be one of"),
    (lambda M, p, m, k, e: _render(p, m, k, e, height=0), ValueError, "height must be a positive int"),
    (lambda M, p, m, k, e: _render(p, m.float(), k, e), ValueError, "point_mask must be bool"),
    (lambda M, p, m, k, e: _render(p, m[:, :, :2], k, e), ValueError, r"points \(P\) differs"),
    (lambda M, p, m, k, e: _render(p, m, k, _nan_at(e, (1, 2, 0, 0, 3))), ValueError, "extrinsics contains non-finite"),
    (lambda M, p, m, k, e: _render(p, m, k, e, r_world=float("nan")), ValueError, "r_world must be finite"),
]


@pytest.mark.parametrize("make,error,message", BAD_INPUTS)
def test_bad_input_is_named(make, error, message):
    points, mask, k, e = scene("cpu", torch.float32)
    maps = torch.rand(2, 3, 3, 24, 32)
    with pytest.raises(error, match=message):
        make(maps, points, mask, k, e)
