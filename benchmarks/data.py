"""Benchmark: expert data collection and the clip loader, and whether the loader keeps ahead of training.

For each view size (quick: 32 x 32; full: 32 x 32 and the spec's 256 x 320), in the same run:

* collection: Meta-World pick-place-v3 expert episodes with value-map labels, three views
  (quick: one; ``aim.sim.collect.rollout``): seconds per episode (wall and CPU; the CPU time includes
  MuJoCo's EGL software-renderer threads, so 60 / CPU seconds is episodes per minute per core)
  and single-view renders per second (``MetaWorldEnv.render``, all views, per view);
* loader: a dataset of those episodes (default VP9 codec, several episodes per mp4) read by
  ``ClipDataset`` in one process, per available video backend: clips/s and decoded frames/s
  (frames of every view and value map a clip needs);
* frames/s needed vs delivered. 32 x 32: a training step of the ``tiny`` preset on the CPU
  (flow-matching loss, backward, AdamW) on a clip shaped like the loader's item, tokenized with
  ``PixelPatchTokenizer``, measured here. 256 x 320: the 5B (``wan22-5b``) GPU training step
  recorded in benchmarks/RESULTS.md by benchmarks/model.py (its fastest row; or ``--gpu-step-ms``),
  whose clip is 1 observation + 2 chunks x 2 latent frames; the Wan2.2 VAE packs 4 video frames
  into a latent frame after the first (1 + 4 k frames), so that clip needs 17 canvas frames.
  Needed = decoded frames per clip / step time; the loader keeps ahead when delivered / needed > 1
  (one loader process; DataLoader workers multiply what is delivered).

Prints a table and appends it with device, versions and date to benchmarks/RESULTS.md
(``--no-record`` to skip). ``--quick`` (32 x 32, one view, one episode, few clips) runs in under a
minute on a quiet 2-core machine: rendering (about 0.1 s a view on the CPU) dominates.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from common import RESULTS, environment, median_ms, record

from aim.data import (
    CanvasLayout,
    ClipDataset,
    DatasetWriter,
    ViewSlot,
    available_backends,
    video_backend,
)
from aim.model import AIMTransformer, preset
from aim.model.clip import ClipStructure
from aim.model.flow_matching import FlowMatchingConfig, training_loss
from aim.model.video_tokenizers import PixelPatchTokenizer
from aim.process_settings import use_offscreen_rendering
from aim.sim.collect import DEFAULT_CAMERAS, FPS, CollectSettings, _environment, expert_episode

TASK = "pick-place-v3"
CAMERAS = DEFAULT_CAMERAS  # two fixed views and the one on the hand, as aim collect
STRUCTURE = ClipStructure(num_chunks=2, observation_frames=1, frames_per_chunk=2, actions_per_frame=4)
WAN_TEMPORAL = 4  # Wan2.2 VAE: 4 video frames per latent frame after the first (diffusers AutoencoderKLWan)
CPU = torch.device("cpu")


@dataclass
class Row:
    size: str
    measure: str
    what: str
    value: str


def views(cameras: tuple[str, ...]) -> str:
    return f"{len(cameras)} view{'s' if len(cameras) > 1 else ''}"


def layout_for(cameras: tuple[str, ...], size: tuple[int, int]) -> CanvasLayout:
    """The paper's head-and-wrists canvas for three views; views side by side otherwise."""
    if len(cameras) == 3:
        return CanvasLayout.head_and_wrists(*size, head=cameras[0], left=cameras[1], right=cameras[2])
    return CanvasLayout(size[0], size[1] * len(cameras), tuple(ViewSlot(c, 0, i * size[1]) for i, c in enumerate(cameras)))


def collection_rows(cameras: tuple[str, ...], size: tuple[int, int], episodes: int) -> tuple[list[Row], list]:
    settings = CollectSettings(cameras=cameras, height=size[0], width=size[1])
    env = _environment(TASK, settings)  # built once per process, outside the timing
    env.reset(0)
    render_ms = median_ms(env.render, CPU, 1, 5)
    collected, seeds = [], iter(range(1000))
    cpu0 = time.process_time()
    ms = median_ms(lambda: collected.append(expert_episode(TASK, next(seeds), settings)), CPU, 0, episodes)
    cpu_s = (time.process_time() - cpu0) / episodes
    collected = [e for e in collected if e is not None]
    label = f"{size[0]}x{size[1]}"
    steps = np.mean([e.length for e in collected]) if collected else float("nan")
    rows = [
        Row(label, "collection", f"{TASK}, {views(cameras)}, {steps:.0f} steps",
            f"{ms / 1e3:.1f} s/episode wall, {cpu_s:.1f} s CPU = {60 / cpu_s:.2f} episodes/min per core"),
        Row(label, "collection", "renders (one view)", f"{len(cameras) * 1e3 / render_ms:.1f} renders/s"),
    ]
    return rows, collected


def write_dataset(root: Path, episodes: list, count: int) -> None:
    with DatasetWriter(root, FPS, robot_type="sawyer") as writer:
        for i in range(count):
            writer.add_episode(episodes[i % len(episodes)])


