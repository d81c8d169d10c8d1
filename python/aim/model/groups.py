"""The model's input: a sequence of token groups, each carrying its data and noise level.

A group is one run of tokens of one kind and chunk (docs/method.md §5: O, A, X, M, Ah). Video-like groups
(observation, future video, future value) carry latents (B, C, F, H, W) and one timestep per
latent frame; action groups carry (B, N, action_channels) and one timestep per action step.
Timesteps are in Wan's units, sigma * 1000 (0 = clean).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aim.ops.token_groups import TokenKind

Tensor = torch.Tensor

STREAM_OF_KIND = {
    TokenKind.OBSERVATION: "video",
    TokenKind.VIDEO: "video",
    TokenKind.VALUE: "value",
    TokenKind.ACTION: "action",
    TokenKind.FUTURE_ACTION: "action",
}
NOISY_KINDS = (TokenKind.VIDEO, TokenKind.VALUE, TokenKind.FUTURE_ACTION)


@dataclass
class StreamGroup:
    """One group of the sequence.

    ``start`` is the time position (in latent frames) of the group's first frame or action;
    ``step`` the time between consecutive action tokens (1 / actions per latent frame).
    """

    kind: TokenKind
    data: Tensor
    timesteps: Tensor
    chunk: int = 0
    start: float = 0.0
    step: float = 1.0

    @property
    def stream(self) -> str:
        return STREAM_OF_KIND[self.kind]

    @property
    def is_video_like(self) -> bool:
        return self.stream != "action"

    @property
    def is_noisy(self) -> bool:
        return self.kind in NOISY_KINDS
