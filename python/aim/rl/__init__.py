"""``aim.rl``: Stage II self-distillation RL (docs/method.md §6): GRPO on the action stream, rewarded by the
model's own value maps.

Map (one job per module):

* ``sde``            — the action sampler's Euler ODE as an SDE; Gaussian log-prob of every denoising step
* ``action_context`` — a chunk's conditioning (history, denoised video/value) and the action velocity given it
* ``reward``         — r_t = lambda_d M_t(Pi(p_t)) + lambda_s r_sparse, read with ``aim.ops.sample_value_maps``
* ``action_stream``  — which parameters train (the action stream) and freezing the rest
* ``grpo``           — group-normalised advantages, the clipped-ratio objective, the KL to Stage I
* ``update``         — one GRPO update (several epochs) from recorded chunks
* ``episode``        — one episode acting with the SDE: its recorded chunks and per-step dense reward
* ``rollouts``       — groups of G episodes per simulator seed in parallel workers, training seeds
* ``config``         — :class:`RLConfig`, YAML presets (``presets/``), dotted overrides
* ``loop``           — :func:`reinforce` (``aim rl``): rollouts, advantages, updates, checkpoints, metrics

The run directory ``aim rl`` writes is read by ``aim eval`` like a Stage I run.
"""

from aim.rl.action_context import ChunkContext, context_velocity, denoise_chunk
from aim.rl.action_stream import freeze_all_but_action_stream, is_action_stream
from aim.rl.config import RLConfig, load_rl_config
from aim.rl.episode import RLEpisode, SampledChunk, run_rl_episode
from aim.rl.grpo import GRPOConfig, clipped_objective, group_advantages
from aim.rl.loop import RLResult, reinforce
from aim.rl.reward import RewardConfig, dense_rewards, episode_return
from aim.rl.rollouts import GroupRollouts, RolloutSettings
from aim.rl.sde import (
    SDESchedule,
    Transitions,
    sample_transitions,
    transition_log_probs,
    transition_means,
)
from aim.rl.update import RecordedChunk, grpo_update

__all__ = [
    "ChunkContext",
    "GRPOConfig",
    "GroupRollouts",
    "RLConfig",
    "RLEpisode",
    "RLResult",
    "RecordedChunk",
    "RewardConfig",
    "RolloutSettings",
    "SDESchedule",
    "SampledChunk",
    "Transitions",
    "clipped_objective",
    "context_velocity",
    "denoise_chunk",
    "dense_rewards",
    "episode_return",
    "freeze_all_but_action_stream",
    "group_advantages",
    "grpo_update",
    "is_action_stream",
    "load_rl_config",
    "reinforce",
    "run_rl_episode",
    "sample_transitions",
    "transition_log_probs",
    "transition_means",
]
