"""``AIMPolicy``: a trained AIM model acting in closed loop, one chunk at a time (docs/method.md §7).

Per episode: :meth:`AIMPolicy.reset` observes the first frame; then :meth:`AIMPolicy.predict`
denoises the next chunk (future video, value maps, actions) and returns its actions in the
environment's units; once the chunk has run, :meth:`AIMPolicy.observe` hands the real frames (one
every ``frame_stride`` steps) and the actions actually executed back to the KV-cached
:class:`~aim.model.sampler.Rollout`, which replaces the imagined chunk with them.

Frames are encoded exactly as training encodes clips (views packed into the canvas, then
``aim.runtime.preprocessing``' encoding, the contract both sides share). Actions leave de-normalised (``action_std``,
``action_mean``) and executed actions return normalised, since the model reads and writes
z-scored actions. Noise comes from a generator seeded by (policy seed, episode seed), so an
episode's actions depend on its seed only, not on which worker runs it or in what order.

Stage II RL (``aim.rl``) drives the same episode with its own action sampler: it hands
:meth:`AIMPolicy.reset` a generator per group member, samples each chunk from :attr:`AIMPolicy.rollout`,
and converts with :meth:`AIMPolicy.environment_actions` and :meth:`AIMPolicy.decode_heat`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from aim.eval.observation import Observation, canvas_frames
from aim.model.sampler import Rollout, SamplerConfig
from aim.runtime.preprocessing import (
    decode_latents,
    denormalize_actions,
    encode_canvases,
    encode_text,
    normalize_actions,
    text_prompts,
)

Tensor = torch.Tensor


@dataclass(frozen=True)
class Chunk:
    """One predicted chunk: ``actions`` (N, A) in environment units, N = ``actions_per_chunk``;
    ``value_maps`` (F, Hc, Wc) heat in [0, 1] on the canvas, one per frame the chunk will be
    observed at (None unless asked for, or when the model has no value stream); ``latency_s``:
    seconds from the chunk's observations to its actions (encoding, cache update, denoising)."""

    actions: np.ndarray
    value_maps: np.ndarray | None
    latency_s: float


