"""Loading a diffusers-format Wan2.2 transformer checkpoint into the AIM video branch.

A diffusers Wan checkpoint is a folder with ``config.json`` and
``diffusion_pytorch_model.safetensors`` (or shards listed in ``...safetensors.index.json``).
Its weights map one to one onto the video branch by the key table below. The value stream's
embedding, time embedding and head (and its branch, when it has its own weights) start as copies
of the video stream's; the action branch is initialised by block averaging
(:mod:`aim.model.action_init`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import torch

from aim.errors import NotFoundError
from aim.model.action_init import init_action_branch_from_video
from aim.model.config import AIMConfig

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"

# diffusers WanTransformer3DModel key -> AIMTransformer key (first match wins).
_KEY_MAP = [
    (r"^blocks\.(\d+)\.attn1\.to_out\.0\.", r"blocks.\1.branches.video.self_attn.to_out."),
    (r"^blocks\.(\d+)\.attn1\.", r"blocks.\1.branches.video.self_attn."),
    (r"^blocks\.(\d+)\.attn2\.to_out\.0\.", r"blocks.\1.branches.video.cross_attn.to_out."),
    (r"^blocks\.(\d+)\.attn2\.", r"blocks.\1.branches.video.cross_attn."),
    (r"^blocks\.(\d+)\.ffn\.net\.0\.proj\.", r"blocks.\1.branches.video.ffn.fc_in."),
    (r"^blocks\.(\d+)\.ffn\.net\.2\.", r"blocks.\1.branches.video.ffn.fc_out."),
    (r"^blocks\.(\d+)\.(norm2\.|scale_shift_table$)", r"blocks.\1.branches.video.\2"),
    (r"^patch_embedding\.", r"patch_embedding.proj."),
    (r"^condition_embedder\.time_embedder\.", r"time_embeddings.video."),
    (r"^condition_embedder\.time_proj\.", r"time_embeddings.video.proj."),
    (r"^condition_embedder\.text_embedder\.", r"text_embedder."),
    (r"^proj_out\.", r"heads.video.proj_out."),
    (r"^scale_shift_table$", r"heads.video.scale_shift_table"),
]
# Wan keys that carry nothing for the video branch (diffusers ignores them on load, too).
_IGNORED = re.compile(r"norm_added_q")


def wan_key_to_aim(key: str) -> str:
    for pattern, replacement in _KEY_MAP:
        if re.search(pattern, key):
            return re.sub(pattern, replacement, key)
    raise KeyError(
        f"Wan checkpoint key {key!r} has no place in the AIM video branch "
        "(image-conditioned Wan variants are not supported)"
    )


def read_wan_config(path: str | Path) -> dict:
    config_file = Path(path) / CONFIG_NAME
    if not config_file.is_file():
        raise NotFoundError(f"no {CONFIG_NAME} in {path}: expected a diffusers-format Wan transformer folder")
    return json.loads(config_file.read_text())


def config_from_wan(path: str | Path, **changes) -> AIMConfig:
    """An :class:`AIMConfig` whose video branch matches the Wan checkpoint at ``path``; action
    and value settings come from ``changes`` (or the defaults)."""
    wan = read_wan_config(path)
    if wan.get("image_dim") is not None or wan.get("added_kv_proj_dim") is not None:
        raise ValueError(f"{path}: image-conditioned Wan (image_dim / added_kv_proj_dim set) is not supported")
    if wan.get("qk_norm", "rms_norm_across_heads") != "rms_norm_across_heads":
        raise ValueError(f"{path}: qk_norm {wan['qk_norm']!r} is not supported (rms_norm_across_heads only)")
    out_channels = wan.get("out_channels") or wan["in_channels"]
    if out_channels != wan["in_channels"]:
        raise ValueError(f"{path}: in_channels {wan['in_channels']} != out_channels {out_channels}")
    video = dict(
        num_layers=wan["num_layers"],
        dim=wan["num_attention_heads"] * wan["attention_head_dim"],
        num_heads=wan["num_attention_heads"],
        ffn_dim=wan["ffn_dim"],
        latent_channels=wan["in_channels"],
        patch_size=tuple(wan["patch_size"]),
        text_dim=wan["text_dim"],
        freq_dim=wan["freq_dim"],
        cross_attn_norm=wan["cross_attn_norm"],
        eps=wan["eps"],
    )
    return AIMConfig(**{**video, **changes})


def wan_shards(path: str | Path) -> Iterator[dict[str, torch.Tensor]]:
    """The tensors of a (possibly sharded) safetensors checkpoint folder, one shard at a time on
    the CPU, so loading never holds more than one shard besides the model."""
    from safetensors.torch import load_file

    path = Path(path)
    if (path / INDEX_NAME).is_file():
        shards = sorted(set(json.loads((path / INDEX_NAME).read_text())["weight_map"].values()))
    elif (path / WEIGHTS_NAME).is_file():
        shards = [WEIGHTS_NAME]
    else:
        raise NotFoundError(f"no {WEIGHTS_NAME} or {INDEX_NAME} in {path}")
    for shard in shards:
        yield load_file(str(path / shard))


@torch.no_grad()
def load_wan_weights(model, path: str | Path) -> None:
    """Loads the Wan checkpoint at ``path`` into ``model``'s video branch, then initialises the
    value stream as a copy and the action branch by block averaging. Every video-branch weight
    must be present in the checkpoint and have the same shape."""
    ours = model.state_dict()
    loaded = set()
    for shard in wan_shards(path):
        for key, tensor in shard.items():
            if _IGNORED.search(key):
                continue
            target = wan_key_to_aim(key)
            if target not in ours or ours[target].shape != tensor.shape:
                found = tuple(ours[target].shape) if target in ours else "no such parameter"
                raise ValueError(f"Wan key {key} ({tuple(tensor.shape)}) does not fit {target} ({found}): config mismatch?")
            ours[target].copy_(tensor)
            loaded.add(target)
    expected = {wan_key_to_aim(k) for k in _wan_keys_of(model)}
    missing = sorted(expected - loaded)
    if missing:
        raise ValueError(f"Wan checkpoint {path} lacks {len(missing)} video-branch weights, e.g. {missing[:3]}")
    if model.config.value_stream:
        copy_video_to_value(model)
    init_action_branch_from_video(model)


def _wan_keys_of(model) -> list[str]:
    """The Wan keys a checkpoint must provide for ``model``'s video branch."""
    c = model.config
    per_block = ["attn1.to_q.weight", "attn1.to_q.bias", "attn1.to_k.weight", "attn1.to_k.bias",
                 "attn1.to_v.weight", "attn1.to_v.bias", "attn1.to_out.0.weight", "attn1.to_out.0.bias",
                 "attn1.norm_q.weight", "attn1.norm_k.weight", "ffn.net.0.proj.weight", "ffn.net.0.proj.bias",
                 "ffn.net.2.weight", "ffn.net.2.bias", "scale_shift_table"]
    per_block += [k.replace("attn1", "attn2") for k in per_block if k.startswith("attn1")]
    if c.cross_attn_norm:
        per_block += ["norm2.weight", "norm2.bias"]
    keys = [f"blocks.{i}.{k}" for i in range(c.num_layers) for k in per_block]
    keys += ["patch_embedding.weight", "patch_embedding.bias", "proj_out.weight", "proj_out.bias", "scale_shift_table"]
    keys += [f"condition_embedder.{m}.{p}" for m in ("time_embedder.linear_1", "time_embedder.linear_2", "time_proj",
                                                    "text_embedder.linear_1", "text_embedder.linear_2")
             for p in ("weight", "bias")]
    return keys


@torch.no_grad()
def copy_video_to_value(model) -> None:
    """The value stream starts as the video stream: same patch embedding, time embedding, head
    (and branch weights when the value stream has its own)."""
    model.value_patch_embedding.load_state_dict(model.patch_embedding.state_dict())
    model.time_embeddings["value"].load_state_dict(model.time_embeddings["video"].state_dict())
    model.heads["value"].load_state_dict(model.heads["video"].state_dict())
    if model.config.value_own_weights:
        for block in model.blocks:
            block.branches["value"].load_state_dict(block.branches["video"].state_dict())


def from_wan_pretrained(path: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
                        **changes):
    """An :class:`~aim.model.transformer.AIMTransformer` sized from the Wan checkpoint at ``path``
    and initialised from it (see :func:`load_wan_weights`). The model is built on the meta device
    and materialised once, directly in ``dtype`` on ``device``: the 5B preset costs its bf16 size
    (11 GB), never a float32 copy (22 GB) first."""
    from aim.model.transformer import AIMTransformer

    with torch.device("meta"):
        model = AIMTransformer(config_from_wan(path, **changes))
    model = model.to(dtype).to_empty(device=device)
    model.init_weights()
    load_wan_weights(model, path)
    return model
