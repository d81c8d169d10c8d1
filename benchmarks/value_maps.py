"""Benchmark: aim's value-map ops (native C++/CUDA) against their plain PyTorch twins.

Three views of 256 x 320 (the AIM canvas views), float32:

* ``render``  — render_value_maps vs render_value_maps_reference, forward (annotation) and, at
  the smallest size (the twin's backward is slow), forward+backward with gradients to the points;
* ``sample``  — sample_value_maps vs sample_value_maps_reference (grid_sample), forward, and
  forward+backward with gradients to the points only (frozen maps: the RL reward of docs/method.md §6) and
  to the maps and the points (training through the map).

Bandwidth counts the bytes an op must move at least: its inputs and outputs once, plus 4
neighbours per sample (render: the maps it writes; sample backward with maps: the full gradient
map it must write, zeros included). It is compared with the copy bandwidth measured in the same
run (a large ``Tensor.copy_``, read + write). Prints a markdown table and appends it, with
device, versions and date, to benchmarks/RESULTS.md (``--no-record`` to skip).

Every row also times a floor, the memory traffic any implementation must do, in the same run:
render ``zeros`` allocates and zero-fills maps like the output, render backward ``copy`` reads the
upstream gradient maps and writes maps (the forward's output); sampling ``gather`` reads just the 4
neighbours of every valid sample (``index_select`` with the indices precomputed), and ``zeros``
allocates and zero-fills a gradient map like the maps (both sides return one). ``aim / floor``
says how far the op is from that bound; ``ref / floor`` bounds the speed-up over the twin that
reading (or writing) those bytes leaves.

On CPU, the first-touch page faults of fresh outputs (rendered maps, gradient maps; PyTorch's CPU
allocator returns large blocks to the OS) dominate the large cases for aim and reference alike;
``THP_MEM_ALLOC_ENABLE=1`` (PyTorch's huge-page switch) shows more of the kernels' own speed.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch

from aim.ops import render_value_maps, sample_value_maps
from aim.ops.value_maps_reference import (
    project_points_reference,
    render_value_maps_reference,
    sample_value_maps_reference,
)
from common import environment, record

VIEWS, HEIGHT, WIDTH = 3, 256, 320
BLOB = dict(r_world=0.02, sigma_min=2.0, sigma_max=12.0)  # 2 cm contact regions, 2..12 pixel blobs


@dataclass
class Row:
    op: str
    pass_: str
    batch: int
    frames: int
    points: int
    aim_ms: float
    ref_ms: float
    bytes_: int
    floor: str = ""  # what the floor time measures, "" for none
    floor_ms: float = float("nan")


def timer(device: torch.device, repeats: int) -> Callable[[Callable[[], object]], float]:
    """Best (minimum) wall time in ms of fn() (device events on CUDA), after one warm-up call, over
    at least ``repeats`` calls and, for cheap calls, as many more as fit in 0.5 s (at most 200).
    The minimum, not the median: on a shared CPU a call that loses a core to another process (an
    OpenMP barrier then waits a scheduler tick) says nothing about the op."""

    def once(fn: Callable[[], object]) -> float:
        if device.type == "cuda":
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            stop.record()
            torch.cuda.synchronize()
            return start.elapsed_time(stop)
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    def run(fn: Callable[[], object]) -> float:
        fn()
        times: list[float] = []
        deadline = time.perf_counter() + 0.5
        while len(times) < repeats or (time.perf_counter() < deadline and len(times) < 200):
            times.append(once(fn))
        return min(times)

    return run


def copy_bandwidth(device: torch.device, time_it) -> float:
    """GB/s of a 512 MiB float32 copy (bytes read + bytes written)."""
    src = torch.rand(128 * 2**20, device=device)
    dst = torch.empty_like(src)
    ms = time_it(lambda: dst.copy_(src))
    return 2 * src.numel() * 4 / ms / 1e6


def scene(batch: int, frames: int, points: int, device: torch.device):
    """Three cameras around a workspace 0.6 m ahead (head camera still, wrist cameras moving per
    frame), points spread over it; about 90% project into each view."""
    k = torch.zeros(batch, VIEWS, 3, 3)
    k[..., 0, 0] = k[..., 1, 1] = 300.0
    k[..., 0, 2], k[..., 1, 2], k[..., 2, 2] = (WIDTH - 1) / 2, (HEIGHT - 1) / 2, 1.0
    e = torch.eye(4).repeat(batch, frames, VIEWS, 1, 1)
    e[..., :3, 3] = 0.05 * torch.randn(batch, frames, VIEWS, 3)
    p = 0.15 * torch.randn(batch, frames, points, 3)
    p[..., 2] += 0.6
    mask = torch.rand(batch, frames, points) > 0.1
    return p.to(device), mask.to(device), k.to(device), e.to(device)


def bench_render(batch, frames, points, device, time_it, with_reference, with_backward) -> list[Row]:
    p, mask, k, e = scene(batch, frames, points, device)
    maps_bytes = batch * frames * VIEWS * HEIGHT * WIDTH * 4
    moved = maps_bytes + p.numel() * 4 + e.numel() * 4
    grad = torch.randn(batch, frames, VIEWS, HEIGHT, WIDTH, device=device)
    written = torch.empty_like(grad)
    floors = {False: ("zeros", time_it(lambda: torch.zeros_like(grad))),
              True: ("copy", time_it(lambda: written.copy_(grad)))}
    rows = []
    # fwd+bwd also reads the upstream gradient maps once.
    for pass_, backward, nbytes in (("fwd", False, moved), ("fwd+bwd points", True, moved + maps_bytes)):
        if backward and not with_backward:
            continue
        q = p.detach().requires_grad_(backward)
        ms = {}
        for name, fn in (("aim", render_value_maps), ("ref", render_value_maps_reference)):
            if name == "ref" and not with_reference:
                ms[name] = float("nan")
                continue

            def step(fn=fn):
                q.grad = None
                out = fn(q, mask, k, e, HEIGHT, WIDTH, **BLOB)
                if backward:
                    out.backward(grad)

            ms[name] = time_it(step)
        rows.append(Row("render", pass_, batch, frames, points, ms["aim"], ms["ref"], nbytes, *floors[backward]))
    return rows


def neighbour_indices(maps: torch.Tensor, p: torch.Tensor, k: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Flat indices into contiguous ``maps`` of the 4 bilinear neighbours of every valid sample
    (neighbours past the last row or column clamped onto it)."""
    u, v, _, in_front = project_points_reference(p, k, e)  # (B, T, P, V)
    valid = in_front & (u >= 0) & (u <= WIDTH - 1) & (v >= 0) & (v <= HEIGHT - 1)
    b, t, _, view = valid.nonzero(as_tuple=True)
    x0, y0 = u[valid].floor().long(), v[valid].floor().long()
    image = ((b * maps.shape[1] + t) * maps.shape[2] + view) * HEIGHT * WIDTH
    xs = torch.stack([x0, (x0 + 1).clamp_max(WIDTH - 1)])
    ys = torch.stack([y0, (y0 + 1).clamp_max(HEIGHT - 1)])
    return (image + ys[:, None] * WIDTH + xs[None, :]).permute(2, 0, 1).reshape(-1)


