"""The report's pictures: loss curves per variant, and predicted vs true future frames and value maps.

Predictions come from each trained model on a held-out expert episode (a seed no variant trained
on): the observation frames go to the KV-cached rollout, which imagines the first chunk's frames
and value maps (``aim.train.samples.predicted_vs_true``: rows true frames, predicted frames, true
value maps, predicted value maps).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aim.data.clips import ClipDataset
from aim.data.reader import DatasetReader
from aim.runtime.bundle import load_bundle
from aim.runtime.monitor import read_metrics
from aim.runtime.preprocessing import clip_latents, clip_pixel_frames
from aim.train.samples import predicted_vs_true

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


def predictions(run: Path, heldout: Path, path: Path, sample_steps: int = 10, scale: int = 4, seed: int = 0) -> Path:
    """The predicted-vs-true picture of ``run`` on the middle clip of every episode in ``heldout``
    (one episode per task), tasks stacked top to bottom."""
    bundle = load_bundle(run)
    clips = ClipDataset(DatasetReader(heldout), clip_pixel_frames(bundle.tokenizer, bundle.structure),
                        frame_stride=bundle.frame_stride, layout=bundle.layout)
    middle_of_episode: dict[int, list[int]] = {}
    for index, (episode, _) in enumerate(clips.index):
        middle_of_episode.setdefault(episode, []).append(index)
    pictures = []
    for indices in middle_of_episode.values():
        batch = torch.utils.data.default_collate([clips[indices[len(indices) // 2]]])
        video, value, _, text = clip_latents(bundle, batch)
        generator = torch.Generator().manual_seed(seed)
        pictures.append(predicted_vs_true(bundle, video, value, text, sample_steps, generator))
    separator = torch.ones(3, 2, pictures[0].shape[-1])
    picture = torch.cat([p for picture in pictures for p in (picture, separator)][:-1], dim=1)
    array = (picture.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    image = Image.fromarray(array)
    image.resize((image.width * scale, image.height * scale), Image.NEAREST).save(path)
    return path
