"""Probe envs and the TrainingEnv wrapper (auto-reset, truncation, final obs)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.envs import TrainingEnv, make


def test_unknown_id_lists_known_ids():
    with pytest.raises(ValueError, match="env_id.*probe/target"):
        make("NoSuchEnv-v0")


def test_constant_probe_truncates_and_keeps_final_obs():
    env = TrainingEnv(make("probe/constant"), 3)
    step = jax.jit(env.step)
    state = env.reset(jax.random.PRNGKey(0))
    for _ in range(10):
        state = step(state, jnp.zeros((3, 1)))
    # Step 10 hits the horizon: done and truncation set, final obs = 10/10, obs reset to 0.
    np.testing.assert_allclose(state.done, 1.0)
    np.testing.assert_allclose(state.info["truncation"], 1.0)
    np.testing.assert_allclose(state.info["final_obs"][:, 0], 1.0)
    np.testing.assert_allclose(state.obs[:, 0], 0.0)
    np.testing.assert_array_equal(state.info["steps"], 0)
    state = step(state, jnp.zeros((3, 1)))
    np.testing.assert_allclose(state.done, 0.0)
    np.testing.assert_allclose(state.obs[:, 0], 0.1, rtol=1e-6)


def test_action_shape_error():
    env = TrainingEnv(make("probe/target"), 2)
    state = env.reset(jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="action"):
        env.step(state, jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="action"):
        make("probe/target").step(make("probe/target").reset(jax.random.PRNGKey(0)), jnp.zeros((2,), jnp.int32))


def test_target_probe_reward_formula():
    env = make("probe/target")
    state = env.reset(jax.random.PRNGKey(3))
    a = jnp.array([0.5, -0.25])
    nxt = env.step(state, a)
    expected = 1.0 - 0.5 * float(jnp.sum((a - state.obs) ** 2))
    assert float(nxt.reward) == pytest.approx(expected, rel=1e-6)
    # Actions are clipped to [-1, 1] before the reward: a=(5,5) acts as (1,1).
    far = env.step(state, jnp.array([5.0, 5.0]))
    assert float(far.reward) == pytest.approx(1.0 - 0.5 * float(jnp.sum((1.0 - state.obs) ** 2)), rel=1e-6)
