"""Per-stream output heads: AdaLN-modulated projection of the final hidden states to flow
velocities (video latents, value latents, actions), one head per stream (docs/method.md §3)."""

from __future__ import annotations

import torch
from torch import nn

from aim.model.block import LayerNorm32

Tensor = torch.Tensor


class OutputHead(nn.Module):
    """Wan's output layer: norm, shift/scale from the stream's ``temb``, linear projection."""

    def __init__(self, dim: int, out_features: int, eps: float):
        super().__init__()
        self.norm_out = LayerNorm32(dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(dim, out_features)
        self.scale_shift_table = nn.Parameter(torch.empty(1, 2, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.scale_shift_table, std=self.scale_shift_table.shape[-1] ** -0.5)

    def forward(self, x: Tensor, temb: Tensor) -> Tensor:
        """x, temb (B, N, D) -> (B, N, out_features)."""
        shift, scale = (self.scale_shift_table[None] + temb.float()[:, :, None]).unbind(2)
        return self.proj_out((self.norm_out(x) * (1 + scale) + shift).type_as(x))


def unpatchify(tokens: Tensor, grid: tuple[int, int, int], patch_size: tuple[int, int, int]) -> Tensor:
    """tokens (B, F' H' W', p_t p_h p_w C) -> latents (B, C, F' p_t, H' p_h, W' p_w); the inverse of
    the patch embedding's token order (Wan's layout: channel fastest within a patch)."""
    frames, height, width = grid
    p_t, p_h, p_w = patch_size
    x = tokens.reshape(tokens.shape[0], frames, height, width, p_t, p_h, p_w, -1)
    x = x.permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.reshape(x.shape[0], x.shape[1], frames * p_t, height * p_h, width * p_w)
