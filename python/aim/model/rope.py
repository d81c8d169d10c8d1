"""Rotary position embedding over (time, height, width), shared by all three streams.

Each head's dimensions are split into a time band and two equal spatial bands (Wan's split:
``2 * (head_dim // 6)`` for height and width, the rest for time) and rotated in interleaved pairs.
Video and value tokens sit on their latent patch grid (a value token shares its frame's positions,
docs/method.md §2); action tokens carry only a 1-D time position, in latent-frame units, and leave the
spatial bands unrotated (position 0). Angles are computed from float positions, so fractional
action times need no table.
"""

from __future__ import annotations

import torch
from torch import nn

Tensor = torch.Tensor


class RotaryEmbedding(nn.Module):
    def __init__(self, head_dim: int, theta: float = 10000.0):
        super().__init__()
        spatial = 2 * (head_dim // 6)
        self.band_sizes = (head_dim - 2 * spatial, spatial, spatial)
        self.theta = theta

    def forward(self, positions: Tensor) -> Tensor:
        """positions (N, 3) float (t, h, w) -> the rotations exp(i * angle), (N, head_dim / 2) complex64."""
        angles = []
        for axis, size in enumerate(self.band_sizes):
            exponents = torch.arange(0, size, 2, dtype=torch.float64, device=positions.device)[: size // 2] / size
            inv_freq = 1.0 / self.theta**exponents
            angles.append(positions[:, axis, None].double() * inv_freq)
        angles = torch.cat(angles, dim=-1)
        return torch.polar(torch.ones_like(angles), angles).to(torch.complex64)


def apply_rotary(x: Tensor, rotations: Tensor) -> Tensor:
    """Rotates consecutive pairs (x[2i], x[2i+1]) of x (B, N, heads, head_dim), read as the
    complex numbers x[2i] + i x[2i+1], by ``rotations`` (N, head_dim / 2) complex: one complex
    product, 7x faster forward and backward on a CPU than four real ones and a stack
    (benchmarks/train_step.py)."""
    pairs = torch.view_as_complex(x.float().unflatten(-1, (-1, 2)).contiguous())
    return torch.view_as_real(pairs * rotations[:, None]).flatten(-2).type_as(x)


def grid_positions(frames: int, height: int, width: int, start: float, device=None) -> Tensor:
    """(frames * height * width, 3) positions of a latent patch grid whose first frame is at
    time ``start``, in Wan's token order (frame, row, column)."""
    t = torch.arange(frames, dtype=torch.float64, device=device) + start
    h = torch.arange(height, dtype=torch.float64, device=device)
    w = torch.arange(width, dtype=torch.float64, device=device)
    grid = torch.meshgrid(t, h, w, indexing="ij")
    return torch.stack([g.flatten() for g in grid], dim=-1)


def time_positions(count: int, start: float, step: float, device=None) -> Tensor:
    """(count, 3) positions of a run of action tokens: time start + i * step, spatial 0."""
    positions = torch.zeros(count, 3, dtype=torch.float64, device=device)
    positions[:, 0] = start + step * torch.arange(count, dtype=torch.float64, device=device)
    return positions
