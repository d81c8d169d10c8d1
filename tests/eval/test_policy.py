"""``AIMPolicy``: action shapes and units, normalisation both ways, cached == uncached rollout,
decoded value maps, and clear errors."""

import dataclasses

import numpy as np
import pytest
import torch

from aim.eval.episode import observe
from aim.eval.policy import AIMPolicy
from aim.model.sampler import SamplerConfig

from .helpers import TASKS, PointEnv, tiny_bundle

SAMPLER = SamplerConfig(video_steps=2, guidance_scale=2.0, action_steps=3)


def _frames(env: PointEnv, actions: np.ndarray, stride: int):
    """Executes ``actions`` and returns the observations at every ``stride``-th step."""
    frames = []
    for i, action in enumerate(actions):
        env.step(action)
        if (i + 1) % stride == 0:
            frames.append(observe(env))
    return frames


def _two_chunks(policy: AIMPolicy, seed: int = 7):
    """Actions of the first two chunks of an episode of PointEnv from ``seed``."""
    bundle = policy.bundle
    env = PointEnv(bundle.cameras, bundle.image_size)
    env.reset(seed)
    policy.reset(TASKS[0], observe(env), episode_seed=seed, task=TASKS[0])
    first = policy.predict().actions
    executed = np.clip(first, -1, 1)
    policy.observe(_frames(env, executed, policy.frame_stride), executed)
    return first, policy.predict().actions


def test_actions_have_the_chunk_shape_and_environment_units():
    mean, std = torch.tensor([0.5, -1.0, 2.0, 0.0]), torch.tensor([0.1, 3.0, 0.5, 1.0])
    plain = AIMPolicy(tiny_bundle(), SAMPLER, seed=3)
    scaled = AIMPolicy(tiny_bundle(action_mean=mean, action_std=std), SAMPLER, seed=3)
    first_plain, _ = _two_chunks(plain)
    first_scaled, _ = _two_chunks(scaled)
    structure = plain.bundle.structure
    assert first_plain.shape == (structure.actions_per_chunk, 4) and first_plain.dtype == np.float64
    # Same weights and noise: the model's (z-scored) output is the same, de-normalised on the way out.
    np.testing.assert_allclose(first_scaled, first_plain * std.numpy() + mean.numpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(first_plain).max() > 0.1


def test_executed_actions_return_normalised(rng):
    """A policy with statistics told it executed a continues like a policy without them told
    (a - mean) / std: the model only ever reads z-scored actions."""
    mean, std = torch.tensor([0.2, 0.1, -0.3, 0.0]), torch.tensor([2.0, 0.5, 1.5, 4.0])
    scaled = AIMPolicy(tiny_bundle(action_mean=mean, action_std=std), SAMPLER, seed=1)
    plain = AIMPolicy(tiny_bundle(), SAMPLER, seed=1)
    env = PointEnv(scaled.bundle.cameras, scaled.bundle.image_size)
    env.reset(3)
    first = observe(env)
    executed = rng.uniform(-1, 1, (scaled.actions_per_chunk, 4))
    frames = _frames(env, executed, scaled.frame_stride)
    second = []
    for policy, told in ((scaled, executed), (plain, (executed - mean.numpy()) / std.numpy())):
        policy.reset(TASKS[0], first, episode_seed=3, task=TASKS[0])
        policy.predict()
        policy.observe(frames, told)
        second.append(policy.predict().actions)
    np.testing.assert_allclose(second[0], second[1] * std.numpy() + mean.numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("guidance", [2.0, 1.0])
def test_kv_cached_policy_equals_uncached(guidance):
    sampler = SamplerConfig(video_steps=2, guidance_scale=guidance, action_steps=3)
    bundle = tiny_bundle(seed=int(torch.randint(0, 1000, ())))
    cached = _two_chunks(AIMPolicy(bundle, sampler, seed=5, use_cache=True))
    full = _two_chunks(AIMPolicy(bundle, sampler, seed=5, use_cache=False))
    for a, b in zip(cached, full):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert not np.allclose(cached[0], cached[1])  # the second chunk is not a replay of the first


def test_noise_depends_on_the_episode_seed_only():
    bundle = tiny_bundle()
    policy = AIMPolicy(bundle, SAMPLER, seed=0)
    env = PointEnv(bundle.cameras, bundle.image_size)
    env.reset(0)
    first = observe(env)
    chunks = []
    for episode_seed in (11, 12, 11):
        policy.reset(TASKS[1], first, episode_seed, task=TASKS[1])
        chunks.append(policy.predict().actions)
    np.testing.assert_array_equal(chunks[0], chunks[2])
    assert not np.allclose(chunks[0], chunks[1])


def test_value_maps_are_decoded_heat_on_the_canvas():
    bundle = tiny_bundle()
    policy = AIMPolicy(bundle, SAMPLER)
    env = PointEnv(bundle.cameras, bundle.image_size)
    env.reset(0)
    policy.reset(TASKS[0], observe(env), 0, task=TASKS[0])
    chunk = policy.predict(value_maps=True)
    assert chunk.value_maps.shape == (policy.frames_per_chunk, bundle.layout.height, bundle.layout.width)
    assert chunk.value_maps.min() >= 0 and chunk.value_maps.max() <= 1 and chunk.value_maps.std() > 0
    assert chunk.latency_s > 0
    assert policy.predict().value_maps is None


def test_model_without_value_stream_has_no_value_maps():
    bundle = tiny_bundle(value_stream=False)
    policy = AIMPolicy(bundle, SAMPLER)
    env = PointEnv(bundle.cameras, bundle.image_size)
    env.reset(0)
    policy.reset(TASKS[0], observe(env), 0, task=TASKS[0])
    chunk = policy.predict(value_maps=True)
    assert chunk.value_maps is None and chunk.actions.shape == (bundle.structure.actions_per_chunk, 4)


def test_errors_name_the_problem():
    bundle = tiny_bundle()
    policy = AIMPolicy(bundle, SAMPLER)
    with pytest.raises(RuntimeError, match="reset"):
        policy.predict()
    env = PointEnv(bundle.cameras, bundle.image_size)
    env.reset(0)
    first = observe(env)
    policy.reset(TASKS[0], first, 0, task=TASKS[0])
    actions = policy.predict().actions
    with pytest.raises(ValueError, match="observed at 2 frames"):
        policy.observe([first], actions)
    with pytest.raises(ValueError, match="executed actions must be"):
        policy.observe([first, first], actions[:-1])
    small = PointEnv(bundle.cameras, (4, 4))
    small.reset(0)
    with pytest.raises(ValueError, match=r"must be \(8, 8, 3\) uint8"):
        policy.reset(TASKS[0], observe(small), 0, task=TASKS[0])
    with pytest.raises(KeyError, match="unknown tasks"):
        policy.reset("fly away", first, 0, task="fly")
    with pytest.raises(ValueError, match="disagree"):
        AIMPolicy(dataclasses.replace(bundle, frame_stride=3))
