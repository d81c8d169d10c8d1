"""Sample images for TensorBoard: the model's imagined first chunk next to the true one.

For the first clip of a batch, the observation frames are given to the KV-cached rollout
(aim.model.sampler, no guidance), which denoises chunk 0's video and value latents; both are
decoded by the tokenizer. The picture has one row each for the true frames, the predicted
frames, the true value maps and the predicted value maps (no value rows without a value stream),
the chunk's frames left to right.
"""

from __future__ import annotations

import torch

from aim.model.sampler import Rollout, SamplerConfig
from aim.runtime.preprocessing import decode_latents

Tensor = torch.Tensor


@torch.no_grad()
def predicted_vs_true(bundle, video: Tensor, value: Tensor | None, text: Tensor, steps: int,
                      generator: torch.Generator) -> Tensor:
    """An image (3, rows H, f W) in [0, 1] for the first clip of latents ``video`` (B, C, F, h, w),
    ``value`` (B, C, F_future, h, w) or None, and text features (B, L, D)."""
    s = bundle.structure
    config = SamplerConfig(video_steps=steps, guidance_scale=1.0, action_steps=steps)
    rollout = Rollout(bundle.model, s, text[:1], config)
    rollout.observe(video[:1, :, :s.observation_frames])
    predicted_video, predicted_value, _ = rollout.predict_chunk(generator)
    chunk = slice(s.observation_frames, s.observation_frames + s.frames_per_chunk)
    rows = [video[:1, :, chunk], predicted_video]
    if value is not None:
        rows += [value[:1, :, :s.frames_per_chunk], predicted_value]
    pictures = [decode_latents(bundle.tokenizer, latents.float())[0] for latents in rows]  # (f, 3, H, W) each
    return torch.cat([torch.cat(list(frames), dim=-1) for frames in pictures], dim=-2)
