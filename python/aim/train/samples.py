"""Imagined vs true future, chunk by chunk: what training logs as sample images and the demo shows.

For the first clip of a batch, the KV-cached rollout (``aim.model.sampler``, no guidance) is
driven as in closed loop, with the clip's true frames where the robot's camera would come: it
observes the first observation and imagines chunk 0's video and value latents, then observes
chunk 0's true frames and actions and imagines chunk 1, and so on (past the training clip's
length it slides its window, as evaluation does). Everything is decoded by the tokenizer.

:func:`chunk_figure` lays the result out for a person: one column per imagined frame (labelled
with its chunk and step), rows true frames, imagined frames, and (with a value stream) the true
and imagined value maps drawn over the true frames; the canvas upscaled by whole pixels to at
least ``FIGURE_VIEW_PIXELS`` wide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from aim.data.picture_grid import labelled_grid, scale_to, upscale
from aim.data.preview import overlay
from aim.model.sampler import Rollout, SamplerConfig
from aim.runtime.preprocessing import decode_latents

Tensor = torch.Tensor

FIGURE_VIEW_PIXELS = 128  # the canvas's width (one view, in the head-and-wrists packing) in figures


@dataclass(frozen=True)
class ImaginedChunks:
    """Decoded canvases of K chunks of f frames: frames (K, f, Hc, Wc, 3) uint8, heat (K, f, Hc, Wc)
    in [0, 1] (None without a value stream); ``steps[k][j]``: the clip step frame j of chunk k shows."""

    true_frames: np.ndarray
    imagined_frames: np.ndarray
    true_heat: np.ndarray | None
    imagined_heat: np.ndarray | None
    steps: list[list[int]]


@torch.no_grad()
def imagine_chunks(bundle, video: Tensor, value: Tensor | None, actions: Tensor, text: Tensor, steps: int,
                   generator: torch.Generator) -> ImaginedChunks:
    """Every chunk of the first clip of latents ``video`` (B, C, O + K f, h, w), ``value``
    (B, C, K f, h, w) or None and normalised ``actions`` (B, K f a, A), imagined from the true
    history before it (see the module docstring); the clip may be longer than a training clip."""
    s = bundle.structure
    chunks = (video.shape[2] - s.observation_frames) // s.frames_per_chunk
    if chunks < 1 or actions.shape[1] < chunks * s.actions_per_chunk:
        raise ValueError(f"imagine_chunks: a clip of {video.shape[2]} latent frames and {actions.shape[1]} actions "
                         f"holds no whole chunk of {s}")
    config = SamplerConfig(video_steps=steps, guidance_scale=1.0, action_steps=steps)
    rollout = Rollout(bundle.model, s, text[:1], config)
    rollout.observe(video[:1, :, :s.observation_frames])
    imagined_video, imagined_value = [], []
    for c in range(chunks):
        predicted_video, predicted_value, _ = rollout.predict_chunk(generator)
        imagined_video.append(predicted_video)
        imagined_value.append(predicted_value)
        if c + 1 < chunks:
            frames = slice(s.chunk_start(c), s.chunk_start(c + 1))
            rollout.observe(video[:1, :, frames], actions[:1, c * s.actions_per_chunk:(c + 1) * s.actions_per_chunk])
    future = video[:1, :, s.observation_frames:s.chunk_start(chunks)]
    true_frames = _frames(bundle, future, chunks)
    has_value = value is not None and imagined_value[0] is not None
    # Causal temporal compression k: the observation is (O - 1) k + 1 frames, a future latent frame k more.
    k, per_chunk = bundle.tokenizer.temporal_compression, true_frames.shape[1]
    observed = (s.observation_frames - 1) * k + 1
    clip_steps = [[(observed + c * per_chunk + j) * bundle.frame_stride for j in range(per_chunk)]
                  for c in range(chunks)]
    return ImaginedChunks(
        true_frames, _frames(bundle, torch.cat(imagined_video, dim=2), chunks),
        _heat(bundle, value[:1, :, :chunks * s.frames_per_chunk], chunks) if has_value else None,
        _heat(bundle, torch.cat(imagined_value, dim=2), chunks) if has_value else None, clip_steps)


def chunk_figure(imagined: ImaginedChunks, title: str | None = None) -> np.ndarray:
    """(H, W, 3) uint8: the labelled grid of :class:`ImaginedChunks` (see the module docstring)."""
    chunks, per_chunk = imagined.true_frames.shape[:2]
    factor = scale_to(FIGURE_VIEW_PIXELS, imagined.true_frames.shape[3])
    flat = lambda array: [array[c, j] for c in range(chunks) for j in range(per_chunk)]
    true, fake = flat(imagined.true_frames), flat(imagined.imagined_frames)
    rows = [true, fake]
    labels = ["true frame", "imagined frame"]
    if imagined.true_heat is not None:
        rows += [[overlay(f, h) for f, h in zip(true, flat(imagined.true_heat))],
                 [overlay(f, h) for f, h in zip(true, flat(imagined.imagined_heat))]]
        labels += ["true value map", "imagined value map"]
    columns = [f"chunk {c} · step {imagined.steps[c][j]}" for c in range(chunks) for j in range(per_chunk)]
    return labelled_grid([[upscale(cell, factor) for cell in row] for row in rows], labels, columns, title)


@torch.no_grad()
def predicted_vs_true(bundle, video: Tensor, value: Tensor | None, actions: Tensor, text: Tensor, steps: int,
                      generator: torch.Generator) -> Tensor:
    """The sample image of a training batch: :func:`chunk_figure` of the first clip, (3, H, W) in [0, 1]."""
    figure = chunk_figure(imagine_chunks(bundle, video, value, actions, text, steps, generator),
                          "imagined vs true future (value maps over the true frames), chunk by chunk")
    return torch.tensor(figure).permute(2, 0, 1).float() / 255.0


def _frames(bundle, latents: Tensor, chunks: int) -> np.ndarray:
    canvases = decode_latents(bundle.tokenizer, latents.float())[0]  # (T, 3, Hc, Wc)
    pictures = np.rint(canvases.permute(0, 2, 3, 1).cpu().numpy() * 255.0).astype(np.uint8)
    return pictures.reshape(chunks, -1, *pictures.shape[1:])


def _heat(bundle, latents: Tensor, chunks: int) -> np.ndarray:
    """Value latents decoded like frames, channels averaged (heat is encoded replicated to 3, docs/method.md §4)."""
    heat = decode_latents(bundle.tokenizer, latents.float())[0].mean(1).cpu().numpy()
    return heat.reshape(chunks, -1, *heat.shape[1:])

