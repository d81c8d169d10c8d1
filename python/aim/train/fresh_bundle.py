"""A freshly initialised :class:`~aim.runtime.bundle.ModelBundle` for a Stage I config and its dataset.

The dataset decides what the config leaves open (cameras and their image size, the action width
and statistics, the task ids of the per-task embedding, how the views were rendered and what the
actions are); the config decides the model, tokenizer, text encoder, canvas and clip structure.
Settings that cannot work together are refused here, before any training starts.
"""

from __future__ import annotations

import dataclasses

import torch

from aim.data import lerobot_format as fmt
from aim.data.canvas import CanvasLayout
from aim.data.reader import DatasetReader
from aim.errors import ConfigError, UsageError
from aim.model import AIMConfig, AIMTransformer, from_wan_pretrained, preset
from aim.model.video_tokenizers import VideoTokenizer
from aim.runtime.bundle import ModelBundle, make_text_encoder, make_tokenizer
from aim.runtime.preprocessing import VALUE_MAPS_HINT, canvas_layout, clip_structure
from aim.train.config import TrainConfig


def build_bundle(config: TrainConfig, reader: DatasetReader) -> ModelBundle:
    """A freshly initialised bundle for training ``config`` on the dataset of ``reader`` (call
    torch.manual_seed first: every process must build identical weights)."""
    cameras = list(config.data.cameras or reader.cameras)
    missing = [c for c in cameras if c not in reader.cameras]
    if missing:
        raise ConfigError(f"data.cameras {missing} are not in {reader.root} (cameras: {reader.cameras})")
    if config.model.value_stream and not reader.has_value_maps:
        raise ConfigError(f"{reader.root}: model.value_stream=true needs value maps, but {VALUE_MAPS_HINT}")
    sizes = {tuple(reader.info["features"][fmt.image_key(c)]["shape"][:2]) for c in cameras}
    if len(sizes) != 1:
        raise ConfigError(f"{reader.root}: cameras {cameras} have different image sizes {sorted(sizes)}")
    (image_size,) = sizes
    try:
        layout = canvas_layout(cameras, image_size, config.data.view_size)
    except UsageError as err:
        raise ConfigError(f"data.view_size / data.cameras: {err}") from err
    tokenizer = make_tokenizer(dataclasses.asdict(config.tokenizer))
    d = config.data
    structure = clip_structure(tokenizer, d.frame_stride, d.observation_frames, d.num_chunks, d.frames_per_chunk)
    action_dim = int(reader.info["features"][fmt.ACTION]["shape"][0])
    changes = {"value_stream": config.model.value_stream, "attention_rule": config.model.attention_rule,
               "value_own_weights": config.model.value_own_weights, "action_channels": action_dim}
    if config.model.wan_path:
        model = from_wan_pretrained(config.model.wan_path, **changes)
    else:
        model = AIMTransformer(preset(config.model.preset, latent_channels=tokenizer.latent_channels, **changes))
    if model.config.latent_channels != tokenizer.latent_channels:
        raise ConfigError(f"the model takes {model.config.latent_channels}-channel latents but the "
                         f"{config.tokenizer.kind} tokenizer gives {tokenizer.latent_channels}")
    _check_grid(layout, tokenizer, model.config)
    model.gradient_checkpointing = config.model.gradient_checkpointing
    tasks = list(dict.fromkeys(reader.task_name(e) for e in range(len(reader))))
    text_encoder = make_text_encoder(dataclasses.asdict(config.text), tasks, model.config.text_dim)
    mean = std = None
    if config.data.normalize_actions:
        stats = reader.stats.get(fmt.ACTION)
        if stats is None:
            raise ConfigError(f"data.normalize_actions needs {reader.root / fmt.STATS_PATH} with {fmt.ACTION!r} statistics")
        mean, std = torch.tensor(stats["mean"], dtype=torch.float32), torch.tensor(stats["std"], dtype=torch.float32)
    names = reader.info["features"][fmt.ACTION].get("names")
    return ModelBundle(model, tokenizer, text_encoder, structure, layout, d.frame_stride, mean, std,
                       image_size, cameras, config.to_dict(), None if names is None else list(names),
                       fmt.render_settings(reader.info), fmt.action_space(reader.info))


def _check_grid(layout: CanvasLayout, tokenizer: VideoTokenizer, config: AIMConfig) -> None:
    s = tokenizer.spatial_compression
    _, p_h, p_w = config.patch_size
    if layout.height % (s * p_h) or layout.width % (s * p_w):
        raise ConfigError(f"the {layout.height}x{layout.width} canvas is not divisible by the tokenizer's {s}x{s} "
                         f"compression times the model's {p_h}x{p_w} patch; choose another data.view_size")
