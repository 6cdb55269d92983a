"""float64 pipeline checks for the C MuJoCo backend (run with JAX_ENABLE_X64=1).

``tests/test_x64.py`` runs this directory in a subprocess with x64 on; a plain (float32)
pytest run does not collect it (tests/x64/conftest.py).
"""

import pathlib
import sys

import gymnasium as gym
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from active_rlhf_jax.envs.mujoco_physics import MujocoPhysics

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # tests/, for _parity
from _parity import TASK_ENVS  # noqa: E402


def test_physics_float64_fields_are_exact():
    env = gym.make("Ant-v5")
    model = env.unwrapped.model
    phys = MujocoPhysics(model, 5, need_cfrc_ext=True, num_threads=2)
    rng = np.random.default_rng(0)
    qpos = model.qpos0 + rng.uniform(-0.1, 0.1, model.nq)
    qvel = 0.1 * rng.standard_normal(model.nv)
    actions = rng.uniform(-1, 1, (200, model.nu))

    def body(data, a):
        data = phys.step(data, a)
        return data, data

    traj = jax.jit(lambda q, v, a: jax.lax.scan(body, phys.init(q, v), a)[1])(qpos, qvel, actions)
    assert traj.qpos.dtype == jnp.float64 and traj.time.dtype == jnp.float64
    d = mujoco.MjData(model)
    d.qpos[:], d.qvel[:] = qpos, qvel
    mujoco.mj_forward(model, d)
    for t, a in enumerate(actions):
        d.ctrl[:] = a
        mujoco.mj_step(model, d, 5)
        mujoco.mj_rnePostConstraint(model, d)
        np.testing.assert_array_equal(np.asarray(traj.qpos[t]), d.qpos)
        np.testing.assert_array_equal(np.asarray(traj.qvel[t]), d.qvel)
        np.testing.assert_array_equal(np.asarray(traj.xpos[t]), d.xpos)
        np.testing.assert_array_equal(np.asarray(traj.cfrc_ext[t]), d.cfrc_ext)
        assert float(traj.time[t]) == d.time


@pytest.mark.parametrize("env_id", list(TASK_ENVS))
def test_task_parity_with_gymnasium_200_steps(env_id):
    pytest.importorskip("active_rlhf_jax.envs.tasks")
    from active_rlhf_jax.envs import make

    kwargs = TASK_ENVS[env_id]
    ours = make(env_id, backend="mujoco", **kwargs)
    ref = gym.make(env_id, **kwargs).unwrapped
    ref.reset(seed=0)
    state = jax.jit(ours.reset)(jax.random.PRNGKey(0))
    # Put Gymnasium into our reset state (its set_state runs mj_forward, like our init).
    ref.set_state(np.asarray(state.data.qpos), np.asarray(state.data.qvel))
    step = jax.jit(ours.step)
    rng = np.random.default_rng(1)
    low, high = ref.action_space.low, ref.action_space.high
    for t in range(200):
        action = rng.uniform(low, high).astype(np.float64)
        obs, reward, *_ = ref.step(action)
        state = step(state, jnp.asarray(action))
        np.testing.assert_allclose(
            np.asarray(state.obs), obs, rtol=0, atol=1e-9, err_msg=f"{env_id} obs at step {t}"
        )
        np.testing.assert_allclose(
            float(state.reward), reward, rtol=0, atol=1e-9, err_msg=f"{env_id} reward at step {t}"
        )
    np.testing.assert_array_equal(np.asarray(state.data.qpos), ref.data.qpos)
