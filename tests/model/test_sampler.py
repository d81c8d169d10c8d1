"""Sampling: the KV-cached rollout equals full recomputation, long episodes slide a window shaped
like a training clip, and actions never read X_c's keys."""

import pytest
import torch

from aim.model import KVCache
from aim.model.clip import (
    ClipStructure,
    future_action_group,
    future_video_groups,
    observation_group,
)
from aim.model.sampler import Rollout, SamplerConfig, sigma_schedule
from aim.ops import TokenKind

from .helpers import tiny_model

STRUCTURE = ClipStructure(num_chunks=2, observation_frames=1, frames_per_chunk=2, actions_per_frame=2)

CHUNKS = 4  # past STRUCTURE.num_chunks, so the history window slides


def _rollout(model, config: SamplerConfig, use_cache: bool, text, observations, executed):
    rollout = Rollout(model, STRUCTURE, text, config, use_cache=use_cache)
    rollout.observe(observations[0])
    chunks = []
    for c in range(CHUNKS):
        chunks.append(rollout.predict_chunk(torch.Generator().manual_seed(10 + c)))
        rollout.observe(observations[c + 1], executed[c])
    return chunks


@pytest.mark.parametrize(
    "guidance, changes",
    [(2.0, {}), (1.0, {}), (2.0, {"value_stream": False}), (1.0, {"attention_rule": "actions_see_video"})],
)
def test_cached_rollout_equals_full_recompute(guidance, changes):
    config = SamplerConfig(video_steps=3, guidance_scale=guidance, action_steps=3)
    model = tiny_model(**changes).eval()
    c = model.config
    g = torch.Generator().manual_seed(0)
    text = torch.randn(2, 5, c.text_dim, generator=g)
    observations = [torch.randn(2, c.latent_channels, f, 4, 4, generator=g) for f in (1,) + (2,) * CHUNKS]
    executed = [torch.randn(2, STRUCTURE.actions_per_chunk, c.action_channels, generator=g) for _ in range(CHUNKS)]
    cached = _rollout(model, config, True, text, observations, executed)
    full = _rollout(model, config, False, text, observations, executed)
    for chunk_cached, chunk_full in zip(cached, full):
        for a, b in zip(chunk_cached, chunk_full):
            if a is None or b is None:
                assert a is b is None and not model.config.value_stream
                continue
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    assert cached[0][2].shape == (2, STRUCTURE.actions_per_chunk, c.action_channels)


@pytest.mark.parametrize("use_cache", [True, False])
def test_long_episode_sees_the_window_a_training_clip_would(use_cache):
    """Chunk 3 of an episode is generated exactly as chunk 1 of a fresh episode whose first
    observation is the last frame before chunk 2 and whose first chunk executed chunk 2's actions:
    the window a two-chunk training clip starting at chunk 2 has. The full history gives other
    actions (so the test can tell)."""
    config = SamplerConfig(video_steps=2, guidance_scale=2.0, action_steps=2)
    model = tiny_model().eval()
    c = model.config
    g = torch.Generator().manual_seed(1)
    text = torch.randn(1, 5, c.text_dim, generator=g)
    observations = [torch.randn(1, c.latent_channels, f, 4, 4, generator=g) for f in (1, 2, 2, 2)]
    executed = [torch.randn(1, STRUCTURE.actions_per_chunk, c.action_channels, generator=g) for _ in range(3)]
    long = Rollout(model, STRUCTURE, text, config, use_cache=use_cache)
    long.observe(observations[0])
    for chunk in range(3):
        long.predict_chunk(torch.Generator().manual_seed(chunk))
        long.observe(observations[chunk + 1], executed[chunk])
    assert (long.episode_chunk, long.chunk) == (3, STRUCTURE.num_chunks - 1)
    fresh = Rollout(model, STRUCTURE, text, config, use_cache=use_cache)
    fresh.observe(observations[2][:, :, -1:])
    fresh.observe(observations[3], executed[2])
    windowed = long.predict_chunk(torch.Generator().manual_seed(7))
    expected = fresh.predict_chunk(torch.Generator().manual_seed(7))
    for a, b in zip(windowed, expected):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    unbounded = Rollout(model, STRUCTURE.__class__(num_chunks=4, observation_frames=1, frames_per_chunk=2,
                                                   actions_per_frame=2), text, config, use_cache=use_cache)
    unbounded.observe(observations[0])
    for chunk in range(3):
        unbounded.predict_chunk(torch.Generator().manual_seed(chunk))
        unbounded.observe(observations[chunk + 1], executed[chunk])
    assert (unbounded.predict_chunk(torch.Generator().manual_seed(7))[2] - expected[2]).abs().max() > 1e-3


def test_action_queries_ignore_future_video_keys_in_every_layer():
    """In the action pass, overwriting X_c's cached keys and values in all layers changes nothing;
    overwriting M_c's changes the actions."""
    model = tiny_model().eval()
    c = model.config
    g = torch.Generator().manual_seed(0)
    text = torch.randn(1, 5, c.text_dim, generator=g)
    video, value = (torch.randn(1, c.latent_channels, 2, 4, 4, generator=g) for _ in range(2))
    actions = torch.randn(1, STRUCTURE.actions_per_chunk, c.action_channels, generator=g)
    obs = observation_group(STRUCTURE, 0, torch.randn(1, c.latent_channels, 1, 4, 4, generator=g), torch.zeros(1, 1))
    chunk = future_video_groups(STRUCTURE, 0, video, value, torch.zeros(1, 2))
    ah = future_action_group(STRUCTURE, 0, actions, torch.full((1, actions.shape[1]), 500.0))

    def actions_after(corrupt_kind):
        cache = KVCache(len(model.blocks))
        with torch.no_grad():
            model([obs], text, cache=cache, commit=True)
            model(chunk, text, cache=cache, commit=True)
            if corrupt_kind is not None:
                rows = cache.token_kinds() == int(corrupt_kind)
                for layer in range(len(model.blocks)):
                    cache.keys[layer][:, rows] = torch.randn_like(cache.keys[layer][:, rows])
                    cache.values[layer][:, rows] = torch.randn_like(cache.values[layer][:, rows])
            return model([ah], text, cache=cache)[0]

    base = actions_after(None)
    torch.testing.assert_close(actions_after(TokenKind.VIDEO), base, rtol=0, atol=0)
    assert (actions_after(TokenKind.VALUE) - base).abs().max() > 1e-3


def test_schedule_and_errors():
    s = sigma_schedule(4, 5.0)
    assert s[0] == 1 and s[-1] == 0 and torch.all(s.diff() < 0)
    with pytest.raises(ValueError, match="step counts"):
        SamplerConfig(video_steps=0)
    model = tiny_model()
    rollout = Rollout(model, STRUCTURE, torch.randn(1, 5, model.config.text_dim))
    with pytest.raises(ValueError, match="observe"):
        rollout.predict_chunk()
    with pytest.raises(ValueError, match="first chunk"):
        rollout.observe(torch.randn(1, model.config.latent_channels, 1, 4, 4), torch.randn(1, 4, model.config.action_channels))
    rollout.observe(torch.randn(1, model.config.latent_channels, 1, 4, 4))
    with pytest.raises(ValueError, match="executed actions"):
        rollout.observe(torch.randn(1, model.config.latent_channels, 2, 4, 4))
