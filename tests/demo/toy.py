"""The toy demo the demo tests share: every stage (Stage II included) at a scale that runs in a
minute or two, run once per test session with a relative output folder, as the README runs it."""

from __future__ import annotations

from aim.demo import DemoSettings
from aim.model.sampler import SamplerConfig

TOY = DemoSettings(
    tasks=("handle-press-v3",), train_episodes=1, eval_episodes=1, image_size=32, train_steps=3,
    variants=("aim", "no-value-map"), eval_max_steps=8, workers=1,
    sampler=SamplerConfig(video_steps=1, guidance_scale=1.0, action_steps=2),
    overrides=("checkpoint.every=3", "log.sample_every=0", "schedule.warmup_steps=1", "train.batch_size=2",
               "train.micro_batch_size=2"),
    rl_iterations=1, rl_overrides=("rollout.groups_per_task=1", "grpo.group_size=2", "grpo.epochs=1"),
)
OUT = "aim-demo"  # relative, as `aim demo` defaults to
