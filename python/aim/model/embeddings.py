"""Input embeddings of the three streams, and the timestep and text conditioning.

Module and parameter names follow diffusers' Wan transformer where a Wan counterpart exists, so
the checkpoint loader's key map stays a short table (see :mod:`aim.model.wan_checkpoint`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

Tensor = torch.Tensor


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """(...,) timesteps -> (..., dim) features laid out [cos | sin], as Wan's ``Timesteps``
    (flip_sin_to_cos, no frequency shift) computes them, in float32."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    angles = t.float()[..., None] * torch.exp(exponent)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)


class TimeEmbedding(nn.Module):
    """Per-token timestep -> the AdaLN inputs of one stream: ``temb`` for the output head and six
    modulation vectors (shift, scale, gate of attention and FFN) for every block."""

    def __init__(self, freq_dim: int, dim: int):
        super().__init__()
        self.freq_dim = freq_dim
        self.linear_1 = nn.Linear(freq_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, 6 * dim)

    def forward(self, timesteps: Tensor) -> tuple[Tensor, Tensor]:
        """timesteps (B, N) in [0, 1000] -> temb (B, N, D), modulation (B, N, 6, D)."""
        features = sinusoidal_embedding(timesteps, self.freq_dim).to(self.linear_1.weight.dtype)
        temb = self.linear_2(F.silu(self.linear_1(features)))
        modulation = self.proj(F.silu(temb)).unflatten(-1, (6, -1))
        return temb, modulation


class TextProjection(nn.Module):
    """Text-encoder features (umT5: 4096-d) -> video-branch width, for cross-attention."""

    def __init__(self, text_dim: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(text_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, text: Tensor) -> Tensor:
        return self.linear_2(F.gelu(self.linear_1(text), approximate="tanh"))


class PatchEmbedding(nn.Module):
    """Latents (B, C, F, H, W) -> tokens (B, F' H' W', D), patches of ``patch_size`` (t, h, w) in
    frame-major, then row-major order (Wan's token order)."""

    def __init__(self, channels: int, dim: int, patch_size: tuple[int, int, int]):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = nn.Conv3d(channels, dim, kernel_size=self.patch_size, stride=self.patch_size)

    def forward(self, latents: Tensor) -> Tensor:
        return self.proj(latents).flatten(2).transpose(1, 2)


class ActionEmbedding(nn.Module):
    """One token per action step (docs/method.md §2): a two-layer MLP over the action vector."""

    def __init__(self, action_channels: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(action_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, actions: Tensor) -> Tensor:
        """actions (B, N, action_channels) -> tokens (B, N, D)."""
        return self.linear_2(F.silu(self.linear_1(actions)))
