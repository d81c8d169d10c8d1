"""GRPO's pieces (docs/method.md §6): group-normalised advantages and the clipped-ratio objective, no critic.

G episodes start from the same simulator seed; each episode's advantage is its return minus the
group's mean, over the group's standard deviation (Shao et al. 2024, DeepSeekMath, §4.1), and is
shared by every denoising transition of the episode's actions (as Flow-GRPO does). The loss per
transition is PPO's -min(rho A, clip(rho, 1 - eps, 1 + eps) A), rho = pi / pi_old the exact ratio
of the SDE's Gaussian transitions; an optional KL to the Stage I action stream is the closed form
for two Gaussians of the same width, |mu - mu_ref|^2 / (2 std^2).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor
ADVANTAGE_EPS = 1e-4  # keeps a group of near-equal returns from blowing its advantages up


@dataclass(frozen=True)
class GRPOConfig:
    group_size: int = 8  # G episodes per seed
    clip_epsilon: float = 0.2  # PPO's epsilon
    kl_weight: float = 0.0  # beta; 0 disables the KL to the Stage I action stream
    epochs: int = 2  # optimisation passes over each batch of rollouts
    noise_level: float = 0.7  # the SDE's a (Flow-GRPO's default)

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ValueError(f"GRPOConfig.group_size must be >= 2 (advantages are relative to the group), "
                             f"got {self.group_size}")
        if not self.clip_epsilon > 0:
            raise ValueError(f"GRPOConfig.clip_epsilon must be > 0, got {self.clip_epsilon}")
        if self.kl_weight < 0:
            raise ValueError(f"GRPOConfig.kl_weight must be >= 0, got {self.kl_weight}")
        if self.epochs < 1:
            raise ValueError(f"GRPOConfig.epochs must be >= 1, got {self.epochs}")
        if not self.noise_level > 0:
            raise ValueError(f"GRPOConfig.noise_level must be > 0, got {self.noise_level}")


def group_advantages(returns: Tensor) -> Tensor:
    """(groups, G) advantages of (groups, G) returns, normalised within each group."""
    if returns.dim() != 2 or returns.shape[1] < 2:
        raise ValueError(f"group_advantages: returns must be (groups, G) with G >= 2, got {tuple(returns.shape)}")
    mean = returns.mean(1, keepdim=True)
    std = returns.std(1, unbiased=False, keepdim=True)
    return (returns - mean) / (std + ADVANTAGE_EPS)


def clipped_objective(log_probs: Tensor, old_log_probs: Tensor, advantages: Tensor,
                      clip_epsilon: float) -> tuple[Tensor, Tensor]:
    """Per-transition PPO loss and whether its ratio was clipped; ``advantages`` broadcast
    against the log-probs (e.g. (B,) against (S, B))."""
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = ratio.clamp(1 - clip_epsilon, 1 + clip_epsilon)
    loss = -torch.minimum(ratio * advantages, clipped * advantages)
    return loss, (ratio - 1).abs() > clip_epsilon


def gaussian_kl(means: Tensor, reference_means: Tensor, stds: Tensor) -> Tensor:
    """(S, B) KL between same-width Gaussian transitions; means (S, B, ...), stds (S,)."""
    squared = ((means - reference_means) ** 2).flatten(2).sum(2)
    return squared / (2 * stds[:, None] ** 2)
