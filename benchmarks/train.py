"""Benchmark: the whole Stage-I training loop (``aim train``), per attention backend and process count.

Every row is a real ``aim train`` run in a fresh process (``torchrun`` for several processes) on
the same synthetic dataset (random views and value maps, VP9 videos as ``aim collect`` writes
them), read back from the run's metrics file: optimiser steps/s and tokens/s (median over the
steps after ``--warmup``), the fraction of step time spent waiting for data, and peak memory (CPU:
the process's peak resident set; GPU: PyTorch's peak allocation).

CPU default: the ``tiny`` preset (pixel tokenizer, 16 x 16 head view) with the native attention
and with SDPA, on 1 process (all cores, and one thread) and on 2 DDP processes (cores split between them). FlexAttention
has no backward on CPU (torch 2.13), so it cannot train here; its GPU
training step is measured by benchmarks/model.py. GPU (``--device cuda --preset aim-1b``): the
1.5B preset on 128 x 128 views through a 4 x 4 pixel tokenizer (48 latent channels, as the
preset expects, so no VAE weights are needed), bf16 autocast, activation checkpointing, once per
attention backend that can run it here (native, flash, flex, xformers, sdpa; ``--backends`` picks,
the others are printed with the reason they cannot run).

Prints a table and appends it with device, versions and date to benchmarks/RESULTS.md
(``--no-record`` to skip).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from common import environment, record

import aim
from aim.data import DatasetWriter, Episode
from aim.model import preset as model_preset
from aim.ops import AttentionBackend
from aim.runtime.monitor import read_metrics
from model import runnable_backends

CAMERAS = ("head", "left_wrist", "right_wrist")


@dataclass
class Row:
    preset: str
    attention: str
    processes: int
    threads: int
    steps_per_s: float
    tokens_per_s: float
    data_wait: float
    peak_gib: float


def synthetic_dataset(root: Path, episodes: int, length: int, size: int, seed: int = 0) -> Path:
    """Random views, value maps and actions; smooth enough for the VP9 encoder to be realistic."""
    rng = np.random.default_rng(seed)
    intrinsics = np.array([[size, 0, (size - 1) / 2], [0, size, (size - 1) / 2], [0, 0, 1]], dtype=np.float64)
    with DatasetWriter(root, 20) as writer:
        for e in range(episodes):
            base = rng.integers(0, 256, (1, size, size, 3))
            images = {c: np.clip(base + rng.integers(-20, 20, (length, size, size, 3)), 0, 255).astype(np.uint8)
                      for c in CAMERAS}
            writer.add_episode(Episode(
                task=f"task-{e % 2}", instruction=f"task {e % 2}", images=images,
                value_maps={c: rng.random((length, size, size)).astype(np.float32) for c in CAMERAS},
                actions=rng.normal(size=(length, 4)).astype(np.float32),
                proprio=rng.normal(size=(length, 4)).astype(np.float32),
                intrinsics={c: intrinsics for c in CAMERAS},
                extrinsics={c: np.tile(np.eye(4), (length, 1, 1)) for c in CAMERAS},
            ))
    return root


def run(run_dir: Path, overrides: list[str], processes: int, threads: int) -> None:
    python_dir = str(Path(aim.__file__).resolve().parents[1])
    python_path = os.pathsep.join(filter(None, [python_dir, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "OMP_NUM_THREADS": str(threads)}
    launcher = [sys.executable, "-m", "aim.cli"]
    if processes > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                    "-m", "aim.cli"]
    done = subprocess.run([*launcher, "train", str(run_dir), *overrides], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode:
        raise RuntimeError(f"aim train failed ({' '.join(overrides)}):\n{done.stderr[-3000:]}")


def summarise(run_dir: Path, warmup: int, processes: int) -> tuple[float, float, float, float]:
    metrics = read_metrics(run_dir)[warmup:]
    if not metrics:
        raise RuntimeError(f"{run_dir}: no steps after the {warmup} warm-up steps; raise --steps")
    steps_per_s = statistics.median(m["throughput/steps_per_s"] for m in metrics)
    tokens_per_s = statistics.median(m["throughput/tokens_per_s"] for m in metrics)
    waited = sum(m["time/data_wait_s"] for m in metrics)
    elapsed = sum(1 / m["throughput/steps_per_s"] for m in metrics)
    return steps_per_s, tokens_per_s, waited / elapsed, max(m["memory/peak_gib"] for m in metrics)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--preset", default=None, help="model preset (default: tiny on cpu, aim-1b on cuda)")
    parser.add_argument("--steps", type=int, default=None, help="optimiser steps per run (default: 25 cpu, 30 cuda)")
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the medians")
    parser.add_argument("--batch-size", type=int, default=None, help="global clips per step (default: 8 cpu, 4 cuda)")
    parser.add_argument("--backends", nargs="+", choices=[b.value for b in AttentionBackend], default=None,
                        help="GPU: attention backends to train with (default: every one that can run the preset)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit(f"benchmarks/train.py: --device cuda, but PyTorch sees no CUDA device (torch {torch.__version__}, "
                 f"CUDA {torch.version.cuda}); run it on a GPU machine or use --device cpu")
    cuda = args.device == "cuda"
    preset = args.preset or ("aim-1b" if cuda else "tiny")
    steps = args.steps or (30 if cuda else 25)
    batch = args.batch_size or (4 if cuda else 8)
    cores = os.cpu_count() or 1
    if cuda:
        size, view, spatial, extra = 128, 128, 4, ["model.gradient_checkpointing=true", "train.precision=bf16"]
        names = args.backends or [b.value for b in AttentionBackend]
        head_dim = model_preset(preset).head_dim
        plans = [(b, 1, cores) for b in runnable_backends(names, torch.device("cuda"), torch.bfloat16, head_dim)]
    else:
        size, view, spatial, extra = 64, 16, 2, []
        # One process with all cores and with one thread: on a shared machine, OpenMP threads that
        # wait for each other can cost more than they bring; 2 processes get the cores split.
        plans = [("native", 1, cores), ("native", 1, 1), ("sdpa", 1, cores), ("native", 2, max(cores // 2, 1))]
    rows = []
    with tempfile.TemporaryDirectory(prefix="aim-bench-train-") as tmp:
        data = synthetic_dataset(Path(tmp) / "data", episodes=4, length=60, size=size)
        for attention, processes, threads in plans:
            micro = batch // processes
            overrides = [
                f"data.root={data}", f"model.preset={preset}", "tokenizer.kind=pixel", f"tokenizer.spatial={spatial}",
                f"data.view_size=[{view}, {view}]", "data.cameras=[head, left_wrist, right_wrist]",
                "data.cache_clips=true", f"train.steps={steps}", f"train.batch_size={batch}",
                f"train.micro_batch_size={micro}", f"train.device={args.device}",
                f"train.attention_backend={attention}", "schedule.warmup_steps=5", f"checkpoint.every={steps}",
                "log.sample_every=0", "log.progress=false", *extra,
            ]
            run_dir = Path(tmp) / f"{attention}-{processes}x{threads}"
            run(run_dir, overrides, processes, threads)
            rows.append(Row(preset, attention, processes, threads, *summarise(run_dir, args.warmup, processes)))
            print(rows[-1], flush=True)
    table = [
        "| preset | attention | processes x threads | steps/s | tokens/s (all) | tokens/s per process | data wait | peak memory per process (GiB) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
        *(f"| {r.preset} | {r.attention} | {r.processes} x {r.threads} | {r.steps_per_s:.3f} | {r.tokens_per_s:,.0f} | "
          f"{r.tokens_per_s / r.processes:,.0f} | {100 * r.data_wait:.1f}% | {r.peak_gib:.2f} |" for r in rows),
    ]
    note = (f"global batch {batch} clips, {steps} steps ({args.warmup} warm-up left out), "
            f"{'FlexAttention: no CPU backward in torch 2.13' if not cuda else 'bf16, activation checkpointing'}")
    text = "\n".join(table) + f"\n\n{note}\n"
    print(text)
    if not args.no_record:
        device = torch.device("cuda" if cuda else "cpu")
        record(f"## Stage-I training loop (`benchmarks/train.py --device {args.device}`)\n{environment(device)}", text)


if __name__ == "__main__":
    main()
