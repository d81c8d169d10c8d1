"""Benchmark: AIM training steps and chunk inference, per preset and attention backend.

For each preset, on one teacher-forcing clip per sample (the layout of docs/method.md §5), measures in the same run:

* training step (flow-matching loss, backward, AdamW step) time, tokens/s and peak memory, with
  the shared attention run by each backend of aim.ops (``AIM_ATTENTION_BACKEND``): ``native``
  (aim's C++/CUDA kernels), ``flash`` (FlashAttention-4 on the same block lists), ``flex``
  (FlexAttention, compiled, identical BlockMask; GPU only, as it has no CPU backward),
  ``xformers`` (tensor bias) and ``sdpa`` (dense mask); a backend that cannot run the preset
  (package, GPU architecture, head_dim) is skipped with the reason printed. The text
  cross-attention follows the same setting (FlashAttention, xformers or SDPA);
* per-chunk inference latency of :class:`aim.model.sampler.Rollout` with the KV cache and
  without (full recomputation at every denoising step).

CPU default: the ``tiny`` preset in float32. GPU (``--device cuda``): ``aim-1b`` and ``wan22-5b``
in bfloat16 with activation checkpointing (bf16 AdamW states keep the 5B preset within 80 GB).
Prints a table and appends it with device, versions and date to benchmarks/RESULTS.md
(``--no-record`` to skip).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from dataclasses import dataclass

import torch

from aim.model import AIMTransformer, count_parameters, preset
from aim.model.clip import ClipStructure
from aim.model.flow_matching import FlowMatchingConfig, training_loss
from aim.model.sampler import Rollout, SamplerConfig
from aim.ops import AttentionBackend
from aim.ops.backend import ENV_VAR, AttentionInput, detect_platform, why_not
from common import environment, median_ms, record


@dataclass
class Row:
    preset: str
    params: float
    tokens: int
    what: str
    impl: str
    ms: float
    tokens_per_s: float | None
    peak_gib: float | None


@contextlib.contextmanager
def attention_backend(impl: str):
    """Runs the model's attention (cached and uncached passes, and the cross-attention) with ``impl``."""
    previous = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = impl
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = previous


def runnable_backends(names: list[str], device: torch.device, dtype: torch.dtype, head_dim: int) -> list[str]:
    """The backends among ``names`` that can train at ``head_dim`` here; the others are named with why not."""
    kept = []
    for name in names:
        problem = why_not(AttentionBackend(name), AttentionInput(device.type, dtype, head_dim, True),
                          detect_platform(device))
        if problem:
            print(f"  {name}: skipped ({problem})", file=sys.stderr)
        else:
            kept.append(name)
    return kept


def clip_inputs(model: AIMTransformer, structure: ClipStructure, batch: int, grid: tuple[int, int], device, dtype):
    c = model.config
    g = torch.Generator().manual_seed(0)
    make = lambda *shape: torch.randn(*shape, generator=g).to(device, dtype)  # noqa: E731
    video = make(batch, c.latent_channels, structure.total_frames, *grid)
    value = make(batch, c.latent_channels, structure.future_frames, *grid)
    actions = make(batch, structure.future_frames * structure.actions_per_frame, c.action_channels)
    text = make(batch, 16, c.text_dim)
    return video, value, actions, text


