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


class GridPositionEmbedding(nn.Module):
    """**[decision]** An absolute (row, column) embedding added to video-like tokens: sinusoids
    of the token's place on the latent grid, through a learned projection that starts at zero (a
    pretrained Wan, which has only RoPE, starts unchanged).

    RoPE moves only queries and keys, so what an attention *reads* (the values) carries no
    position: a query can prefer tokens by place but learns where a token is only through deep
    stacks of relative attention. Actions need exactly that (where the object is, in pixels); a
    two-layer model trained from scratch gets it from this embedding (``AIMConfig.grid_position_embedding``).
    """

    def __init__(self, dim: int, features: int = 32, max_period: float = 256.0):
        super().__init__()
        self.features, self.max_period = features, max_period
        self.weight = nn.Parameter(torch.zeros(dim, 2 * features))

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.weight)

    def forward(self, height: int, width: int) -> Tensor:
        """(height * width, dim), row-major like the patch embedding's tokens."""
        rows = torch.arange(height, device=self.weight.device).repeat_interleave(width)
        cols = torch.arange(width, device=self.weight.device).repeat(height)
        features = torch.cat([sinusoidal_embedding(rows, self.features, self.max_period),
                              sinusoidal_embedding(cols, self.features, self.max_period)], dim=-1)
        return features.to(self.weight.dtype) @ self.weight.t()


class ActionEmbedding(nn.Module):
    """One token per action step (spec §2): a two-layer MLP over the action vector."""

    def __init__(self, action_channels: int, dim: int):
        super().__init__()
        self.linear_1 = nn.Linear(action_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, actions: Tensor) -> Tensor:
        """actions (B, N, action_channels) -> tokens (B, N, D)."""
        return self.linear_2(F.silu(self.linear_1(actions)))