def bench_sample(batch, frames, points, device, time_it, with_reference) -> list[Row]:
    p, _, k, e = scene(batch, frames, points, device)
    maps = torch.rand(batch, frames, VIEWS, HEIGHT, WIDTH, device=device)
    samples = batch * frames * points * VIEWS
    inputs = (p.numel() + e.numel() + k.numel()) * 4
    fwd_bytes = inputs + samples * (4 * 4 + 4 + 1)  # 4 neighbours read, value + valid written
    bwd_points = fwd_bytes + samples * (4 * 4 + 4) + p.numel() * 4  # neighbours again, grad_values, grad_points
    bwd_maps = bwd_points + maps.numel() * 4  # the whole gradient map is written
    grad = torch.randn(batch, frames, points, VIEWS, device=device)
    flat, neighbours = maps.view(-1), neighbour_indices(maps, p, k, e)
    gather_ms = time_it(lambda: flat.index_select(0, neighbours))
    zeros_ms = time_it(lambda: torch.zeros_like(maps))
    rows = []
    impls = {"aim": sample_value_maps, "ref": sample_value_maps_reference}
    for pass_, wrt, moved in (("fwd", (), fwd_bytes), ("fwd+bwd points", ("points",), bwd_points),
                              ("fwd+bwd maps+points", ("maps", "points"), bwd_maps)):
        m = maps.detach().requires_grad_("maps" in wrt)
        q = p.detach().requires_grad_("points" in wrt)
        ms = {}
        for name, fn in impls.items():
            if name == "ref" and not with_reference:
                ms[name] = float("nan")
                continue

            def step(fn=fn):
                m.grad = q.grad = None
                values, _ = fn(m, q, k, e)
                if wrt:
                    values.backward(grad)

            ms[name] = time_it(step)
        floor = ("zeros", zeros_ms) if "maps" in wrt else ("gather", gather_ms)
        rows.append(Row("sample", pass_, batch, frames, points, ms["aim"], ms["ref"], moved, *floor))
    return rows


