"""Ground-truth PPO: ``make_ppo_train(config) -> train(key)``, PPO on the true reward.

One whole run is one pure function, so seeds are a vmap axis::

    train = make_ppo_train(sb3_preset("HalfCheetah-v5"))
    state, metrics = jax.jit(jax.vmap(train))(jax.random.split(key, 4))

``metrics`` holds per-update arrays ``[num_updates]`` (``[seeds, num_updates]`` under vmap).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from active_rlhf_jax.config import TrainConfig
from active_rlhf_jax.envs import TrainingEnv, make
from active_rlhf_jax.ppo.episodes import compute_episode_returns
from active_rlhf_jax.ppo.learner import PPOState, Transition, make_ppo


@struct.dataclass
class TrainState:
    """Carried through the run: learner, env batch and the running episode returns."""

    ppo: PPOState
    env: object
    episode_return: jax.Array  # [B] true return of the episode in progress


def make_ppo_train(config: TrainConfig, env=None):
    """Validate ``config`` (host side, before tracing) and return ``train(key)``.

    Args:
        config: TrainConfig.
        env: optional pre-built unbatched ``Env`` (default: ``make(env_id, backend)``).

    Returns:
        ``train(key) -> (TrainState, metrics)`` where metrics are ``[num_updates]``:
        ``episode_return`` (mean true return of episodes finished in that rollout, NaN if
        none), ``episodes``, ``env_steps``, and the update's loss statistics.
    """
    config.validate()
    pc = config.ppo
    base = (
        env
        if env is not None
        else make(config.env_id, backend=config.backend, **dict(config.env_options))
    )
    benv = TrainingEnv(base, pc.num_envs)
    ppo = make_ppo(pc, benv, num_updates=config.num_updates)

    def one_update(ts: TrainState, key: jax.Array):
        key_rollout, key_update = jax.random.split(key)
        env_state, tr = ppo.rollout(ts.ppo, ts.env, key_rollout)
        ppo_state = ppo.update_obs_norm(ts.ppo, tr.raw_obs)
        ppo_state, metrics = ppo.update(ppo_state, tr, tr.true_reward, key_update)
        ret_sum, count, running = compute_episode_returns(
            tr.true_reward, tr.done, ts.episode_return
        )
        metrics["episode_return"] = jnp.where(count > 0, ret_sum / jnp.maximum(count, 1), jnp.nan)
        metrics["episodes"] = count
        metrics["env_steps"] = ppo_state.update_step * pc.batch_size
        metrics["mean_reward"] = jnp.mean(tr.true_reward)
        return TrainState(ppo=ppo_state, env=env_state, episode_return=running), metrics

    def train(key: jax.Array):
        key_init, key_env, key_loop = jax.random.split(key, 3)
        ts = TrainState(
            ppo=ppo.init(key_init),
            env=benv.reset(key_env),
            episode_return=jnp.zeros((pc.num_envs,), jnp.zeros(()).dtype),
        )
        return jax.lax.scan(one_update, ts, jax.random.split(key_loop, config.num_updates))

    train.ppo = ppo
    train.env = benv
    return train


__all__ = ["TrainState", "Transition", "make_ppo_train"]
