"""PPO (Stable-Baselines3 semantics) as pure JAX functions.

* :func:`make_ppo` -> :class:`PPO` bundle (``init``, ``rollout``, ``update``,
  ``update_obs_norm``, ``act``, ``value``) over :class:`PPOState`.
* :func:`make_ppo_train` -> ``train(key)``: the ground-truth baseline (PPO on the true reward).
* :func:`compute_gae`, :func:`compute_ppo_loss`: the math, standalone.
"""

from active_rlhf_jax.ppo.episodes import compute_episode_returns, deterministic_episodes
from active_rlhf_jax.ppo.learner import PPO, PPOState, Transition, make_ppo
from active_rlhf_jax.ppo.losses import compute_gae, compute_ppo_loss, compute_sb3_advantages
from active_rlhf_jax.ppo.networks import Actor, Critic, make_distribution
from active_rlhf_jax.ppo.normalizer import (
    ObsNormState,
    RewardNormState,
    init_obs_norm,
    init_reward_norm,
    normalize_obs,
    normalize_rewards,
    update_obs_norm_stats,
)
from active_rlhf_jax.ppo.train import TrainState, make_ppo_train

__all__ = [
    "PPO",
    "Actor",
    "Critic",
    "ObsNormState",
    "PPOState",
    "RewardNormState",
    "TrainState",
    "Transition",
    "compute_episode_returns",
    "compute_gae",
    "compute_ppo_loss",
    "deterministic_episodes",
    "compute_sb3_advantages",
    "init_obs_norm",
    "init_reward_norm",
    "make_distribution",
    "make_ppo",
    "make_ppo_train",
    "normalize_obs",
    "normalize_rewards",
    "update_obs_norm_stats",
]
