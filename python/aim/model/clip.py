"""The teacher-forcing clip: which frames and actions form each chunk's groups (docs/method.md §5).

A clip holds ``observation_frames`` latent frames observed before the first chunk, then
``num_chunks`` chunks of ``frames_per_chunk`` future latent frames, each with
``actions_per_frame`` action steps per latent frame (reference: 16 actions at 50 Hz per latent
frame of Wan2.2's 4x temporal VAE at 12.5 Hz). Per chunk c the sequence holds the clean history
known when c starts and the noisy chunk:

* O_c: clean latents of the frames observed since the previous chunk (chunk 0: the initial
  observation frames; chunk c > 0: the frames of chunk c - 1);
* A_c: clean actions executed since the previous chunk (chunk c - 1's; none for chunk 0);
* X_c, M_c, Ah_c: noisy video, value and actions of chunk c's frames.

Time positions (RoPE): a frame sits at its index in the clip; an action at the frame it leads
to plus its fraction of the frame (``i / actions_per_frame``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aim.model.groups import StreamGroup
from aim.ops.token_groups import TokenKind

Tensor = torch.Tensor


@dataclass(frozen=True)
class ClipStructure:
    num_chunks: int = 2
    observation_frames: int = 1
    frames_per_chunk: int = 2
    actions_per_frame: int = 16

    def __post_init__(self) -> None:
        for name in ("num_chunks", "observation_frames", "frames_per_chunk", "actions_per_frame"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClipStructure.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def future_frames(self) -> int:
        return self.num_chunks * self.frames_per_chunk

    @property
    def total_frames(self) -> int:
        return self.observation_frames + self.future_frames

    @property
    def actions_per_chunk(self) -> int:
        return self.frames_per_chunk * self.actions_per_frame

    def chunk_start(self, chunk: int) -> int:
        """Clip frame index of chunk ``chunk``'s first future frame."""
        return self.observation_frames + chunk * self.frames_per_chunk

    def check(self, video: Tensor, value: Tensor | None, actions: Tensor) -> None:
        """Raises a clear error when the tensors do not match this structure (``value`` None:
        a clip for a model without a value stream)."""
        if video.dim() != 5 or video.shape[2] != self.total_frames:
            raise ValueError(f"clip video must be (B, C, {self.total_frames}, H, W) for {self}, got {tuple(video.shape)}")
        if value is not None and (value.shape[:2] != video.shape[:2] or value.shape[2] != self.future_frames
                                  or value.shape[3:] != video.shape[3:]):
            raise ValueError(f"clip value must be (B, C, {self.future_frames}, H, W) like the video, got {tuple(value.shape)}")
        if actions.dim() != 3 or actions.shape[:2] != (video.shape[0], self.future_frames * self.actions_per_frame):
            raise ValueError(
                f"clip actions must be (B, {self.future_frames * self.actions_per_frame}, channels), got {tuple(actions.shape)}"
            )


def observation_group(structure: ClipStructure, chunk: int, latents: Tensor, timesteps: Tensor) -> StreamGroup:
    """O_chunk: latents (B, C, F, H, W) of the frames observed since the previous chunk."""
    start = 0 if chunk == 0 else structure.chunk_start(chunk - 1)
    return StreamGroup(TokenKind.OBSERVATION, latents, timesteps, chunk, float(start))


def executed_action_group(structure: ClipStructure, chunk: int, actions: Tensor) -> StreamGroup:
    """A_chunk (chunk >= 1): clean actions (B, N, channels) executed during chunk - 1."""
    zeros = actions.new_zeros(actions.shape[:2])
    return StreamGroup(TokenKind.ACTION, actions, zeros, chunk, float(structure.chunk_start(chunk - 1)),
                       1.0 / structure.actions_per_frame)


def future_video_groups(structure: ClipStructure, chunk: int, video: Tensor, value: Tensor | None,
                        video_t: Tensor) -> list[StreamGroup]:
    """X_c, M_c: video and value latents (B, C, f, H, W) sharing per-frame timesteps ``video_t``
    (B, f); no M_c when ``value`` is None (a model without a value stream)."""
    start = float(structure.chunk_start(chunk))
    groups = [StreamGroup(TokenKind.VIDEO, video, video_t, chunk, start)]
    if value is not None:
        groups.append(StreamGroup(TokenKind.VALUE, value, video_t, chunk, start))
    return groups


def future_action_group(structure: ClipStructure, chunk: int, actions: Tensor, action_t: Tensor) -> StreamGroup:
    """Ah_c: actions (B, f a, channels) with per-step timesteps ``action_t`` (B, f a)."""
    return StreamGroup(TokenKind.FUTURE_ACTION, actions, action_t, chunk, float(structure.chunk_start(chunk)),
                       1.0 / structure.actions_per_frame)


def teacher_forcing_groups(
    structure: ClipStructure,
    history: Tensor, history_t: Tensor, actions: Tensor,
    noisy_video: Tensor, noisy_value: Tensor | None, noisy_actions: Tensor,
    video_t: Tensor, action_t: Tensor,
) -> list[StreamGroup]:
    """The whole clip as groups (per chunk: O_c, A_c, X_c, M_c, Ah_c; no M_c without ``noisy_value``).

    history (B, C, F_total, H, W) clean (or augmented) latents with per-frame ``history_t``;
    actions (B, F_future a, channels) clean; noisy_* and their timesteps cover the future frames.
    """
    s, f, a = structure, structure.frames_per_chunk, structure.actions_per_frame
    groups = []
    for c in range(s.num_chunks):
        lo = 0 if c == 0 else s.chunk_start(c - 1)
        hi = s.chunk_start(c)
        groups.append(observation_group(s, c, history[:, :, lo:hi], history_t[:, lo:hi]))
        if c > 0:
            groups.append(executed_action_group(s, c, actions[:, (c - 1) * f * a: c * f * a]))
        frames, steps = slice(c * f, (c + 1) * f), slice(c * f * a, (c + 1) * f * a)
        value = None if noisy_value is None else noisy_value[:, :, frames]
        groups += future_video_groups(s, c, noisy_video[:, :, frames], value, video_t[:, frames])
        groups.append(future_action_group(s, c, noisy_actions[:, steps], action_t[:, steps]))
    return groups
