"""From dataset clips to the model's inputs: canvas layout, latents, normalised actions, text.

Training and closed-loop evaluation must preprocess observations identically, so both go through
the functions here (the contract between aim.train and aim.eval): canvases (B, T, 3, H, W) in [0, 1] become
tokenizer input (B, 3, T, H, W) in [-1, 1]; value maps take the same path (heat replicated to 3
channels, docs/method.md §4); actions are z-scored with the dataset's statistics.

Frame and action bookkeeping for a tokenizer of temporal compression k (1 for the pixel
tokenizer, 4 for Wan's causal VAE): latent frame i ends at pixel frame p(i) = i k, so a clip of
F latent frames spans (F - 1) k + 1 pixel frames. The actions that lead to latent frame i are the
environment steps [p(i - 1) s, p(i) s) for a frame stride of s steps, which makes
``actions_per_frame`` = k s, and a clip's future actions the steps [p(O - 1) s, p(F - 1) s).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from aim.data.canvas import CanvasLayout, ViewSlot
from aim.errors import UsageError
from aim.model.clip import ClipStructure
from aim.model.video_tokenizers import VideoTokenizer

Tensor = torch.Tensor
VALUE_MAPS_HINT = ("the dataset has no observation.value_maps.* videos: train with model.value_stream=false, or "
                   "label the data: aim collect writes value maps for Meta-World, aim dataset convert-robotwin for "
                   "RoboTwin, and aim.data.gripper_events.gripper_value_maps makes them from any robot's end poses, "
                   "gripper commands and camera calibration")


def canvas_layout(cameras: Sequence[str], dataset_view: tuple[int, int], view_size: Sequence[int] | None) -> CanvasLayout:
    """The canvas for views of ``dataset_view`` (H, W) pixels, shrunk so each view is ``view_size``.

    One camera fills the canvas alone; two sit side by side (H x 2W); three use the paper's
    head-and-wrists packing (aim.data.canvas: the first camera on top, the other two at half
    size below it); four make a 2 x 2 grid (2H x 2W), in the given order, row by row. The shrink
    factor must be an integer (area averaging by whole pixel blocks).
    """
    height, width = dataset_view
    h, w = (height, width) if view_size is None else (int(view_size[0]), int(view_size[1]))
    if height % h or width % w or height // h != width // w:
        raise UsageError(f"view size {h}x{w} does not divide the dataset's {height}x{width} views "
                         "by one integer factor")
    factor = height // h
    cameras = list(cameras)
    if len(cameras) == 3:
        if h % 2 or w % 2:
            raise UsageError(f"view size {h}x{w} must be even for the head-and-wrists canvas")
        head, left, right = cameras
        return CanvasLayout(h + h // 2, w, (ViewSlot(head, 0, 0, factor), ViewSlot(left, h, 0, 2 * factor),
                                            ViewSlot(right, h, w // 2, 2 * factor)))
    grids = {1: (1, 1), 2: (1, 2), 4: (2, 2)}
    if len(cameras) not in grids:
        raise UsageError(f"a canvas packs 1 to 4 cameras, got {len(cameras)}: {cameras}")
    rows, columns = grids[len(cameras)]
    return CanvasLayout(rows * h, columns * w, tuple(ViewSlot(c, (i // columns) * h, (i % columns) * w, factor)
                                                     for i, c in enumerate(cameras)))


def clip_structure(tokenizer: VideoTokenizer, frame_stride: int, observation_frames: int, num_chunks: int,
                   frames_per_chunk: int) -> ClipStructure:
    """The clip in latent frames, with ``actions_per_frame`` = temporal compression x frame stride."""
    return ClipStructure(num_chunks, observation_frames, frames_per_chunk,
                         tokenizer.temporal_compression * frame_stride)


def clip_pixel_frames(tokenizer: VideoTokenizer, structure: ClipStructure) -> int:
    """Pixel frames of a clip of ``structure.total_frames`` latent frames."""
    frames = (structure.total_frames - 1) * tokenizer.temporal_compression + 1
    if tokenizer.latent_frames(frames) != structure.total_frames:
        raise ValueError(f"{type(tokenizer).__name__} turns {frames} frames into {tokenizer.latent_frames(frames)} "
                         f"latent frames, not {structure.total_frames}: only causal temporal compression "
                         "(the first frame alone, then k frames per latent frame) is supported")
    return frames


def future_action_steps(tokenizer: VideoTokenizer, structure: ClipStructure, frame_stride: int) -> slice:
    """The clip's environment steps whose actions lead to its future latent frames."""
    k = tokenizer.temporal_compression
    start = (structure.observation_frames - 1) * k * frame_stride
    return slice(start, start + structure.future_frames * structure.actions_per_frame)