def loader_rows(root: Path, layout: CanvasLayout, size: tuple[int, int], frames_per_clip: int, stride: int,
                clips: int) -> tuple[list[Row], dict]:
    """Per available backend: clips/s and decoded frames/s; also {backend: frames/s}."""
    rows, delivered = [], {}
    for name, problem in available_backends().items():
        label = f"{size[0]}x{size[1]}"
        if problem:
            rows.append(Row(label, "loader", name, f"not available: {problem[:80]}"))
            continue
        backend = video_backend(name)
        dataset = ClipDataset(root, frames_per_clip, frame_stride=stride, layout=layout, video_backend=backend)
        order = iter(np.random.default_rng(0).permutation(len(dataset)).tolist() * (clips + 2))
        ms = median_ms(lambda dataset=dataset, order=order: dataset[next(order)], CPU, 1, clips)
        frames = frames_per_clip * len(dataset.reader.video_keys)
        delivered[backend.name] = frames * 1e3 / ms
        rows.append(Row(label, "loader", f"{backend.name}, clips of {frames_per_clip} frames x "
                        f"{len(dataset.reader.video_keys)} videos",
                        f"{1e3 / ms:.1f} clips/s, {delivered[backend.name]:,.0f} decoded frames/s"))
    return rows, delivered


def tiny_step_ms(root: Path, layout: CanvasLayout) -> float:
    """Median ms of a tiny-preset training step on one loader clip, tokenized by PixelPatchTokenizer."""
    item = ClipDataset(root, STRUCTURE.total_frames, frame_stride=STRUCTURE.actions_per_frame, layout=layout)[0]
    tokenizer = PixelPatchTokenizer(spatial=2)
    video = tokenizer.encode(item["frames"].permute(1, 0, 2, 3)[None])
    value = tokenizer.encode(item["value_maps"].permute(1, 0, 2, 3)[None])[:, :, STRUCTURE.observation_frames:]
    actions = item["actions"][None, STRUCTURE.actions_per_frame:]  # the actions after the observed frame
    config = preset("tiny")
    model = AIMTransformer(config)
    text = torch.randn(1, 16, config.text_dim, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        loss = training_loss(model, STRUCTURE, video, value, actions, text, FlowMatchingConfig())["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return median_ms(step, CPU, 1, 3)


def recorded_5b_step_ms(results: Path) -> tuple[float, str]:
    """The fastest ``wan22-5b`` train-step row of benchmarks/model.py's tables in RESULTS.md."""
    rows = re.findall(r"^\| wan22-5b \|[^|\n]*\|[^|\n]*\| train step \| (\w+) \| ([\d.]+) \|", results.read_text(), re.MULTILINE)
    if not rows:
        raise SystemExit(f"{results}: no wan22-5b train step row; run benchmarks/model.py --device cuda or pass --gpu-step-ms")
    impl, ms = min(rows, key=lambda r: float(r[1]))
    return float(ms), f"{results.name}, wan22-5b train step, {impl}"


def needed_row(label: str, what: str, step_ms: float, frames_per_clip: int, delivered: dict) -> Row:
    needed = frames_per_clip * 1e3 / step_ms
    ratios = ", ".join(f"{name} {fps / needed:.1f}x" for name, fps in delivered.items())
    return Row(label, "needed vs delivered", f"{what}: {step_ms:.0f} ms/step",
               f"{needed:,.0f} frames/s needed; delivered/needed: {ratios}")


def render(rows: list[Row]) -> str:
    lines = ["| views | measure | what | result |", "|---|---|---|---|"]
    lines += [f"| {r.size} | {r.measure} | {r.what} | {r.value} |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="32x32 only, one episode, few clips (under a minute)")
    parser.add_argument("--episodes", type=int, default=2, help="episodes collected per size")
    parser.add_argument("--dataset-episodes", type=int, default=12, help="episodes in the loader's dataset")
    parser.add_argument("--clips", type=int, default=20, help="clips timed per backend")
    parser.add_argument("--gpu-step-ms", type=float, help="5B step time (default: read from RESULTS.md)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to read the 5B step time")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    cameras = CAMERAS[:1] if args.quick else CAMERAS
    if args.quick:
        args.episodes, args.dataset_episodes, args.clips = 1, 3, 5
    sizes = [(32, 32)] if args.quick else [(32, 32), (256, 320)]

    print(f"# data benchmark: {environment(CPU)}", file=sys.stderr)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            label = f"{size[0]}x{size[1]}"
            collected_rows, episodes = collection_rows(cameras, size, args.episodes)
            rows += collected_rows
            print(f"  {label}: collected {len(episodes)} episodes", file=sys.stderr)
            if not episodes:
                raise SystemExit(f"{label}: the expert failed every episode; nothing to load")
            root, layout = Path(tmp) / label, layout_for(cameras, size)
            write_dataset(root, episodes, args.dataset_episodes)
            if size == (32, 32):
                frames, stride = STRUCTURE.total_frames, STRUCTURE.actions_per_frame
                step_ms, what = tiny_step_ms(root, layout), "tiny preset, CPU, measured in this run"
            else:
                # 17 canvas frames at stride 2 (34 steps) fit the expert's ~60-step episodes.
                frames, stride = 1 + WAN_TEMPORAL * STRUCTURE.future_frames, 2
                step_ms, what = ((args.gpu_step_ms, "wan22-5b, GPU, --gpu-step-ms") if args.gpu_step_ms
                                 else recorded_5b_step_ms(args.results))
            loaded, delivered = loader_rows(root, layout, size, frames, stride, args.clips)
            rows += loaded
            videos = len(cameras) * 2  # views and their value maps
            rows.append(needed_row(label, what, step_ms, frames * videos, delivered))
            print(f"  {label}: done", file=sys.stderr)

    title = (f"### data pipeline, {TASK} expert, {views(cameras)}, VP9, one loader process"
             f"{' (--quick)' if args.quick else ''}\n{environment(CPU)}\n")
    table = render(rows)
    print(title + "\n" + table)
    if not args.no_record:
        record(title, table)


if __name__ == "__main__":
    use_offscreen_rendering()  # an entry point: Meta-World renders offscreen
    main()
