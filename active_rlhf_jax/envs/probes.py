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
* ``probe/linear``: 25 steps; obs = a fresh ``x ~ U[-1, 1]^10`` every step, 1-D action,
  reward = ``w . x + a / 2`` with ``w_i = (-0.8)^i``. Optimum ``a = 1``, expected return
  12.5. The acquisition probe: ranking its clips is a noiseless linear ranking problem,
  where BALD should beat random queries (see :class:`LinearRanking`).
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


class LinearRanking(_Probe):
    """``probe/linear``: the acquisition probe (a noiseless linear ranking problem).

    25 steps; obs = a fresh ``x ~ U[-1, 1]^10`` every step, 1-D action,
    reward = ``w . x + a / 2`` with ``w_i = (-0.8)^i`` (i = 0..9). Optimum: ``a = 1`` every
    step, expected return 12.5 (the observation term has mean 0 whatever the policy).

    Why it is a fair test of acquisition: a clip's return is a fixed linear function of its
    summed inputs, ``w . sum_t x_t + sum_t a_t / 2``, which the reward MLP can represent,
    over bounded inputs (no outlier clips). Ranking the pool is then learning a direction in
    11 dimensions from exact comparisons, the textbook case where queries chosen by posterior
    disagreement beat random ones (active learning of halfspaces): once the first labels fix
    the rough direction, most random pairs compare clips whose order the model already has
    right and add little, while the pairs the posterior disagrees on are those near the
    current decision boundary. The decaying weights leave part of the ranking to minor
    directions that random pairs seldom resolve. Nothing else favours an acquisition
    method: both arms get the same teacher, budget and metric (Spearman over the whole pool,
    the distribution random pairs are drawn from). On ``probe/target`` BALD was no better
    than random (docs/acquisition.md, "Acquisition value"): there the posterior's
    disagreement did not point at the model's mistakes.
    """

    env_id = "probe/linear"
    episode_length = 25
    observation_size = 10
    action_size = 1
    weights = (-0.8) ** np.arange(10, dtype=np.float32)

    def _draw(self, key):
        key_x, key_next = jax.random.split(key)
        x = jax.random.uniform(key_x, (self.observation_size,), minval=-1.0, maxval=1.0)
        return x, key_next

    def reset(self, key):
        x, key_next = self._draw(key)
        return self._state(key_next, x, jnp.zeros(()))

    def step(self, state, action):
        action = self.check_action(action)
        reward = jnp.dot(jnp.asarray(self.weights, state.obs.dtype), state.obs) + 0.5 * action[0]
        x, key_next = self._draw(state.data)
        return self._state(key_next, x, reward)


PROBES = {
    cls.env_id: cls
    for cls in (ActionReward, ConstantReward, ObsReward, TargetReward, LinearRanking)
}
