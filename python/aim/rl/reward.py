"""Stage II reward (docs/method.md §6): the frozen model's own value map read where the actions aim, plus success.

r_t = lambda_d M_t(Pi(p_t)) + lambda_s r_sparse. p_t are the end-effector targets the chunk's
actions command at step t (``Suite.ee_targets``: one point per arm), Pi projects them into every
camera view of the packed canvas, and M_t is the value map the model itself predicted for the
frame step t leads to, read bilinearly with ``aim.ops.sample_value_maps``. **[decision]** M_t(Pi(p_t))
is the mean over the (point, view) pairs where the point is visible (0 where it is visible in no
view), so every view and arm counts alike. r_sparse is the episode's task success (0 or 1).
**[decision]** An episode's return is the mean of r_t over its steps, lambda_d mean_t M_t +
lambda_s success, so an episode that succeeds early is not paid less dense reward for being short.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aim.data.canvas import CanvasLayout
from aim.ops import sample_value_maps

Tensor = torch.Tensor


@dataclass(frozen=True)
class RewardConfig:
    dense_weight: float = 1.0  # lambda_d
    sparse_weight: float = 1.0  # lambda_s

    def __post_init__(self) -> None:
        for name in ("dense_weight", "sparse_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"RewardConfig.{name} must be >= 0, got {getattr(self, name)}")
        if self.dense_weight == 0 and self.sparse_weight == 0:
            raise ValueError("RewardConfig: dense_weight (lambda_d) and sparse_weight (lambda_s) are both 0; "
                             "the reward would be 0 for every episode")


def dense_rewards(heat: Tensor, targets: Tensor, intrinsics: Tensor, extrinsics: Tensor, layout: CanvasLayout,
                  image_size: tuple[int, int]) -> Tensor:
    """(T,) M_t(Pi(p_t)) for T steps.

    ``heat`` (T, Hc, Wc) the predicted value map on the canvas for each step's frame; ``targets``
    (T, P, 3) world points; ``intrinsics`` (V, 3, 3) and ``extrinsics`` (T, V, 4, 4, world to
    camera, OpenCV axes) per camera in ``layout.cameras`` order, each view ``image_size`` (H, W).
    """
    steps = heat.shape[0]
    if heat.dim() != 3 or targets.dim() != 3 or targets.shape[0] != steps or targets.shape[2] != 3:
        raise ValueError(f"dense_rewards: heat must be (T, Hc, Wc) and targets (T, P, 3), got {tuple(heat.shape)} "
                         f"and {tuple(targets.shape)}")
    if (heat.shape[1], heat.shape[2]) != (layout.height, layout.width):
        raise ValueError(f"dense_rewards: heat is {tuple(heat.shape[1:])} but the canvas is {layout.height}x{layout.width}")
    boxes = layout.view_boxes({camera: tuple(image_size) for camera in layout.cameras})
    dtype = heat.dtype
    values, valid = sample_value_maps(heat[None], targets[None].to(dtype), intrinsics[None].to(dtype),
                                      extrinsics[None].to(dtype), **{k: v.to(dtype) for k, v in boxes.items()})
    values, valid = values[0].flatten(1), valid[0].flatten(1)  # (T, P V)
    return values.sum(1) / valid.sum(1).clamp(min=1)


def episode_return(dense: Tensor, success: bool, config: RewardConfig) -> dict[str, float]:
    """The episode's return (mean per-step reward) and its dense and sparse parts, for ``dense`` (T,)."""
    dense_part = config.dense_weight * float(dense.mean()) if dense.numel() else 0.0
    sparse_part = config.sparse_weight * float(success)
    return {"return": dense_part + sparse_part, "dense": dense_part, "sparse": sparse_part}
