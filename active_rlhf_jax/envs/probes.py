"""Tiny pure-JAX probe environments for fast learning tests.

Each has a known optimum, so tests can assert a learner reaches a stated fraction of it.
All actions are bounded to [-1, 1]; observations are float32 (float64 under x64).

* ``probe/action-reward``: one step, obs = [1], reward = mean(action). Optimum 1.
* ``probe/constant``: 10 steps, obs = [t / 10], reward = 1 always. Return 10 whatever the
  policy; tests the value function and bootstrapping.
* ``probe/obs-reward``: one step, obs = [±1] at random, reward = obs * action. Optimum 1.
* ``probe/target``: 25 steps; obs = a fresh target ``u ~ U[-1, 1]^2`` every step,
  reward = 1 - ||a - u||^2 / 2. Optimum 25. The reward is a smooth function of
  (obs, action), which makes it the probe for reward learning and the RLHF pipeline.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax.envs.base import Env, EnvState


def _float():
    return jnp.zeros(()).dtype  # float32, or float64 under jax_enable_x64


class _Probe(Env):
    episode_length = 1
    observation_size = 1
    action_size = 1

    def __init__(self):
        self.action_low = -np.ones(self.action_size, np.float32)
        self.action_high = np.ones(self.action_size, np.float32)

    def _state(self, data, obs, reward, done=None):
        zero = jnp.zeros((), _float())
        return EnvState(
            data=data,
            obs=obs.astype(_float()),
            reward=reward.astype(_float()),
            done=zero if done is None else done,
            metrics={"reward": reward.astype(_float())},
        )


class ActionReward(_Probe):
    env_id = "probe/action-reward"

    def reset(self, key):
        return self._state(jnp.zeros((), jnp.int32), jnp.ones((1,)), jnp.zeros(()))

    def step(self, state, action):
        action = self.check_action(action)
        return self._state(state.data + 1, jnp.ones((1,)), jnp.mean(action))


class ConstantReward(_Probe):
    env_id = "probe/constant"
    episode_length = 10

    def reset(self, key):
        return self._state(jnp.zeros((), jnp.int32), jnp.zeros((1,)), jnp.zeros(()))

    def step(self, state, action):
        self.check_action(action)
        t = state.data + 1
        return self._state(t, (t / self.episode_length)[None], jnp.ones(()))


class ObsReward(_Probe):
    env_id = "probe/obs-reward"

    def reset(self, key):
        sign = jnp.where(jax.random.bernoulli(key), 1.0, -1.0)
        return self._state(sign, sign[None], jnp.zeros(()))

    def step(self, state, action):
        action = self.check_action(action)
        return self._state(state.data, state.obs, state.data * action[0])


class TargetReward(_Probe):
    env_id = "probe/target"
    episode_length = 25
    observation_size = 2
    action_size = 2

    def reset(self, key):
        key_target, key_next = jax.random.split(key)
        target = jax.random.uniform(key_target, (2,), minval=-1.0, maxval=1.0)
        return self._state(key_next, target, jnp.zeros(()))

    def step(self, state, action):
        action = self.check_action(action)
        reward = 1.0 - 0.5 * jnp.sum((action - state.obs) ** 2)
        key_target, key_next = jax.random.split(state.data)
        target = jax.random.uniform(key_target, (2,), minval=-1.0, maxval=1.0)
        return self._state(key_next, target, reward)


PROBES = {cls.env_id: cls for cls in (ActionReward, ConstantReward, ObsReward, TargetReward)}
