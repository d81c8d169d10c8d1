"""What the demo does: its tasks, variants and budgets, and where each stage writes under OUT.

The defaults are sized for a 2-core CPU; ``QUICK`` is a smoke run of every stage. The stages
themselves are in ``aim.demo.pipeline``; the report reads the same paths (``aim.demo.report``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from aim.errors import UsageError
from aim.model.sampler import SamplerConfig
from aim.sim.metaworld_env import check_task

# Short Meta-World tasks whose object position changes with the seed (the policy must look: 19 cm
# across seeds along x), and whose scripted experts succeed in 29-80 steps. A button pressed from
# the front (coffee-button-v3) rather than button-press-topdown-v3's 2 cm button pressed from
# above, which the tiny model does not solve at this budget (benchmarks/RESULTS.md).
DEMO_TASKS = ("handle-press-v3", "drawer-close-v3", "coffee-button-v3")

# Variant name -> training-config overrides (everything else is shared).
VARIANTS: dict[str, tuple[str, ...]] = {
    "aim": (),
    "no-value-map": ("model.value_stream=false",),
    "actions-see-video": ("model.attention_rule=actions_see_video",),
}
TRAIN_PRESET = "tiny-metaworld"
RL_PRESET = "tiny-metaworld"
RL_VARIANT = "aim+rl"  # the AIM run after Stage II


@dataclass(frozen=True)
class DemoSettings:
    """How much the demo does; the defaults are sized for a 2-core CPU (benchmarks/RESULTS.md
    records how long they take and what they reach)."""

    tasks: tuple[str, ...] = DEMO_TASKS
    train_episodes: int = 64  # expert episodes per task (seeds 0 .. n-1)
    eval_episodes: int = 30  # closed-loop episodes per task (held-out seeds): +-10 points on the mean at 95%
    image_size: int = 32  # rendered view side, pixels (the model sees the preset's 16-pixel views)
    # No anti-aliasing: the CPU renders a view in less than half the time, and halving the views
    # for the model's canvas averages 4 samples per pixel anyway (measured in benchmarks/RESULTS.md).
    multisample: int | None = 0
    # Views rendered every 4th step: half the preset's frame stride, so clips start on every 4th step
    # (clips start on rendered rows) at a quarter of the rendering.
    frame_every: int = 4
    train_steps: int = 1200
    variants: tuple[str, ...] = tuple(VARIANTS)
    eval_max_steps: int = 160  # about twice the slowest expert's episode
    # 4 action steps act as well as 8 (the three variants, three training seeds: benchmarks/RESULTS.md)
    # in 10 forwards per chunk instead of 14.
    sampler: SamplerConfig = SamplerConfig(video_steps=4, guidance_scale=1.0, action_steps=4)
    workers: int = 2  # processes collecting and evaluating (training runs one process per variant)
    overrides: tuple[str, ...] = field(default=())  # extra training-config overrides for every variant
    rl_iterations: int = 0  # Stage II iterations on the aim variant (0: no RL stage)
    rl_overrides: tuple[str, ...] = field(default=())  # extra RL-config overrides

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise UsageError(f"DemoSettings: unknown variants {unknown}; known: {list(VARIANTS)}")
        if not self.tasks or self.train_episodes < 1 or self.eval_episodes < 1 or self.train_steps < 1:
            raise UsageError("DemoSettings: need tasks, and train_episodes, eval_episodes, train_steps >= 1")
        if self.rl_iterations < 0 or (self.rl_iterations and "aim" not in self.variants):
            raise UsageError(f"DemoSettings: rl_iterations must be >= 0 and needs the aim variant, got "
                             f"{self.rl_iterations} with variants {list(self.variants)}")
        if self.workers < 1:
            raise UsageError(f"DemoSettings: workers must be >= 1 (processes collecting and evaluating), got {self.workers}")
        if self.image_size < 2 or self.frame_every < 1 or self.eval_max_steps < 1:
            raise UsageError(f"DemoSettings: need image_size >= 2, frame_every >= 1 and eval_max_steps >= 1, got "
                             f"{self.image_size}, {self.frame_every}, {self.eval_max_steps}")
        if self.rl_iterations and self.sampler.action_steps < 2:
            raise UsageError(f"DemoSettings: Stage II samples actions with an SDE of at least 2 steps, but "
                             f"sampler.action_steps is {self.sampler.action_steps}")

    def check(self) -> None:
        """What the fields alone cannot tell: every task exists (this imports Meta-World). The demo
        calls it before any stage starts."""
        for task in self.tasks:
            check_task(task)

    @property
    def evaluated(self) -> tuple[str, ...]:
        """The runs evaluated and reported: the trained variants, then aim+rl with an RL stage."""
        return self.variants + ((RL_VARIANT,) if self.rl_iterations else ())


# A smoke run of every stage in a few minutes: budgets far too small for a meaningful success rate.
QUICK = DemoSettings(tasks=DEMO_TASKS[:1], train_episodes=2, eval_episodes=2, image_size=32, train_steps=20,
                     eval_max_steps=24, sampler=SamplerConfig(video_steps=2, guidance_scale=1.0, action_steps=2),
                     overrides=("checkpoint.every=10", "log.sample_every=0", "schedule.warmup_steps=5"),
                     rl_iterations=1, rl_overrides=("rollout.groups_per_task=1", "grpo.group_size=2"))


def run_dir(out: Path, variant: str) -> Path:
    """Where ``variant`` trains (a Stage I or Stage II run directory)."""
    return out / "runs" / variant


def results_path(out: Path, variant: str) -> Path:
    """Where ``variant``'s evaluation results go (its videos beside them)."""
    return out / "eval" / variant / "results.json"