def render_table(rows: list[Row], copy_gbs: float) -> str:
    lines = [
        ("| op | pass | B | T | P | aim (ms) | reference (ms) | speed-up | aim GB/s | % of copy BW | floor (ms) | "
         "aim / floor | ref / floor |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        gbs = r.bytes_ / r.aim_ms / 1e6
        floor = (f"{r.floor} {r.floor_ms:.3f} | {r.aim_ms / r.floor_ms:.1f}x | {r.ref_ms / r.floor_ms:.1f}x" if r.floor
                 else "- | - | -")
        lines.append(
            f"| {r.op} | {r.pass_} | {r.batch} | {r.frames} | {r.points} | {r.aim_ms:.2f} | {r.ref_ms:.2f} | "
            f"{r.ref_ms / r.aim_ms:.1f}x | {gbs:.1f} | {gbs / copy_gbs:.0%} | {floor} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--no-reference", action="store_true", help="time aim only (the reference render is slow)")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (never recorded)")
    parser.add_argument("--ops", nargs="+", choices=("render", "sample"), default=("render", "sample"),
                        help="which ops to time (sampling alone takes seconds, the render twin minutes)")
    args = parser.parse_args()

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    time_it = timer(device, args.repeats or (20 if gpu else 5))
    torch.manual_seed(0)
    # (batch, frames, points): annotation renders 2-8 contact points per frame; rewards sample both
    # arms' targets (2) or a whole chunk of them (64).
    if args.quick:
        render_sizes, sample_sizes = [(2, 4, 4)], [(2, 4, 2), (2, 4, 64)]
    else:
        render_sizes = [(8, 8, 2), (8, 16, 8)] + ([(64, 32, 8)] if gpu else [])
        sample_sizes = [(8, 16, 2), (8, 32, 64), (64, 8, 2)] + ([(64, 32, 64)] if gpu else [])
    render_sizes = render_sizes if "render" in args.ops else []
    sample_sizes = sample_sizes if "sample" in args.ops else []

    print(f"# value-map benchmark: {environment(device)}", file=sys.stderr)
    copy_gbs = copy_bandwidth(device, time_it)
    print(f"  copy bandwidth {copy_gbs:.1f} GB/s", file=sys.stderr, flush=True)
    rows: list[Row] = []
    for i, size in enumerate(render_sizes):
        new = bench_render(*size, device, time_it, not args.no_reference, with_backward=i == 0)
        rows += new
        print(f"  render {size}: " + ", ".join(f"{r.pass_} {r.aim_ms:.2f} vs {r.ref_ms:.2f} ms" for r in new),
              file=sys.stderr, flush=True)
    for size in sample_sizes:
        rows += bench_sample(*size, device, time_it, not args.no_reference)
        print(f"  sample {size}: " + ", ".join(f"{r.pass_} {r.aim_ms:.2f} vs {r.ref_ms:.2f} ms" for r in rows[-3:]),
              file=sys.stderr, flush=True)

    title = (
        f"### value maps, float32, {VIEWS} views x {HEIGHT}x{WIDTH}, copy bandwidth {copy_gbs:.1f} GB/s "
        f"(measured once per run)\n{environment(device)}\n"
    )
    table = render_table(rows, copy_gbs)
    print(title + "\n" + table)
    if not args.no_record and not args.quick:
        record(title, table)


if __name__ == "__main__":
    main()
