"""Running observation normaliser with SB3 ``VecNormalize`` semantics.

The statistics (mean, var, count) start at (0, 1, 1e-4) as SB3's
``RunningMeanStd(epsilon=1e-4)`` and are merged with each batch by the parallel
(Chan et al.) formula, so one merge of a ``[T*B]`` batch equals T merges of ``[B]``
batches up to rounding. Normalised obs = clip((obs - mean) / sqrt(var + 1e-8), +-clip).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ObsNormState:
    """mean ``[obs]``, var ``[obs]`` (population variance), count ``[]``."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array


def init_obs_norm(obs_size: int, count_init: float = 1e-4, dtype=None) -> ObsNormState:
    dtype = dtype or jnp.zeros(()).dtype
    return ObsNormState(
        mean=jnp.zeros((obs_size,), dtype),
        var=jnp.ones((obs_size,), dtype),
        count=jnp.asarray(count_init, dtype),
    )


def update_obs_norm_stats(state: ObsNormState, obs: jax.Array) -> ObsNormState:
    """Merge a batch ``[..., obs]`` (all leading axes flattened) into the statistics."""
    x = obs.reshape(-1, obs.shape[-1]).astype(state.mean.dtype)
    batch_count = jnp.asarray(x.shape[0], state.mean.dtype)
    batch_mean = jnp.mean(x, axis=0)
    batch_var = jnp.var(x, axis=0)
    delta = batch_mean - state.mean
    total = state.count + batch_count
    new_mean = state.mean + delta * batch_count / total
    m2 = state.var * state.count + batch_var * batch_count
    m2 = m2 + jnp.square(delta) * state.count * batch_count / total
    return ObsNormState(mean=new_mean, var=m2 / total, count=total)


def normalize_obs(
    state: ObsNormState, obs: jax.Array, clip: float = 10.0, eps: float = 1e-8
) -> jax.Array:
    """obs ``[..., obs]`` -> normalised and clipped obs, same shape."""
    z = (obs - state.mean) / jnp.sqrt(state.var + eps)
    return jnp.clip(z, -clip, clip).astype(obs.dtype)


@struct.dataclass
class RewardNormState:
    """SB3 ``VecNormalize`` reward scaling: statistics of the discounted return.

    Attributes:
        stats: running mean/var/count of the discounted return (an ``ObsNormState`` of
            size 1; only its variance is used, as in SB3).
        discounted: ``[B]`` discounted return of each env's episode in progress.
    """

    stats: ObsNormState
    discounted: jax.Array


def init_reward_norm(num_envs: int, count_init: float = 1e-4, dtype=None) -> RewardNormState:
    dtype = dtype or jnp.zeros(()).dtype
    return RewardNormState(
        stats=init_obs_norm(1, count_init, dtype), discounted=jnp.zeros((num_envs,), dtype)
    )


def normalize_rewards(
    state: RewardNormState,
    rewards: jax.Array,
    dones: jax.Array,
    gamma: float,
    clip: float = 10.0,
    eps: float = 1e-8,
) -> tuple[RewardNormState, jax.Array]:
    """Scale a rollout's rewards ``[T, B]`` as SB3's ``VecNormalize`` does, step by step.

    For each step t: ``G = gamma * G + r_t``; merge the ``[B]`` values of G into the
    statistics; ``r_t / sqrt(var + eps)`` clipped to ``+-clip``; G is zeroed where
    ``dones[t]``. The scaled rewards are what PPO learns from.

    Returns:
        (new state, scaled rewards ``[T, B]``).
    """

    def step(st: RewardNormState, x):
        r, d = x
        g = st.discounted * gamma + r
        stats = update_obs_norm_stats(st.stats, g[:, None])
        scaled = jnp.clip(r / jnp.sqrt(stats.var[0] + eps), -clip, clip)
        return RewardNormState(stats=stats, discounted=jnp.where(d > 0, 0.0, g)), scaled

    dtype = state.discounted.dtype
    return jax.lax.scan(step, state, (rewards.astype(dtype), dones.astype(dtype)))
