"""The Stage II episode loop: what it records is what ran, its log-probs are the ones an update
recomputes, and its dense reward reads the chunk's own value map at the commanded targets."""

import numpy as np
import pytest
import torch

from aim.eval.policy import AIMPolicy
from aim.model.sampler import SamplerConfig, sigma_schedule
from aim.rl.action_context import context_velocity
from aim.rl.batching import batched_chunks
from aim.rl.episode import run_rl_episode
from aim.rl.reward import dense_rewards
from aim.rl.sde import SDESchedule, transition_log_probs, transition_means
from aim.rl.update import RecordedChunk
from tests.eval.helpers import TASKS, PointEnv, PointSuite, tiny_bundle

SAMPLER = SamplerConfig(video_steps=2, guidance_scale=2.0, action_steps=4)
SCHEDULE = SDESchedule(sigma_schedule(SAMPLER.action_steps, SAMPLER.action_shift), 0.7)
MAX_STEPS = 12


def _episode(policy, member, seed=11):
    generator = torch.Generator().manual_seed(100 + member)
    return run_rl_episode(policy, PointSuite(), TASKS[0], seed, member, generator, SCHEDULE, MAX_STEPS)


def _replay(policy, episode):
    """Runs the recorded actions in a fresh environment: the positions after each step, and the
    step at which it succeeded (None if it never did)."""
    env = PointEnv(policy.bundle.cameras, policy.bundle.image_size)
    env.reset(episode.seed)
    positions, succeeded = [], None
    for chunk in episode.chunks:
        for action in policy.environment_actions(chunk.path.actions):
            if len(positions) == episode.steps:
                break
            result = env.step(np.clip(action, -1.0, 1.0))
            positions.append(env.position.copy())
            if result.success and succeeded is None:
                succeeded = len(positions)
    return np.array(positions), succeeded, env


@pytest.fixture(scope="module")
def policy():
    return AIMPolicy(tiny_bundle(action_std=[3.0, 3.0, 3.0, 1.0], action_mean=[0.0, 0.0, 0.0, 0.0]), SAMPLER)


def test_recorded_chunks_are_what_ran(policy):
    for member in range(3):
        episode = _episode(policy, member)
        positions, succeeded, _ = _replay(policy, episode)
        assert len(positions) == episode.steps
        assert episode.success == (succeeded == episode.steps)
        assert episode.steps == MAX_STEPS or episode.success
        per_chunk = policy.actions_per_chunk
        assert len(episode.chunks) == -(-episode.steps // per_chunk)


def test_group_members_act_differently(policy):
    first, second = _episode(policy, 0), _episode(policy, 1)
    assert not torch.equal(first.chunks[0].path.actions, second.chunks[0].path.actions)
    again = _episode(policy, 0)
    assert torch.equal(first.chunks[-1].path.states, again.chunks[-1].path.states)


def test_recorded_log_probs_equal_the_updates_recomputation(policy):
    """The update recomputes log-probs from the kept context with fresh KV (grpo_update's path);
    under the sampling weights they are the recorded ones."""
    episode = _episode(policy, 2)
    assert len(episode.chunks) >= 2  # the later chunks' contexts hold executed history
    model, structure = policy.bundle.model, policy.bundle.structure
    for chunk in episode.chunks:
        states = chunk.path.states
        with torch.no_grad():
            means = transition_means(context_velocity(model, structure, chunk.context), states, SCHEDULE)
            recomputed = transition_log_probs(means, states, SCHEDULE)
        torch.testing.assert_close(recomputed, chunk.path.log_probs, rtol=1e-6, atol=1e-4)


def test_dense_reward_reads_the_chunks_value_map_at_the_targets(policy):
    """Step t reads frame t // frame_stride of its chunk's decoded value map at the point the
    actions command (for PointEnv: where the point is after step t)."""
    episode = _episode(policy, 0)
    positions, _, env = _replay(policy, episode)
    bundle, stride, per_chunk = policy.bundle, policy.frame_stride, policy.actions_per_chunk
    layout = bundle.layout
    intrinsics = torch.from_numpy(np.stack([env.intrinsics()[c] for c in layout.cameras]))
    extrinsics = torch.from_numpy(np.stack([env.extrinsics()[c] for c in layout.cameras]))
    expected = []
    for c, chunk in enumerate(episode.chunks):
        steps = range(c * per_chunk, min((c + 1) * per_chunk, episode.steps))
        heat = torch.from_numpy(policy.decode_heat(chunk.context.value)).double()
        frames = torch.tensor([(t - c * per_chunk) // stride for t in steps])
        targets = torch.from_numpy(positions[list(steps)])[:, None]
        expected.append(dense_rewards(heat[frames], targets, intrinsics, extrinsics.expand(len(steps), -1, -1, -1),
                                      layout, bundle.image_size))
    expected = torch.cat(expected)
    assert episode.dense.shape == (episode.steps,)
    torch.testing.assert_close(episode.dense, expected)
    assert expected.std() > 0  # the map and the targets vary: a wrong frame or step would show


def test_a_model_without_value_stream_has_no_dense_reward():
    policy = AIMPolicy(tiny_bundle(value_stream=False), SAMPLER)
    episode = _episode(policy, 0)
    assert episode.dense.numel() == 0 and episode.chunks[0].context.value is None


def test_batched_chunks_keep_every_episodes_log_probs(policy):
    """Chunks of several episodes stacked into one pass give each episode's recorded log-probs and
    advantage; chunks at different positions (other layouts) stay apart."""
    episodes = [_episode(policy, member) for member in range(3)]
    recorded = [RecordedChunk(c.context, c.path, torch.tensor([float(m)]))
                for m, e in enumerate(episodes) for c in e.chunks]
    stacks = batched_chunks(recorded, max_batch=2)
    assert sum(s.path.log_probs.shape[1] for s in stacks) == len(recorded)
    assert max(s.path.log_probs.shape[1] for s in stacks) == 2
    model, structure = policy.bundle.model, policy.bundle.structure
    for stack in stacks:
        with torch.no_grad():
            means = transition_means(context_velocity(model, structure, stack.context), stack.path.states, SCHEDULE)
            recomputed = transition_log_probs(means, stack.path.states, SCHEDULE)
        torch.testing.assert_close(recomputed, stack.path.log_probs, rtol=1e-5, atol=1e-3)
    by_advantage = sorted(float(a) for s in stacks for a in s.advantages)
    assert by_advantage == sorted(float(r.advantages) for r in recorded)
