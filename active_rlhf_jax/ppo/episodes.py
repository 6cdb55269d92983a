"""Episode bookkeeping shared by every trainer and evaluator: running returns over a
rollout, and the deterministic evaluation episodes.

There is one implementation of each: ground-truth PPO (``ppo.make_ppo_train``), the RLHF
pipeline's training metrics and final evaluation, and ``active-rlhf evaluate`` all call
these.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def compute_episode_returns(
    rewards: jax.Array, dones: jax.Array, running: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Sum rewards ``[T, B]`` into episodes that end where ``dones`` ``[T, B]`` is 1.

    Args:
        rewards: ``[T, B]`` per-step rewards.
        dones: ``[T, B]`` 1.0 where the step ended an episode.
        running: ``[B]`` return accumulated before this rollout.

    Returns:
        ``(sum of the completed episodes' returns [], number completed [],
        running return carried into the next rollout [B])``. The sum accumulates in
        time order.
    """

    def step(carry, x):
        acc, total, count = carry
        r, d = x
        acc = acc + r
        total = total + jnp.sum(acc * d)
        count = count + jnp.sum(d)
        return (jnp.where(d > 0, 0.0, acc), total, count), None

    zero = jnp.zeros((), running.dtype)
    (running, total, count), _ = jax.lax.scan(step, (running, zero, zero), (rewards, dones))
    return total, count, running


def deterministic_episodes(act, ppo_state, env, key: jax.Array, horizon: int):
    """One deterministic episode (the Gaussian mean action) in each of ``env``'s envs.

    Args:
        act: the PPO bundle's ``act(ppo_state, raw_obs, key, deterministic)``.
        ppo_state: one seed's PPOState.
        env: a ``TrainingEnv`` of ``E`` envs (``E`` episodes), reset here from ``key``.
        horizon: static number of steps (the task's episode length, or fewer).

    Returns:
        ``(returns [E], lengths [E] int32)``: the true return and length of each env's
        first episode, truncated at ``horizon``.
    """
    env_state = env.reset(key)
    dtype = env_state.reward.dtype

    def step(carry, _):
        env_state, ret, alive, length = carry
        action = act(ppo_state, env_state.obs, key, True)
        nxt = env.step(env_state, action)
        ret = ret + alive * nxt.reward
        length = length + (alive > 0).astype(jnp.int32)
        alive = alive * (1.0 - nxt.done)
        return (nxt, ret, alive, length), None

    zeros = jnp.zeros((env.num_envs,), dtype)
    init = (env_state, zeros, jnp.ones_like(zeros), jnp.zeros((env.num_envs,), jnp.int32))
    (_, ret, _, length), _ = jax.lax.scan(step, init, None, length=horizon)
    return ret, length
