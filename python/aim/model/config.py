"""Model configurations: one dataclass and named presets.

The video branch follows Wan2.2's transformer exactly (so its weights load unchanged); the action
branch has the same depth and a narrower width (docs/method.md §3); value tokens run through the video branch
unless ``value_own_weights`` gives them their own.

Parameters of the presets (``aim.model.parameter_counts``, meta device; "value" counts the value stream's
own patch embedding, token, time embedding and head, plus its branch when it has one):

| preset | total | video branch | value stream | action stream | total, value_own_weights |
|---|---:|---:|---:|---:|---:|
| wan22-5b | 5,521,819,024 | 4,999,787,712 | 68,063,424 | 453,967,888 | 10,431,520,144 |
| aim-1b | 1,560,979,984 | 1,419,390,144 | 17,516,736 | 124,073,104 | 2,954,201,104 |
| tiny | 209,244 | 140,492 | 33,036 | 35,716 | 310,492 |
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class AIMConfig:
    """Widths, depths and channel counts of :class:`~aim.model.transformer.AIMTransformer`.

    ``dim`` is the video branch width and also the shared attention width (``num_heads`` heads of
    ``dim // num_heads``); every stream projects its Q/K/V to it (docs/method.md §3).
    """

    num_layers: int = 30
    dim: int = 3072
    num_heads: int = 24
    ffn_dim: int = 14336
    latent_channels: int = 48
    patch_size: tuple[int, int, int] = (1, 2, 2)
    text_dim: int = 4096
    freq_dim: int = 256
    action_dim: int = 768
    action_ffn_dim: int = 3584
    action_channels: int = 16
    value_own_weights: bool = False
    # False: no value stream at all (the ablation that measures what the value map buys).
    value_stream: bool = True
    # A key of aim.ops.token_groups.RULES: docs/method.md §5's table, or an ablation of it.
    attention_rule: str = "intent_causal"
    cross_attn_norm: bool = True
    eps: float = 1e-6
    rope_theta: float = 10000.0

    def __post_init__(self) -> None:
        positive = ("num_layers", "dim", "num_heads", "ffn_dim", "latent_channels", "text_dim", "freq_dim",
                    "action_dim", "action_ffn_dim", "action_channels")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"AIMConfig.{name} must be a positive int, got {value!r}")
        if self.dim % self.num_heads:
            raise ValueError(
                f"AIMConfig: dim {self.dim} is not divisible by num_heads {self.num_heads} "
                "(the attention width is num_heads x head_dim)"
            )
        if len(self.patch_size) != 3 or any(not isinstance(p, int) or p < 1 for p in self.patch_size):
            raise ValueError(f"AIMConfig.patch_size must be three positive ints (t, h, w), got {self.patch_size!r}")
        if self.freq_dim % 2:
            raise ValueError(f"AIMConfig.freq_dim must be even (cos and sin halves), got {self.freq_dim}")
        if self.value_own_weights and not self.value_stream:
            raise ValueError("AIMConfig: value_own_weights=True needs value_stream=True")
        from aim.ops.token_groups import rule_by_name

        rule_by_name(self.attention_rule)
        head_dim = self.head_dim
        # 3-D RoPE splits head_dim into time / height / width bands of even sizes (Wan's split).
        if head_dim % 2 or head_dim < 8:
            raise ValueError(f"AIMConfig: head_dim {head_dim} must be even and >= 8 for the 3-D RoPE split")

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    @property
    def patch_volume(self) -> int:
        return math.prod(self.patch_size)

    def replace(self, **changes) -> "AIMConfig":
        return dataclasses.replace(self, **changes)


PRESETS: dict[str, AIMConfig] = {
    # Wan2.2-TI2V-5B video branch (diffusers config of Wan-AI/Wan2.2-TI2V-5B-Diffusers) plus the
    # paper's 768-wide action stream; RoboTwin end-effector actions are 16-d (ECOSYSTEM.md).
    "wan22-5b": AIMConfig(),
    # A ~1.5B model for GPU benchmarks: Wan2.1-1.3B's widths (1536, 12 heads, FFN 8960) on
    # Wan2.2's 48-channel latents.
    "aim-1b": AIMConfig(num_layers=30, dim=1536, num_heads=12, ffn_dim=8960, action_dim=384, action_ffn_dim=2240),
    # Trains on a laptop CPU in minutes: pixel-patch latents (3 x 2 x 2 = 12 channels) and a
    # learned per-task text embedding.
    "tiny": AIMConfig(
        num_layers=2, dim=64, num_heads=4, ffn_dim=128, latent_channels=12, patch_size=(1, 1, 1),
        text_dim=32, freq_dim=32, action_dim=32, action_ffn_dim=64, action_channels=4,
    ),
}


def preset(name: str, **changes) -> AIMConfig:
    """The named preset, with optional field changes."""
    if name not in PRESETS:
        raise KeyError(f"unknown AIM preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name].replace(**changes) if changes else PRESETS[name]
