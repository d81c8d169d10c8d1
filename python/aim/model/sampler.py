"""Inference: Euler sampling with classifier-free guidance and chunk-wise rollout (docs/method.md §7).

Per chunk c, X_c and M_c are denoised together (``video_steps`` Euler steps, CFG on text), then
Ah_c is denoised (``action_steps`` steps, no CFG) attending to the current observation, past
actions and the denoised M_c only (the intent-causal rule; X_c is in the sequence but masked).
After the chunk is executed, :meth:`Rollout.observe` appends the *real* observation latents and
executed actions as clean history; the imagined X_c, M_c are never kept.

With ``use_cache`` the clean history's keys and values are computed once (KV cache) and the
denoised X_c, M_c are added for the action steps only; without it every evaluation recomputes the
whole sequence, which is the reference the cached rollout must equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aim.errors import UsageError
from aim.model.clip import (
    ClipStructure,
    executed_action_group,
    future_action_group,
    future_video_groups,
    observation_group,
)
from aim.model.flow_matching import TIMESTEP_SCALE, shift_sigma
from aim.model.groups import StreamGroup
from aim.model.kv_cache import KVCache

Tensor = torch.Tensor


@dataclass(frozen=True)
class SamplerConfig:
    video_steps: int = 25  # docs/method.md §7 reference
    guidance_scale: float = 5.0  # docs/method.md §7 reference (video and value only)
    action_steps: int = 50  # docs/method.md §7 reference
    video_shift: float = 5.0
    action_shift: float = 1.0

    def __post_init__(self) -> None:
        if self.video_steps < 1 or self.action_steps < 1:
            raise UsageError(f"SamplerConfig: step counts must be >= 1, got {self.video_steps}, {self.action_steps}")


def sigma_schedule(steps: int, shift: float) -> Tensor:
    """(steps + 1,) noise levels from 1 down to 0 on the shifted schedule."""
    return shift_sigma(torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64), shift).float()


class Rollout:
    """Chunk-wise autoregressive generation for a batch of episodes.

    ``text`` (B, L, text_dim) is the instruction; the unconditional branch of CFG uses zeros
    (the text-dropout input of training). Call :meth:`observe` with the initial observation,
    then alternate :meth:`predict_chunk` and :meth:`observe` (real latents, executed actions).

    The model sees at most the training clip's ``structure.num_chunks`` chunks: once an episode
    is longer, the history is a sliding window laid out exactly like a training clip that starts
    ``num_chunks - 1`` chunks ago (its first observation the last ``observation_frames`` frames
    before that chunk, chunk indices and time positions from 0), so every chunk is generated in
    the setting the model was trained in rather than at chunk indices and history lengths it
    never saw. :attr:`history` and :attr:`chunk` are that window's groups and the current
    chunk's index in it.
    """

    def __init__(self, model, structure: ClipStructure, text: Tensor, config: SamplerConfig = SamplerConfig(),
                 use_cache: bool = True):
        self.model, self.structure, self.config, self.use_cache = model, structure, config, use_cache
        self.batch = text.shape[0]
        self.guided = config.guidance_scale != 1.0
        self.text = text
        # CFG runs conditional and unconditional samples as one batch of 2B.
        self.history_text = torch.cat([text, torch.zeros_like(text)]) if self.guided else text
        self.cache = KVCache(len(model.blocks)) if use_cache else None
        self.history: list[StreamGroup] = []
        self.chunk = 0
        self.episode_chunk = 0  # chunks since the episode started (not windowed)
        self._frames: Tensor | None = None  # the window's observed latent frames (B, C, F, H, W)
        self._executed: list[Tensor] = []  # the window's executed actions, one (B, N, channels) per chunk

    # ------------------------------------------------------------------ history
    @torch.no_grad()
    def observe(self, latents: Tensor, executed_actions: Tensor | None = None) -> None:
        """Appends real observation latents (B, C, F, H, W) and, after a chunk, the actions
        (B, f a, channels) executed during it; the first call starts chunk 0."""
        if self.history and executed_actions is None:
            raise ValueError("Rollout.observe: after a chunk, pass the executed actions too")
        if not self.history and executed_actions is not None:
            raise ValueError("Rollout.observe: no action was executed before the first chunk")
        s = self.structure
        if self.history:
            self.episode_chunk += 1
            self._frames = torch.cat([self._frames, latents], dim=2)
            self._executed.append(executed_actions)
        else:
            self._frames = latents
        self._frames = self._frames[:, :, -s.chunk_start(s.num_chunks - 1):]
        self._executed = self._executed[-(s.num_chunks - 1):] if s.num_chunks > 1 else []
        groups = [self._doubled(g) for g in self._window_groups()]
        slid = self.episode_chunk >= s.num_chunks
        new = groups if slid else groups[len(self.history):]
        if self.use_cache:
            if slid:
                self.cache = KVCache(len(self.model.blocks))
            self.model(new, self.history_text, cache=self.cache, commit=True)
        self.history = groups
        self.chunk = min(self.episode_chunk, s.num_chunks - 1)

    def _window_groups(self) -> list[StreamGroup]:
        """The clean history (O, A per chunk) of the window, laid out as a training clip's."""
        s, frames, groups = self.structure, self._frames, []
        for c in range(len(self._executed) + 1):
            lo, hi = (0 if c == 0 else s.chunk_start(c - 1)), s.chunk_start(c)
            groups.append(observation_group(s, c, frames[:, :, lo:hi], frames.new_zeros(frames.shape[0], hi - lo)))
            if c > 0:
                groups.append(executed_action_group(s, c, self._executed[c - 1]))
        return groups

    def _doubled(self, g: StreamGroup) -> StreamGroup:
        if not self.guided:
            return g
        return StreamGroup(g.kind, torch.cat([g.data, g.data]), torch.cat([g.timesteps, g.timesteps]), g.chunk, g.start, g.step)

    # ------------------------------------------------------------------ one chunk
    @torch.no_grad()
    def predict_chunk(self, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None, Tensor]:
        """Imagined video and value latents (B, C, f, H, W) and actions (B, f a, channels) of the
        current chunk, on the observations' latent grid (value None for a model without a value
        stream): :meth:`denoise_video`, then Euler steps on :meth:`action_velocity`."""
        video, value = self.denoise_video(generator)
        velocity = self.action_velocity(video, value)
        c, cfg = self.model.config, self.config
        actions = torch.randn(self.batch, self.structure.actions_per_chunk, c.action_channels, generator=generator)
        actions = actions.to(video.device, video.dtype)
        sigmas = sigma_schedule(cfg.action_steps, cfg.action_shift)
        for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
            actions = actions + (sigma_next - sigma) * velocity(actions, float(sigma))
        return video, value, actions

    @torch.no_grad()
    def denoise_video(self, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor | None]:
        """The current chunk's video and value latents, denoised together (Euler, CFG on text).

        Value denoising starts from Gaussian noise like video's. The paper's "at the start of
        denoising the value input is a black image" (docs/method.md §4) describes the value slot of the
        conditioning frame in its single-sequence layout; here value tokens exist for future
        frames only (M_c), so that slot has no counterpart, and a flow sampler must start at
        sigma = 1 from noise to stay on its training distribution."""
        if not self.history:
            raise ValueError("Rollout: call observe() with the initial observation first")
        s, c, cfg = self.structure, self.model.config, self.config
        observation = self.history[0].data
        shape = (self.batch, c.latent_channels, s.frames_per_chunk, *observation.shape[3:])
        device, dtype = observation.device, observation.dtype
        video = torch.randn(shape, generator=generator).to(device, dtype)
        value = torch.randn(shape, generator=generator).to(device, dtype) if c.value_stream else None
        sigmas = sigma_schedule(cfg.video_steps, cfg.video_shift)
        for sigma, sigma_next in zip(sigmas[:-1], sigmas[1:]):
            v_video, v_value = self._video_velocity(video, value, float(sigma))
            video = video + (sigma_next - sigma) * v_video
            if value is not None:
                value = value + (sigma_next - sigma) * v_value
        return video, value

    def _video_groups(self, video: Tensor, value: Tensor | None, sigma: float) -> list[StreamGroup]:
        video_t = video.new_full((video.shape[0], self.structure.frames_per_chunk), sigma * TIMESTEP_SCALE)
        return future_video_groups(self.structure, self.chunk, video, value, video_t)

    def _action_group(self, actions: Tensor, sigma: float) -> StreamGroup:
        action_t = actions.new_full(actions.shape[:2], sigma * TIMESTEP_SCALE)
        return future_action_group(self.structure, self.chunk, actions, action_t)

    def _video_velocity(self, video: Tensor, value: Tensor | None, sigma: float) -> tuple[Tensor, Tensor | None]:
        """Guided velocities of X_c and M_c (Ah_c cannot affect them, so it is left out)."""
        if self.guided:
            video = torch.cat([video, video])
            value = None if value is None else torch.cat([value, value])
        groups = self._video_groups(video, value, sigma)
        if self.use_cache:
            velocities = self.model(groups, self.history_text, cache=self.cache)
        else:
            velocities = self.model(self.history + groups, self.history_text)[-len(groups):]
        if self.guided:
            velocities = [_guide(v, self.config.guidance_scale) for v in velocities]
        v_video, v_value = velocities if value is not None else (velocities[0], None)
        return v_video, v_value

    def action_velocity(self, video: Tensor, value: Tensor | None):
        """The velocity function ``(actions, sigma) -> velocity`` of Ah_c given the denoised X_c,
        M_c (clean, timestep 0), conditional only (no CFG on actions)."""
        cond = slice(0, self.batch)
        text, clean_chunk = self.text, self._video_groups(video, value, 0.0)
        if self.use_cache:
            cache = self.cache.batch(cond)
            self.model(clean_chunk, text, cache=cache, commit=True)

            def velocity(actions: Tensor, sigma: float) -> Tensor:
                return self.model([self._action_group(actions, sigma)], text, cache=cache)[0]
        else:
            history = [_batch(g, cond) for g in self.history]

            def velocity(actions: Tensor, sigma: float) -> Tensor:
                return self.model(history + clean_chunk + [self._action_group(actions, sigma)], text)[-1]

        return velocity


def _guide(v: Tensor, scale: float) -> Tensor:
    cond, uncond = v.chunk(2)
    return uncond + scale * (cond - uncond)


def _batch(g: StreamGroup, index: slice) -> StreamGroup:
    return StreamGroup(g.kind, g.data[index], g.timesteps[index], g.chunk, g.start, g.step)
