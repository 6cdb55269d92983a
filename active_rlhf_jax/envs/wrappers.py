"""Batched training wrapper: vmapped envs with auto-reset, truncation and final obs.

Every episode in this project ends at a fixed horizon (truncation) unless
``terminate_when_unhealthy`` is set. PPO must bootstrap a truncated episode from the
observation *before* the reset, so the wrapper keeps it in ``info['final_obs']``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from active_rlhf_jax.batched_cond import any_in_batch
from active_rlhf_jax.envs.base import Env, EnvState


class TrainingEnv:
    """``num_envs`` copies of ``env`` stepped in lock-step.

    ``state.info`` carries, per env (leading axis ``[B]``):
      * ``steps``: env steps since the last reset (int32);
      * ``truncation``: 1.0 where the last step hit the horizon without terminating;
      * ``final_obs``: observation reached by the last step, before any reset
        ``[B, obs]`` (equal to ``state.obs`` where no reset happened);
      * ``key``: per-env PRNG key used for the next reset.

    After a step, ``state.done`` is 1.0 where the episode ended (termination *or*
    truncation) and ``state.obs`` is already the first observation of the next episode.
    ``state.reward`` is the true reward of the step just taken.

    The reset is computed under one ``lax.cond`` for the whole batch, only when at least one
    env finished: with the fixed horizon all envs finish together, so resets cost one
    forward every ``episode_length`` steps instead of every step. Under an outer ``vmap``
    (e.g. over seeds) the predicate is the OR over that batch
    (:func:`~active_rlhf_jax.batched_cond.any_in_batch`), so the cond stays a cond instead
    of a select that would reset on every step.
    """

    def __init__(self, env: Env, num_envs: int):
        if num_envs <= 0:
            raise ValueError(f"num_envs: must be positive, got {num_envs}")
        self.env = env
        self.num_envs = num_envs
        self.observation_size = env.observation_size
        self.action_size = env.action_size
        self.episode_length = env.episode_length
        self.action_low = env.action_low
        self.action_high = env.action_high

    def _reset_batch(self, keys: jax.Array) -> EnvState:
        return jax.vmap(self.env.reset)(keys)

    def reset(self, key: jax.Array) -> EnvState:
        """key -> batched state with leading axis ``[num_envs]``."""
        key_reset, key_next = jax.random.split(key)
        state = self._reset_batch(jax.random.split(key_reset, self.num_envs))
        info = dict(state.info)
        info["steps"] = jnp.zeros((self.num_envs,), jnp.int32)
        info["truncation"] = jnp.zeros((self.num_envs,), state.reward.dtype)
        info["final_obs"] = state.obs
        info["key"] = jax.random.split(key_next, self.num_envs)
        return state.replace(info=info)

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        """state ``[B]``, action ``[B, action_size]`` -> next state ``[B]`` (auto-reset)."""
        if action.shape != (self.num_envs, self.action_size):
            raise ValueError(
                f"action: expected shape ({self.num_envs}, {self.action_size}), "
                f"got {tuple(action.shape)}"
            )
        info = dict(state.info)
        inner = state.replace(info={k: v for k, v in info.items() if k not in _WRAPPER_KEYS})
        nxt = jax.vmap(self.env.step)(inner, action)
        steps = info["steps"] + 1
        terminated = nxt.done > 0
        truncated = jnp.logical_and(steps >= self.episode_length, ~terminated)
        ended = jnp.logical_or(terminated, truncated)
        final_obs = nxt.obs

        split = jax.vmap(lambda k: jax.random.split(k, 2))(info["key"])
        key_reset, key_carry = split[:, 0], split[:, 1]

        def do_reset(s: EnvState) -> EnvState:
            fresh = self._reset_batch(key_reset)

            def pick(a, b):
                mask = ended.reshape(ended.shape + (1,) * (a.ndim - 1))
                return jnp.where(mask, a, b)

            return jax.tree.map(pick, fresh.replace(reward=s.reward, done=s.done), s)

        # any_in_batch: under the seed vmap the cond stays a cond (do_reset changes no env
        # that did not end, so running it for a seed whose envs all go on is harmless).
        nxt = jax.lax.cond(any_in_batch(jnp.any(ended)), do_reset, lambda s: s, nxt)
        new_info = dict(nxt.info)
        new_info["steps"] = jnp.where(ended, 0, steps).astype(jnp.int32)
        new_info["truncation"] = truncated.astype(nxt.reward.dtype)
        new_info["final_obs"] = final_obs
        new_info["key"] = jnp.where(ended[:, None], key_carry, info["key"])
        return nxt.replace(done=ended.astype(nxt.reward.dtype), info=new_info)


_WRAPPER_KEYS = ("steps", "truncation", "final_obs", "key")
