"""Video tokenizers: frames <-> latents, behind one interface.

Both RGB frames and value maps go through the same tokenizer (docs/method.md §2), so value latents sit on
the video latent grid. :class:`PixelPatchTokenizer` is an exact space-to-depth reshaping for tiny
CPU configs; :class:`WanVAETokenizer` is Wan2.2's VAE (diffusers ``AutoencoderKLWan``, 4x temporal,
16x16 spatial, 48 channels), loaded from a local folder.
"""

from __future__ import annotations

import abc
from pathlib import Path

import torch
from torch import nn

Tensor = torch.Tensor


class VideoTokenizer(nn.Module, abc.ABC):
    """frames (B, 3, T, H, W) in [-1, 1] <-> latents (B, C, F, H / s, W / s)."""

    latent_channels: int
    temporal_compression: int
    spatial_compression: int

    @abc.abstractmethod
    def encode(self, frames: Tensor) -> Tensor: ...

    @abc.abstractmethod
    def decode(self, latents: Tensor) -> Tensor: ...

    def latent_frames(self, frames: int) -> int:
        """Latent frames for ``frames`` input frames."""
        return frames // self.temporal_compression


class PixelPatchTokenizer(VideoTokenizer):
    """Lossless: each (t, s, s) block of pixels becomes one latent vector of 3 t s s channels."""

    def __init__(self, spatial: int = 2, temporal: int = 1):
        super().__init__()
        self.spatial_compression, self.temporal_compression = spatial, temporal
        self.latent_channels = 3 * temporal * spatial * spatial

    def encode(self, frames: Tensor) -> Tensor:
        b, c, t, h, w = frames.shape
        s, k = self.spatial_compression, self.temporal_compression
        if t % k or h % s or w % s:
            raise ValueError(f"PixelPatchTokenizer: frames {tuple(frames.shape)} not divisible by ({k}, {s}, {s})")
        x = frames.reshape(b, c, t // k, k, h // s, s, w // s, s)
        return x.permute(0, 1, 3, 5, 7, 2, 4, 6).reshape(b, c * k * s * s, t // k, h // s, w // s)

    def decode(self, latents: Tensor) -> Tensor:
        b, _, f, h, w = latents.shape
        s, k = self.spatial_compression, self.temporal_compression
        x = latents.reshape(b, 3, k, s, s, f, h, w).permute(0, 1, 5, 2, 6, 3, 7, 4)
        return x.reshape(b, 3, f * k, h * s, w * s)


class WanVAETokenizer(VideoTokenizer):
    """Wan2.2's causal video VAE; latents are normalised with the VAE's per-channel mean and std
    (as the Wan pipelines do), so the transformer sees roughly unit-variance inputs. A clip of
    1 + 4 k frames gives 1 + k latent frames."""

    def __init__(self, path: str | Path, dtype: torch.dtype = torch.float32):
        super().__init__()
        from diffusers import AutoencoderKLWan

        self.vae = AutoencoderKLWan.from_pretrained(str(path), torch_dtype=dtype).eval().requires_grad_(False)
        config = self.vae.config
        self.latent_channels = config.z_dim
        self.temporal_compression = int(config.scale_factor_temporal)
        self.spatial_compression = int(config.scale_factor_spatial)
        shape = (1, config.z_dim, 1, 1, 1)
        self.register_buffer("mean", torch.tensor(config.latents_mean, dtype=torch.float32).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(config.latents_std, dtype=torch.float32).view(shape), persistent=False)

    def latent_frames(self, frames: int) -> int:
        return 1 + (frames - 1) // self.temporal_compression

    @torch.no_grad()
    def encode(self, frames: Tensor) -> Tensor:
        posterior = self.vae.encode(frames.to(self.vae.dtype)).latent_dist
        return (posterior.mode().float() - self.mean) / self.std

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        z = (latents.float() * self.std + self.mean).to(self.vae.dtype)
        return self.vae.decode(z).sample.float()
