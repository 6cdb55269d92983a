"""Reward model: network, likelihoods, posterior samples and jittable trainer."""

from active_rlhf_jax.reward.fit_state import Batch, FitStats, RewardTrainer, RewardTrainState
from active_rlhf_jax.reward.model import RewardModel, make_reward_model
from active_rlhf_jax.reward.posterior import ClipPosterior, compute_clip_posterior
from active_rlhf_jax.reward.trainer import make_reward_trainer

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
