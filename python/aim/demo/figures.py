"""The report's pictures: loss curves per variant, and imagined vs true future frames and value maps.

Predictions come from each trained model on a held-out expert episode per task (a seed no
variant trained on), from the episode's start, chunk by chunk: the KV-cached rollout imagines
each chunk from the true frames and actions before it (``aim.train.samples``; labelled rows true
frames, imagined frames, true and imagined value maps, one column per chunk, views upscaled by
whole pixels).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aim.data.clips import ClipDataset
from aim.data.picture_grid import stack
from aim.data.reader import DatasetReader
from aim.model.clip import ClipStructure
from aim.runtime.bundle import load_bundle
from aim.runtime.monitor import read_metrics
from aim.runtime.preprocessing import clip_latents, clip_pixel_frames
from aim.train.samples import chunk_figure, imagine_chunks

MAX_CHUNKS = 6  # columns of a prediction figure, per task
STREAM_LOSSES = ("loss/video", "loss/value", "loss/action")
RL_CURVES = ("success/rate", "return/mean", "reward/value_map", "update/kl", "update/clip_fraction")


def loss_curves(runs: dict[str, Path], path: Path, smoothing: int = 20) -> Path:
    """One panel per stream loss, one line per variant (running mean over ``smoothing`` steps)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(STREAM_LOSSES), figsize=(4 * len(STREAM_LOSSES), 3.2), constrained_layout=True)
    colors = {variant: f"C{i}" for i, variant in enumerate(runs)}
    for axis, name in zip(axes, STREAM_LOSSES):
        for variant, run in runs.items():
            metrics = read_metrics(run)
            steps = np.array([m["step"] for m in metrics])
            values = np.array([m[name] for m in metrics])
            if not len(values) or not values.any():
                continue  # a variant without this stream (no value map) has a zero loss there
            axis.plot(steps, _running_mean(values, smoothing), label=variant, color=colors[variant])
        axis.set_title(name.split("/")[1] + " loss")
        axis.set_xlabel("step")
        axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def rl_curves(run: Path, path: Path) -> Path:
    """One panel per Stage II scalar of ``RL_CURVES`` over the run's iterations."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    metrics = read_metrics(run)
    iterations = [m["step"] for m in metrics]
    figure, axes = plt.subplots(1, len(RL_CURVES), figsize=(3.2 * len(RL_CURVES), 2.8), constrained_layout=True)
    for axis, name in zip(axes, RL_CURVES):
        axis.plot(iterations, [m[name] for m in metrics], marker="o")
        axis.set_title(name)
        axis.set_xlabel("iteration")
        axis.grid(alpha=0.3)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _running_mean(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def predictions(run: Path, heldout: Path, path: Path, sample_steps: int = 10, seed: int = 0) -> Path:
    """The imagined-vs-true figure of ``run`` on every episode of ``heldout`` (one per task) from
    its start, chunk by chunk (``aim.train.samples``), tasks one under the other."""
    bundle = load_bundle(run)
    reader = DatasetReader(heldout)
    pictures = []
    for episode in reader.valid_episodes:
        structure = _longest_clip(bundle, reader.episode_length(episode))
        if structure is None:
            continue  # an episode shorter than one chunk shows nothing
        clips = ClipDataset(reader, clip_pixel_frames(bundle.tokenizer, structure), frame_stride=bundle.frame_stride,
                            layout=bundle.layout)
        batch = torch.utils.data.default_collate([clips[clips.index.index((episode, 0))]])
        video, value, actions, text = clip_latents(dataclasses.replace(bundle, structure=structure), batch)
        imagined = imagine_chunks(bundle, video, value, actions, text, sample_steps, torch.Generator().manual_seed(seed))
        row = reader.episodes.iloc[episode]
        pictures.append(chunk_figure(imagined, f"{row['task_name']} · held-out seed {int(row['seed'])} · "
                                               f"{structure.num_chunks} chunks of {bundle.structure.actions_per_chunk} "
                                               "steps from the episode's start"))
    if not pictures:
        raise ValueError(f"{heldout}: no episode is long enough for one chunk of {run}")
    Image.fromarray(stack(pictures)).save(path)
    return path


def _longest_clip(bundle, episode_steps: int) -> ClipStructure | None:
    """The clip of the most chunks (at most ``MAX_CHUNKS``) from an episode's start that fits in it."""
    for chunks in range(MAX_CHUNKS, 0, -1):
        structure = dataclasses.replace(bundle.structure, num_chunks=chunks)
        if clip_pixel_frames(bundle.tokenizer, structure) * bundle.frame_stride <= episode_steps:
            return structure
    return None
