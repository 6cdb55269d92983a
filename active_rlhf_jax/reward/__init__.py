"""Reward model: network, likelihoods, posterior samples and jittable trainer."""

from active_rlhf_jax.reward.model import RewardModel, make_reward_model
from active_rlhf_jax.reward.posterior import ClipPosterior, compute_clip_posterior
from active_rlhf_jax.reward.trainer import (
    Batch,
    FitStats,
    RewardTrainer,
    RewardTrainState,
    make_reward_trainer,
)

__all__ = [
    "Batch",
    "ClipPosterior",
    "FitStats",
    "RewardModel",
    "RewardTrainState",
    "RewardTrainer",
    "compute_clip_posterior",
    "make_reward_model",
    "make_reward_trainer",
]