class AIMPolicy:
    """A :class:`~aim.runtime.bundle.ModelBundle` driving one episode at a time."""

    def __init__(self, bundle, sampler_config: SamplerConfig = SamplerConfig(), seed: int = 0,
                 use_cache: bool = True) -> None:
        self.bundle, self.sampler_config, self.seed, self.use_cache = bundle, sampler_config, seed, use_cache
        structure, tokenizer = bundle.structure, bundle.tokenizer
        if structure.actions_per_frame != bundle.frame_stride * tokenizer.temporal_compression:
            raise ValueError(
                f"AIMPolicy: a latent frame spans {structure.actions_per_frame} actions, but frames arrive every "
                f"{bundle.frame_stride} steps and the tokenizer packs {tokenizer.temporal_compression} per latent "
                "frame; the bundle's structure, frame_stride and tokenizer disagree")
        # A chunk's actions span frames_per_chunk * temporal_compression observed frames (see
        # aim.runtime.preprocessing for the frame bookkeeping); the first observation, (O - 1) k + 1.
        self.frames_per_chunk = structure.frames_per_chunk * tokenizer.temporal_compression
        if tokenizer.latent_frames(self.frames_per_chunk) != structure.frames_per_chunk:
            raise ValueError(f"AIMPolicy: the tokenizer makes {tokenizer.latent_frames(self.frames_per_chunk)} latent "
                             f"frames of a chunk's {self.frames_per_chunk} frames, the model expects "
                             f"{structure.frames_per_chunk}")
        self.initial_frames = _pixel_frames(tokenizer, structure.observation_frames)
        parameter = next(bundle.model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        self._rollout: Rollout | None = None
        self._pending_latency = 0.0

    @property
    def actions_per_chunk(self) -> int:
        return self.bundle.structure.actions_per_chunk

    @property
    def frame_stride(self) -> int:
        return self.bundle.frame_stride

    @property
    def rollout(self) -> Rollout:
        """The current episode's KV-cached rollout."""
        return self._require_episode()

    def reset(self, instruction: str, observation: Observation, episode_seed: int,
              generator: torch.Generator | None = None, task: str | None = None) -> None:
        """Starts an episode of ``task`` (its id; what a per-task embedding conditions on) under
        ``instruction`` (what a text encoder reads) at ``observation``. A model observing several
        frames before its first chunk sees this one repeated: the robot is at rest when an episode
        starts. ``generator`` replaces the noise seeded by (policy seed, episode seed), for episodes
        that share a seed."""
        prompts = text_prompts(self.bundle.text_encoder, None if task is None else [task], [instruction])
        with torch.no_grad():
            text = encode_text(self.bundle.text_encoder, prompts, self.device).to(self.dtype)
        self._rollout = Rollout(self.bundle.model, self.bundle.structure, text, self.sampler_config,
                                use_cache=self.use_cache)
        self._generator = seeded_generator(self.seed, episode_seed) if generator is None else generator
        start = time.perf_counter()
        self._rollout.observe(self._latents([observation] * self.initial_frames))
        self._pending_latency = time.perf_counter() - start

    def predict(self, value_maps: bool = False) -> Chunk:
        """The next chunk; with ``value_maps`` its predicted value maps decoded to canvas pixels."""
        rollout = self._require_episode()
        start = time.perf_counter()
        _, value, actions = rollout.predict_chunk(self._generator)
        actions = self.environment_actions(actions)
        latency = self._pending_latency + time.perf_counter() - start
        self._pending_latency = 0.0
        heat = self.decode_heat(value) if value_maps and value is not None else None
        return Chunk(actions, heat, latency)

    def observe(self, frames: Sequence[Observation], executed_actions: np.ndarray) -> None:
        """After a chunk ran: its ``frames_per_chunk`` observed frames (every ``frame_stride``-th
        step) and the (N, A) actions executed, in environment units."""
        rollout = self._require_episode()
        if len(frames) != self.frames_per_chunk:
            raise ValueError(f"AIMPolicy.observe: a chunk is observed at {self.frames_per_chunk} frames, got {len(frames)}")
        executed = torch.as_tensor(np.asarray(executed_actions), dtype=torch.float32)
        expected = (self.actions_per_chunk, self.bundle.model.config.action_channels)
        if tuple(executed.shape) != expected:
            raise ValueError(f"AIMPolicy.observe: executed actions must be {expected}, got {tuple(executed.shape)}")
        start = time.perf_counter()
        normalised = normalize_actions(executed, self.bundle.action_mean, self.bundle.action_std)
        normalised = normalised[None].to(self.device, self.dtype)
        rollout.observe(self._latents(frames), normalised)
        self._pending_latency = time.perf_counter() - start

    # ------------------------------------------------------------------ conversions
    def environment_actions(self, actions: Tensor) -> np.ndarray:
        """(N, A) float64 actions in environment units of the model's (1, N, A) z-scored ones."""
        bundle = self.bundle
        return denormalize_actions(actions[0].float().cpu(), bundle.action_mean, bundle.action_std).numpy().astype(
            np.float64)

    def decode_heat(self, value: Tensor) -> np.ndarray:
        """(F, Hc, Wc) heat in [0, 1] of (1, C, f, h, w) value latents: decoded like frames, channels
        averaged (value maps are encoded as one heat replicated to 3 channels, docs/method.md §4)."""
        return decode_latents(self.bundle.tokenizer, value.float())[0].mean(1).cpu().numpy()

    def _require_episode(self) -> Rollout:
        if self._rollout is None:
            raise RuntimeError("AIMPolicy: call reset() with the episode's first observation first")
        return self._rollout

    def _latents(self, observations: Sequence[Observation]) -> Tensor:
        """(1, C, F, h, w) latents of the observations, encoded as training encodes clip frames."""
        frames = canvas_frames(self.bundle.layout, observations, tuple(self.bundle.image_size))
        return encode_canvases(self.bundle.tokenizer, frames[None].to(self.device)).to(self.dtype)


def seeded_generator(*keys: int) -> torch.Generator:
    """A generator seeded by the tuple ``keys`` (e.g. policy seed, episode seed): distinct tuples
    give independent streams (numpy's SeedSequence mixes them)."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(keys)).generate_state(1)[0]))


def _pixel_frames(tokenizer, latent_frames: int) -> int:
    """The fewest input frames the tokenizer turns into ``latent_frames`` latent frames."""
    for frames in range(1, latent_frames * tokenizer.temporal_compression + 1):
        if tokenizer.latent_frames(frames) == latent_frames:
            return frames
    raise ValueError(f"tokenizer {type(tokenizer).__name__} makes no {latent_frames} latent frames from up to "
                     f"{latent_frames * tokenizer.temporal_compression} input frames")
