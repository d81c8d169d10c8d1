"""``ModelBundle``: a trained model with everything needed to run it on new observations.

A checkpoint directory holds the bundle as two files a person can inspect: ``bundle.json`` (model
config, tokenizer and text-encoder specs, clip structure, canvas layout, frame stride, action
statistics and channel names, camera names and image size, the resolved training config) and ``model.safetensors``
(the transformer as ``model.*``, and the text encoder as ``text_encoder.*`` when it is trained,
as the tiny preset's per-task embedding is). :func:`load_bundle` rebuilds the bundle from them;
aim.eval loads trained models through it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from aim.data.canvas import CanvasLayout, ViewSlot
from aim.errors import CheckpointError, NotFoundError
from aim.model import AIMConfig, AIMTransformer, ClipStructure
from aim.model.text_encoders import (
    CachedTextEncoder,
    TaskEmbedding,
    TextEncoder,
    UMT5TextEncoder,
)
from aim.model.video_tokenizers import (
    PixelPatchTokenizer,
    VideoTokenizer,
    WanVAETokenizer,
)
from aim.runtime.checkpoint import BUNDLE_FILE, WEIGHTS_FILE, latest_checkpoint


@dataclass
class ModelBundle:
    """Everything needed to run a trained model on new observations."""

    model: AIMTransformer
    tokenizer: VideoTokenizer
    text_encoder: TextEncoder
    structure: ClipStructure
    layout: CanvasLayout
    frame_stride: int
    action_mean: torch.Tensor | None
    action_std: torch.Tensor | None
    image_size: tuple[int, int]
    cameras: list[str]
    train_config: dict
    action_names: list[str] | None = None  # the dataset's action channel names (None: unnamed)
    render: dict = field(default_factory=dict)  # how the dataset's views were rendered (aim.data: render_settings)
    action_space: dict = field(default_factory=dict)  # what the actions are (aim.data.lerobot_format.action_space)


def make_tokenizer(spec: dict) -> VideoTokenizer:
    """The tokenizer of a ``tokenizer`` config section (as a dict)."""
    if spec["kind"] == "pixel":
        return PixelPatchTokenizer(spatial=spec["spatial"])
    return WanVAETokenizer(spec["vae_path"])


def make_text_encoder(spec: dict, tasks: list[str], dim: int, keyed_by: str = "task") -> TextEncoder:
    """The text encoder of a ``text`` config section: a per-task embedding over ``tasks`` (task ids,
    or instruction texts where ``keyed_by`` says so) or umT5."""
    if spec["kind"] == "task":
        return TaskEmbedding(tasks, dim, spec["tokens"], keyed_by)
    encoder = UMT5TextEncoder(spec["encoder_path"], spec.get("tokenizer_path"), spec["max_length"])
    if encoder.dim != dim:
        raise ValueError(f"text encoder at {spec['encoder_path']} gives {encoder.dim}-d features; the model takes {dim}")
    return CachedTextEncoder(encoder, spec.get("cache_dir"), name="umt5")


def bundle_metadata(bundle: ModelBundle) -> dict:
    """The JSON-able description of a bundle (everything but the weights)."""
    embedding = bundle.text_encoder if isinstance(bundle.text_encoder, TaskEmbedding) else None
    text = {"tasks": list(embedding.tasks), "keyed_by": embedding.keyed_by} if embedding else {"tasks": None}
    as_list = lambda t: None if t is None else t.tolist()
    return {
        "model_config": dataclasses.asdict(bundle.model.config),
        "tokenizer": bundle.train_config["tokenizer"],
        "text": {**bundle.train_config["text"], **text},
        "structure": dataclasses.asdict(bundle.structure),
        "layout": {"height": bundle.layout.height, "width": bundle.layout.width,
                   "slots": [dataclasses.asdict(s) for s in bundle.layout.slots]},
        "frame_stride": bundle.frame_stride,
        "action_mean": as_list(bundle.action_mean),
        "action_std": as_list(bundle.action_std),
        "action_names": bundle.action_names,
        "render": bundle.render,
        "action_space": bundle.action_space,
        "image_size": list(bundle.image_size),
        "cameras": bundle.cameras,
        "train_config": bundle.train_config,
    }


def trained_modules(bundle: ModelBundle) -> dict[str, nn.Module]:
    """The bundle's trained modules by weight-file prefix."""
    modules = {"model": bundle.model}
    if isinstance(bundle.text_encoder, nn.Module):
        modules["text_encoder"] = bundle.text_encoder
    return modules


def bundle_checkpoint(path: str | Path) -> Path:
    """The checkpoint directory of ``path``: itself, or a run's latest checkpoint."""
    path = Path(path)
    if (path / BUNDLE_FILE).is_file():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        raise NotFoundError(f"{path}: neither a checkpoint (no {BUNDLE_FILE}) nor a run with a checkpoint")
    return latest


def read_bundle_metadata(path: str | Path) -> dict:
    """``bundle.json`` of a checkpoint or of a run's latest checkpoint (no weights are read)."""
    file = bundle_checkpoint(path) / BUNDLE_FILE
    try:
        meta = json.loads(file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file}: unreadable ({err}); the checkpoint is damaged: use an earlier one "
                              "(checkpoints/step-*) or retrain") from err
    if not isinstance(meta, dict):
        raise CheckpointError(f"{file}: expected a JSON object, got {type(meta).__name__}")
    return meta


def _bundle_from_metadata(meta: dict) -> ModelBundle:
    model_config = meta["model_config"]
    model = AIMTransformer(AIMConfig(**{**model_config, "patch_size": tuple(model_config["patch_size"])}))
    tokenizer = make_tokenizer(meta["tokenizer"])
    # Bundles written before task ids were recorded key their task embedding by instruction text.
    text_encoder = make_text_encoder(meta["text"], meta["text"]["tasks"], model.config.text_dim,
                                     meta["text"].get("keyed_by", "instruction"))
    layout = CanvasLayout(meta["layout"]["height"], meta["layout"]["width"],
                          tuple(ViewSlot(**s) for s in meta["layout"]["slots"]))
    as_tensor = lambda v: None if v is None else torch.tensor(v, dtype=torch.float32)
    return ModelBundle(model, tokenizer, text_encoder, ClipStructure(**meta["structure"]), layout,
                       meta["frame_stride"], as_tensor(meta["action_mean"]), as_tensor(meta["action_std"]),
                       tuple(meta["image_size"]), list(meta["cameras"]), meta["train_config"], meta.get("action_names"),
                       meta.get("render", {}), meta.get("action_space", {}))


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise NotFoundError(f"{path}: missing; the checkpoint is incomplete: use an earlier one or retrain")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: damaged ({err}); use an earlier checkpoint (checkpoints/step-*) or retrain") from err


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> ModelBundle:
    """From a run directory (its latest checkpoint) or a checkpoint directory."""
    path = bundle_checkpoint(path)
    meta = read_bundle_metadata(path)
    try:
        bundle = _bundle_from_metadata(meta)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path / BUNDLE_FILE}: not a bundle this version of aim reads "
                              f"({type(err).__name__}: {err})") from err
    weights = _read_weights(path / WEIGHTS_FILE)
    for prefix, module in trained_modules(bundle).items():
        state = {k[len(prefix) + 1:]: v for k, v in weights.items() if k.startswith(prefix + ".")}
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise CheckpointError(f"{path / WEIGHTS_FILE}: the {prefix} weights do not fit its bundle.json "
                                  f"({first})") from err
    for module in trained_modules(bundle).values():
        module.to(device).eval()
    bundle.tokenizer.to(device)
    return bundle