def encode_canvases(tokenizer: VideoTokenizer, canvases: Tensor) -> Tensor:
    """Latents (B, C, F, h, w) of canvases (B, T, 3, H, W) in [0, 1]."""
    if canvases.dim() != 5 or canvases.shape[2] != 3:
        raise ValueError(f"canvases must be (B, T, 3, H, W), got {tuple(canvases.shape)}")
    with torch.no_grad():
        return tokenizer.encode(canvases.transpose(1, 2) * 2 - 1)


def decode_latents(tokenizer: VideoTokenizer, latents: Tensor) -> Tensor:
    """Canvases (B, T, 3, H, W) in [0, 1] of latents (B, C, F, h, w); the inverse of encode_canvases."""
    with torch.no_grad():
        return ((tokenizer.decode(latents) + 1) / 2).clamp(0, 1).transpose(1, 2)


def normalize_actions(actions: Tensor, mean: Tensor | None, std: Tensor | None) -> Tensor:
    """Z-scored actions (..., A), as aim.data.ClipDataset z-scores them; unchanged without statistics."""
    if mean is None:
        return actions
    return (actions - mean.to(actions)) / std.to(actions).clamp_min(1e-8)


def denormalize_actions(actions: Tensor, mean: Tensor | None, std: Tensor | None) -> Tensor:
    """Environment actions from model actions; the inverse of normalize_actions."""
    if mean is None:
        return actions
    return actions * std.to(actions).clamp_min(1e-8) + mean.to(actions)


def clip_tensors(bundle, batch: dict, device: torch.device | str | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
    """(video, value, actions) of a ClipDataset batch for ``bundle`` (a ModelBundle or anything with
    its tokenizer, structure, frame_stride, action statistics and model): video latents
    (B, C, F_total, h, w), value latents (B, C, F_future, h, w) or None for a model without a value
    stream, and normalised future actions (B, F_future a, A)."""
    device = torch.device(device) if device is not None else _device_of(bundle.model)
    structure, tokenizer = bundle.structure, bundle.tokenizer
    frames = batch["frames"]
    expected = clip_pixel_frames(tokenizer, structure)
    if frames.shape[1] != expected:
        raise ValueError(f"batch frames cover {frames.shape[1]} frames; the clip structure {structure} needs {expected}")
    video = encode_canvases(tokenizer, frames.to(device))
    value = None
    if bundle.model.config.value_stream:
        if "value_maps" not in batch:
            raise ValueError(f"the model has a value stream but the batch has no value maps ({VALUE_MAPS_HINT})")
        value = encode_canvases(tokenizer, batch["value_maps"].to(device))[:, :, structure.observation_frames:]
    actions = batch["actions"][:, future_action_steps(tokenizer, structure, bundle.frame_stride)].to(device)
    actions = normalize_actions(actions.float(), bundle.action_mean, bundle.action_std)
    return video, value, actions


def text_prompts(text_encoder, tasks: Sequence[str] | None, instructions: Sequence[str]) -> list[str]:
    """What ``text_encoder`` reads for episodes of ``tasks`` given ``instructions``: the task ids for a
    per-task embedding keyed by them (it cannot read text), the instructions for any other encoder."""
    if getattr(text_encoder, "keyed_by", "instruction") != "task":
        return list(instructions)
    if tasks is None:
        raise ValueError("the model conditions on a per-task embedding: give the task id of each episode")
    return list(tasks)


def encode_text(text_encoder, prompts: Sequence[str], device: torch.device | str) -> Tensor:
    """(B, L, text_dim) features of the prompts (see :func:`text_prompts`) on ``device``."""
    return text_encoder.encode(list(prompts)).to(device)


def clip_latents(bundle, batch: dict, device: torch.device | str | None = None):
    """(video, value, actions, text): ``training_loss``'s inputs for a ClipDataset batch."""
    device = torch.device(device) if device is not None else _device_of(bundle.model)
    video, value, actions = clip_tensors(bundle, batch, device)
    return video, value, actions, encode_text(bundle.text_encoder, batch_prompts(bundle, batch), device)


def batch_prompts(bundle, batch: dict) -> list[str]:
    """The text prompts of a ClipDataset batch for the bundle's text encoder (:func:`text_prompts`)."""
    return text_prompts(bundle.text_encoder, batch.get("task"), batch["instruction"])


def tokens_per_clip(structure: ClipStructure, grid: tuple[int, int], value_stream: bool,
                    patch_size: tuple[int, int, int] = (1, 1, 1)) -> int:
    """Sequence length of one teacher-forcing clip on a latent grid (h, w): clean history (all but
    the last chunk's frames), noisy video and value of every chunk, and the actions (docs/method.md §5)."""
    s = structure
    per_frame = (grid[0] // patch_size[1]) * (grid[1] // patch_size[2])
    frames = (s.total_frames - s.frames_per_chunk + s.future_frames * (2 if value_stream else 1)) // patch_size[0]
    return frames * per_frame + (2 * s.num_chunks - 1) * s.actions_per_chunk


def _device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device
