"""Group rollouts: the same groups for any number of workers, and workers act with the weights
they are sent."""

import torch

from aim.eval.seeds import eval_seeds
from aim.model.sampler import SamplerConfig
from aim.rl.rollouts import (
    RL_SEED_OFFSET,
    GroupRollouts,
    RolloutSettings,
    training_seeds,
)

from .toy_suite import TASK, LineSuite, stage_one_checkpoint

SETTINGS = RolloutSettings(SamplerConfig(video_steps=2, guidance_scale=2.0, action_steps=3), noise_level=0.7,
                           max_steps=8, seed=3)
GROUPS = [(TASK, 2_000_000), (TASK, 2_000_001)]


def _summary(groups):
    return [[(e.task, e.seed, e.member, e.success, e.steps) for e in group] for group in groups]


def _action_weights(model, shift=0.0):
    return {n: p.detach() + shift for n, p in model.named_parameters() if n.startswith("heads.action.")}


def test_groups_do_not_depend_on_the_number_of_workers(tmp_path):
    checkpoint = stage_one_checkpoint(tmp_path / "stage1")
    from aim.runtime.bundle import load_bundle

    weights = _action_weights(load_bundle(checkpoint).model)
    with GroupRollouts(checkpoint, SETTINGS, LineSuite(), workers=1) as one:
        first = one.run(GROUPS, 2, weights, version=1)
    with GroupRollouts(checkpoint, SETTINGS, LineSuite(), workers=2) as two:
        second = two.run(GROUPS, 2, weights, version=1)
        moved = two.run(GROUPS, 2, _action_weights(load_bundle(checkpoint).model, 0.05), version=2)
    assert _summary(first) == _summary(second)
    assert [[e.member for e in g] for g in first] == [[0, 1], [0, 1]]
    flat = lambda groups: [episode for group in groups for episode in group]
    for a, b, c in zip(flat(first), flat(second), flat(moved)):
        assert len(a.chunks) == len(b.chunks)
        torch.testing.assert_close(a.dense, b.dense, rtol=0, atol=0)
        for x, y in zip(a.chunks, b.chunks):
            assert torch.equal(x.path.states, y.path.states) and torch.equal(x.path.log_probs, y.path.log_probs)
            assert torch.equal(x.context.video, y.context.video)
        # Other weights, other actions: the update reaches the workers.
        assert not torch.equal(a.chunks[0].path.actions, c.chunks[0].path.actions)
    # Members of a group start from the same state and act differently.
    a, b = first[0][0].chunks[0], first[0][1].chunks[0]
    assert torch.equal(a.context.history[0].data, b.context.history[0].data)
    assert not torch.equal(a.path.actions, b.path.actions)


def test_training_seeds_are_apart_from_evaluation_and_collection():
    seeds = training_seeds(0, 3) + training_seeds(1, 3)
    assert seeds == [RL_SEED_OFFSET + i for i in range(6)]
    assert not set(seeds) & set(eval_seeds(1000)) and min(seeds) > 1000
