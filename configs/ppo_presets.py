"""PPO presets, each a ``dataclasses.replace`` on the defaults.

* ``sb3``: the reference project's Stable-Baselines3 settings (seed_spec section 13):
  1 env x 2048 steps, minibatch 64, 10 epochs, ent_coef 0.01, constant lr 3e-4
  (Swimmer 2.5e-4, Reacher 1e-4).
* ``parallel``: for accelerators: 256 envs x 32-step unrolls (8192 transitions per
  update), minibatch 1024, 10 epochs, lr 3e-4 linearly annealed.
"""

from __future__ import annotations

import dataclasses

from active_rlhf_jax.ppo.config import PPOConfig, TrainConfig

#: Per-task learning rate of the reference (``PPO_LR`` in its configs).
SB3_LEARNING_RATES = {"Swimmer-v5": 2.5e-4, "Reacher-v5": 1e-4}

SB3_PPO = dataclasses.replace(
    PPOConfig(),
    num_envs=1,
    num_steps=2048,
    minibatch_size=64,
    update_epochs=10,
    ent_coef=0.01,
    learning_rate=3e-4,
)

PARALLEL_PPO = dataclasses.replace(
    SB3_PPO,
    num_envs=256,
    num_steps=32,
    minibatch_size=1024,
    update_epochs=10,
    ent_coef=0.0,
    anneal_lr=True,
)


def _lr(env_id: str) -> float:
    return SB3_LEARNING_RATES.get(env_id, 3e-4)


def sb3(env_id: str = "HalfCheetah-v5", total_timesteps: int = 1_000_000, **kw) -> TrainConfig:
    """The reference's SB3 PPO on ``env_id``; ``kw`` overrides TrainConfig fields."""
    ppo = dataclasses.replace(SB3_PPO, learning_rate=_lr(env_id))
    return TrainConfig(env_id=env_id, total_timesteps=total_timesteps, ppo=ppo, **kw)


def parallel(env_id: str = "HalfCheetah-v5", total_timesteps: int = 1_000_000, **kw) -> TrainConfig:
    """Many envs, short unrolls, large minibatches (accelerator throughput)."""
    ppo = dataclasses.replace(PARALLEL_PPO, learning_rate=_lr(env_id))
    return TrainConfig(env_id=env_id, total_timesteps=total_timesteps, ppo=ppo, **kw)


PRESETS = {"sb3": sb3, "parallel": parallel}
