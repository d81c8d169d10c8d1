"""Benchmark: the parts of a CPU training step that aim does its own way, each against what it replaces.

* ``rope``:  aim.model.rope.apply_rotary (one complex product) against the real-arithmetic
  rotation it replaced (four products and a stack), forward + backward on a (8, 576, 4, 16)
  query: the demo's tiny model, one branch, one layer.
* ``adamw``: aim's optimiser (fused AdamW) against PyTorch's CPU default (a loop per tensor) and
  foreach, on the tiny model's parameters.
* ``host memory``: a whole tiny-model training step (the demo's clip: 2 chunks, one 12 x 8 frame
  per chunk, 8 actions per frame; batch 8; forward, backward, AdamW) in a fresh process with and
  without aim.process_settings.retain_freed_memory: median step time and minor page faults per step.

One thread, as the demo trains. Prints a table and appends it with the machine, versions and date
to benchmarks/RESULTS.md (``--no-record`` to skip).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from common import environment, median_ms, record
from model import clip_inputs

from aim.model import AIMTransformer, preset
from aim.model.clip import ClipStructure
from aim.model.flow_matching import FlowMatchingConfig, training_loss
from aim.model.rope import apply_rotary
from aim.runtime.optim import make_optimizer
from aim.train.config import OptimConfig
from aim.process_settings import retain_freed_memory

DEMO_STRUCTURE = ClipStructure(num_chunks=2, observation_frames=1, frames_per_chunk=1, actions_per_frame=8)
DEMO_GRID = (8, 12)


def real_rotation(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The reference: pairs (x[2i], x[2i+1]) turned with real arithmetic."""
    pairs = x.float().unflatten(-1, (-1, 2))
    x1, x2 = pairs[..., 0], pairs[..., 1]
    cos, sin = cos[:, None], sin[:, None]
    return torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2).type_as(x)


def rope_rows(repeats: int) -> list[tuple[str, str, str]]:
    x = torch.randn(8, 576, 4, 16, requires_grad=True)
    angles = torch.rand(576, 8) * 6.0
    rotations = torch.polar(torch.ones_like(angles), angles)
    cos, sin = angles.cos(), angles.sin()
    torch.testing.assert_close(apply_rotary(x, rotations), real_rotation(x, cos, sin))
    grad = torch.randn_like(x)
    timed = {
        "complex product (aim)": lambda: apply_rotary(x, rotations).backward(grad),
        "real products + stack (reference)": lambda: real_rotation(x, cos, sin).backward(grad),
    }
    return [("rope fwd+bwd", name, f"{median_ms(fn, torch.device('cpu'), 3, repeats):.2f} ms")
            for name, fn in timed.items()]


def adamw_rows(repeats: int) -> list[tuple[str, str, str]]:
    params = list(AIMTransformer(preset("tiny")).parameters())
    for p in params:
        p.grad = torch.randn_like(p)
    config = OptimConfig()
    optimizers = {
        "fused (aim)": make_optimizer(params, config),
        "per tensor (PyTorch's CPU default)": torch.optim.AdamW(params, lr=config.lr, betas=tuple(config.betas),
                                                                weight_decay=config.weight_decay),
        "foreach": torch.optim.AdamW(params, lr=config.lr, betas=tuple(config.betas),
                                     weight_decay=config.weight_decay, foreach=True),
    }
    assert optimizers["fused (aim)"].defaults["fused"]
    label = f"adamw step ({len(params)} tensors)"
    return [(label, name, f"{median_ms(opt.step, torch.device('cpu'), 3, repeats):.2f} ms")
            for name, opt in optimizers.items()]


def train_step_child(retain: bool, steps: int) -> dict:
    """In a fresh process: median step time and minor page faults per step of the tiny model."""
    torch.set_num_threads(1)
    if retain and not retain_freed_memory():
        return {"unsupported": True}
    torch.manual_seed(0)
    model = AIMTransformer(preset("tiny"))
    clip = clip_inputs(model, DEMO_STRUCTURE, 8, DEMO_GRID, torch.device("cpu"), torch.float32)
    optimizer = make_optimizer(model.parameters(), OptimConfig())
    flow = FlowMatchingConfig()

    def step():
        loss = training_loss(model, DEMO_STRUCTURE, *clip, flow)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    times, faults = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append((time.perf_counter() - started) * 1e3)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {"ms": sorted(times)[len(times) // 2], "faults": faults / steps}


def host_memory_rows(steps: int) -> list[tuple[str, str, str]]:
    rows = []
    for mode, name in (("retain", "freed memory kept (aim)"), ("default", "glibc's default (reference)")):
        out = subprocess.run([sys.executable, __file__, "--child", mode, "--steps", str(steps)],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if result.get("unsupported"):
            return [("train step", "freed memory kept", "not available with this C library")]
        rows.append(("tiny train step", name, f"{result['ms']:.1f} ms, {result['faults']:,.0f} page faults"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per micro-benchmark row")
    parser.add_argument("--steps", type=int, default=30, help="timed training steps per process")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--child", choices=("retain", "default"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(train_step_child(args.child == "retain", args.steps)))
        return
    torch.set_num_threads(1)
    rows = rope_rows(args.repeats) + adamw_rows(args.repeats) + host_memory_rows(args.steps)
    table = "\n".join(["| part | implementation | median |", "|---|---|---:|"] +
                      [f"| {part} | {impl} | {value} |" for part, impl, value in rows])
    title = f"### training-step parts, float32, one thread (`benchmarks/train_step.py`)\n{environment(torch.device('cpu'))}\n"
    print(title + "\n" + table)
    if not args.no_record:
        record(title, table)


if __name__ == "__main__":
    main()
