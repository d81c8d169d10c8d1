"""Initialising the narrower action branch from the video branch's weights (docs/method.md §3 [decision]).

LingBot-VA's public code shares one backbone between video and actions, so there is no slicing
rule to follow; ours is *block averaging*. Read a d_a-wide action feature as the average of
r = d_v / d_a neighbouring video features. A linear map W (out x in) of the video branch then
acts on such coarse features as the map that *averages* W's rows over each output block and
*sums* its columns over each input block; for integer r this is exact on block-constant inputs
(adaptive average pooling extends it to any ratio). Axes that keep their size (the shared
attention width, the time-frequency input) are copied. So at initialisation the action branch
computes a coarse-grained copy of the video branch: its attention reads pretrained Q/K/V
geometry rather than noise. The action embedding MLP and output projection have no video
counterpart and stay random.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

Tensor = torch.Tensor


def _pool(t: Tensor, dim: int, size: int) -> Tensor:
    moved = t.movedim(dim, -1)
    lead = moved.shape[:-1]
    pooled = F.adaptive_avg_pool1d(moved.reshape(-1, 1, moved.shape[-1]).float(), size)
    return pooled.reshape(*lead, size).movedim(-1, dim)


def shrink(weight: Tensor, shape: tuple[int, ...], input_dim: int | None = None) -> Tensor:
    """``weight`` resized to ``shape`` by block averaging; along ``input_dim`` (a linear map's
    input axis) blocks are summed instead (average x ratio), keeping the map's output scale."""
    out = weight.float()
    for dim, size in enumerate(shape):
        if out.shape[dim] == size:
            continue
        ratio = out.shape[dim] / size
        out = _pool(out, dim, size) * (ratio if dim == input_dim else 1.0)
    return out.to(weight.dtype)


def _init_linear(target: torch.nn.Linear, source: torch.nn.Linear, chunks: int = 1) -> None:
    """``target`` from ``source``; ``chunks`` > 1 when the output is several stacked vectors
    (AdaLN's six modulation vectors), which are shrunk one by one."""
    out_features, in_features = target.weight.shape
    weight = source.weight.unflatten(0, (chunks, -1))
    target.weight.copy_(shrink(weight, (chunks, out_features // chunks, in_features), input_dim=2).flatten(0, 1))
    target.bias.copy_(shrink(source.bias.unflatten(0, (chunks, -1)), (chunks, out_features // chunks)).flatten())


@torch.no_grad()
def init_action_branch_from_video(model) -> None:
    """Fills every action-branch weight that has a video counterpart (see module docstring)."""
    for block in model.blocks:
        video, action = block.branches["video"], block.branches["action"]
        for name in ("to_q", "to_k", "to_v", "to_out"):
            _init_linear(getattr(action.self_attn, name), getattr(video.self_attn, name))
        action.self_attn.norm_q.weight.copy_(video.self_attn.norm_q.weight)
        action.self_attn.norm_k.weight.copy_(video.self_attn.norm_k.weight)
        _init_linear(action.ffn.fc_in, video.ffn.fc_in)
        _init_linear(action.ffn.fc_out, video.ffn.fc_out)
        action.scale_shift_table.copy_(shrink(video.scale_shift_table, tuple(action.scale_shift_table.shape)))
    video_time, action_time = model.time_embeddings["video"], model.time_embeddings["action"]
    _init_linear(action_time.linear_1, video_time.linear_1)
    _init_linear(action_time.linear_2, video_time.linear_2)
    _init_linear(action_time.proj, video_time.proj, chunks=6)
    head = model.heads["action"]
    head.scale_shift_table.copy_(shrink(model.heads["video"].scale_shift_table, tuple(head.scale_shift_table.shape)))