def sequence_tokens(model: AIMTransformer, structure: ClipStructure, grid: tuple[int, int]) -> int:
    _, p_h, p_w = model.config.patch_size
    per_frame = (grid[0] // p_h) * (grid[1] // p_w)
    video_tokens = per_frame * (structure.total_frames + 2 * structure.future_frames - structure.frames_per_chunk)
    return video_tokens + (2 * structure.num_chunks - 1) * structure.actions_per_chunk


def bench_preset(name: str, args, device: torch.device, dtype: torch.dtype) -> list[Row]:
    config = preset(name)
    params = count_parameters(config)["total"] / 1e9
    with torch.device(device):
        model = AIMTransformer(config).to(dtype)
    model.gradient_checkpointing = args.checkpointing
    structure = ClipStructure(args.chunks, 1, args.frames_per_chunk, args.actions_per_frame)
    grid = tuple(args.grid) if args.grid else ((30, 40) if device.type == "cuda" else (8, 8))
    clip = clip_inputs(model, structure, args.batch, grid, device, dtype)
    tokens = sequence_tokens(model, structure, grid)
    # bf16 AdamW states on GPU: with fp32 states the 5B preset (22 GB of bf16 weights and grads)
    # would not fit 80 GB next to its activations.
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.95), weight_decay=0.1)
    fm = FlowMatchingConfig()

    def step():
        loss = training_loss(model, structure, *clip, fm)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        optimizer.step()

    rows = []
    impls = runnable_backends(args.backends or [b.value for b in AttentionBackend], device, dtype, config.head_dim)
    for impl in impls:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with attention_backend(impl):
            ms = median_ms(step, device, args.warmup, args.repeats)
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        rows.append(Row(name, params, tokens, "train step", impl, ms, args.batch * tokens / ms * 1e3, peak))
        print(f"  {name} train {impl}: {ms:.1f} ms", file=sys.stderr)

    optimizer.zero_grad(set_to_none=True)
    model.eval()
    sampler = SamplerConfig(video_steps=args.video_steps, action_steps=args.action_steps)
    video, _, actions, text = clip
    for impl in impls:
        for use_cache in (True, False):
            with attention_backend(impl):
                rollout = second_chunk_rollout(model, structure, sampler, use_cache, video, actions, text)
                ms = median_ms(rollout.predict_chunk, device, 0, args.inference_repeats)
            label = f"{impl}, {'KV cache' if use_cache else 'recompute'}"
            rows.append(Row(name, params, tokens, f"2nd-chunk inference ({args.video_steps}+{args.action_steps} steps)",
                            label, ms, None, None))
            print(f"  {name} inference {label}: {ms:.1f} ms", file=sys.stderr)
    return rows


def second_chunk_rollout(model, structure, sampler, use_cache, video, actions, text) -> Rollout:
    """A rollout about to predict its second chunk: the first observation, one predicted chunk,
    then that chunk's frames and actions observed as executed."""
    rollout = Rollout(model, structure, text, sampler, use_cache=use_cache)
    rollout.observe(video[:, :, :1])
    rollout.predict_chunk()
    rollout.observe(video[:, :, 1 : 1 + structure.frames_per_chunk], actions[:, : structure.actions_per_chunk])
    return rollout


def render(rows: list[Row]) -> str:
    lines = [
        "| preset | params | clip tokens | measure | impl | time (ms) | tokens/s | peak GPU memory (GiB) |",
        "|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        tps = f"{r.tokens_per_s:,.0f}" if r.tokens_per_s is not None else "-"
        peak = f"{r.peak_gib:.1f}" if r.peak_gib is not None else "-"
        params = f"{r.params:.2f} B" if r.params >= 0.1 else f"{r.params * 1e3:.2f} M"
        lines.append(f"| {r.preset} | {params} | {r.tokens} | {r.what} | {r.impl} | {r.ms:.1f} | {tps} | {peak} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--presets", nargs="+", default=None)
    parser.add_argument("--backends", nargs="+", choices=[b.value for b in AttentionBackend], default=None,
                        help="default: every backend that can run the preset here")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--chunks", type=int, default=2)
    parser.add_argument("--frames-per-chunk", type=int, default=2)
    parser.add_argument("--actions-per-frame", type=int, default=16)
    parser.add_argument("--grid", type=int, nargs=2, default=None, help="latent height, width")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--video-steps", type=int, default=5)
    parser.add_argument("--action-steps", type=int, default=5)
    parser.add_argument("--inference-repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()

    device = torch.device(args.device)
    gpu = device.type == "cuda"
    dtype = torch.bfloat16 if gpu else torch.float32
    args.checkpointing = gpu
    presets = args.presets or (["aim-1b", "wan22-5b"] if gpu else ["tiny"])

    print(f"# model benchmark: {environment(device)}", file=sys.stderr)
    rows: list[Row] = []
    for name in presets:
        rows += bench_preset(name, args, device, dtype)
        if gpu:
            torch.cuda.empty_cache()
    s = args
    title = (
        f"### AIM model, {str(dtype).removeprefix('torch.')}, batch {s.batch}, {s.chunks} chunks x {s.frames_per_chunk} "
        f"latent frames x {s.actions_per_frame} actions, activation checkpointing {'on' if s.checkpointing else 'off'}\n"
        f"{environment(device)}\n"
    )
    table = render(rows)
    print(title + "\n" + table)
    if not args.no_record:
        record(title, table)


if __name__ == "__main__":
    main()
