"""C MuJoCo backend (``MujocoPhysics``): exactness against raw ``mj_step``, purity, batching.

The oracle is a single ``MjData`` stepped continuously with ``mj_step`` (what Gymnasium
does). The backend restores the state from its carried bits before every env step, so
matching the oracle bit for bit shows the carried state (warm start included) is complete.
"""

import os
import pathlib
import subprocess
import sys

import gymnasium as gym
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from active_rlhf_jax.envs.mujoco_physics import (
    THREADS_ENV_VAR,
    MujocoPhysics,
    default_num_threads,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]

# (gymnasium id, frame_skip, need_cfrc_ext)
MODELS = {
    "HalfCheetah-v5": (5, False),
    "Ant-v5": (5, True),
    "Walker2d-v5": (4, False),
}


def _model(env_id):
    env = gym.make(env_id)
    model = env.unwrapped.model
    env.close()
    return model


@pytest.fixture(scope="module")
def models():
    return {k: _model(k) for k in MODELS}


def _start(model, seed):
    rng = np.random.default_rng(seed)
    qpos = model.qpos0 + rng.uniform(-0.1, 0.1, model.nq)
    qvel = 0.1 * rng.standard_normal(model.nv)
    return qpos.astype(np.float32), qvel.astype(np.float32)


def _oracle(model, qpos, qvel, actions, frame_skip, post):
    """Continuous C stepping from (qpos, qvel): qpos [T, nq], cfrc_ext [T, nbody, 6]."""
    d = mujoco.MjData(model)
    d.qpos[:], d.qvel[:] = qpos, qvel
    mujoco.mj_forward(model, d)
    qs, cf = [], []
    for a in actions:
        d.ctrl[:] = a
        mujoco.mj_step(model, d, frame_skip)
        if post:
            mujoco.mj_rnePostConstraint(model, d)
        qs.append(d.qpos.copy())
        cf.append(d.cfrc_ext.copy())
    return np.array(qs), np.array(cf), d


def _exact_qpos(phys, data):
    return np.asarray(data.exact).view(np.float64)[..., phys._qpos]


@pytest.mark.parametrize("env_id", list(MODELS))
def test_jit_scan_matches_continuous_mj_step_bit_for_bit(models, env_id):
    # 200 env steps in one jitted lax.scan, float32 pipeline: the carried float64 state
    # must equal continuous mj_step exactly (a FULLPHYSICS state without the warm start
    # drifts to ~1 by step 200).
    model = models[env_id]
    frame_skip, post = MODELS[env_id]
    phys = MujocoPhysics(model, frame_skip, need_cfrc_ext=post, num_threads=2)
    qpos, qvel = _start(model, 0)
    actions = np.random.default_rng(1).uniform(-1, 1, (200, model.nu)).astype(np.float32)

    @jax.jit
    def run(qpos, qvel, actions):
        def body(data, a):
            data = phys.step(data, a)
            return data, (data.exact, data.cfrc_ext)

        return jax.lax.scan(body, phys.init(qpos, qvel), actions)[1]

    exact, cfrc = run(qpos, qvel, actions)
    ref_q, ref_cf, _ = _oracle(model, qpos, qvel, actions, frame_skip, post)
    got_q = np.asarray(exact).view(np.float64)[:, phys._qpos]
    np.testing.assert_array_equal(got_q, ref_q)
    assert cfrc.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(cfrc), ref_cf.astype(np.float32), rtol=1e-6, atol=1e-6)
    if post:
        assert np.abs(ref_cf).max() > 0  # contacts happened, so the check means something


def test_fields_init_and_dt(models):
    model = models["Ant-v5"]
    phys = MujocoPhysics(model, 5, need_cfrc_ext=True, num_threads=1)
    assert phys.name == "mujoco" and phys.frame_skip == 5
    assert phys.dt == pytest.approx(5 * model.opt.timestep)
    qpos, qvel = _start(model, 3)
    data = jax.jit(phys.init)(qpos, qvel)
    d = mujoco.MjData(model)
    d.qpos[:], d.qvel[:] = qpos, qvel
    mujoco.mj_forward(model, d)
    assert data.qpos.shape == (model.nq,) and data.qvel.shape == (model.nv,)
    assert data.xpos.shape == (model.nbody, 3) and data.cfrc_ext.shape == (model.nbody, 6)
    assert data.time.shape == () and float(data.time) == 0.0
    np.testing.assert_array_equal(np.asarray(data.xpos), d.xpos.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(data.cfrc_ext), 0.0)  # as after Gymnasium's reset
    data = phys.step(data, np.zeros(model.nu, np.float32))
    assert float(data.time) == pytest.approx(phys.dt)


def test_replace_qpos_qvel_takes_effect(models):
    model = models["HalfCheetah-v5"]
    phys = MujocoPhysics(model, 5, num_threads=1)
    qpos, qvel = _start(model, 4)
    acts = np.random.default_rng(5).uniform(-1, 1, (6, model.nu)).astype(np.float32)
    step = jax.jit(phys.step)
    data = phys.init(qpos, qvel)
    for a in acts[:3]:
        data = step(data, a)
    _, _, ref = _oracle(model, qpos, qvel, acts[:3], 5, False)

    # Full replace: the next step starts from exactly these (float32) values, with the
    # rest of the integration state (time, warm start) kept, as Gymnasium's set_state.
    new_q = (np.asarray(data.qpos) + 0.05).astype(np.float32)
    new_v = np.linspace(-1, 1, model.nv).astype(np.float32)
    data = step(data.replace(qpos=jnp.asarray(new_q), qvel=jnp.asarray(new_v)), acts[3])
    ref.qpos[:], ref.qvel[:] = new_q, new_v
    mujoco.mj_forward(model, ref)
    ref.ctrl[:] = acts[3]
    mujoco.mj_step(model, ref, 5)
    np.testing.assert_array_equal(_exact_qpos(phys, data), ref.qpos)

    # Partial replace: only the changed element is taken from the float field; the other
    # elements keep their exact float64 values.
    q = data.qpos.at[1].set(0.3)
    data = step(data.replace(qpos=q), acts[4])
    ref.qpos[1] = np.float32(0.3)
    ref.ctrl[:] = acts[4]
    mujoco.mj_step(model, ref, 5)
    np.testing.assert_array_equal(_exact_qpos(phys, data), ref.qpos)
    # No replace: still bit-exact afterwards.
    data = step(data, acts[5])
    ref.ctrl[:] = acts[5]
    mujoco.mj_step(model, ref, 5)
    np.testing.assert_array_equal(_exact_qpos(phys, data), ref.qpos)


def test_vmap_two_axes_equals_unbatched_and_is_pure(models):
    model = models["Ant-v5"]
    phys = MujocoPhysics(model, 5, need_cfrc_ext=True, num_threads=2)
    starts = [_start(model, s) for s in range(6)]
    qpos = np.stack([s[0] for s in starts]).reshape(2, 3, -1)
    qvel = np.stack([s[1] for s in starts]).reshape(2, 3, -1)
    ctrl = np.random.default_rng(7).uniform(-1, 1, (2, 3, model.nu)).astype(np.float32)

    init2 = jax.jit(jax.vmap(jax.vmap(phys.init)))
    step2 = jax.jit(jax.vmap(jax.vmap(phys.step)))
    data = step2(step2(init2(qpos, qvel), ctrl), ctrl)
    assert data.qpos.shape == (2, 3, model.nq) and data.exact.shape[:2] == (2, 3)
    single_step = jax.jit(phys.step)
    for i in range(2):
        for j in range(3):
            d = phys.init(qpos[i, j], qvel[i, j])
            d = single_step(single_step(d, ctrl[i, j]), ctrl[i, j])
            np.testing.assert_array_equal(np.asarray(d.exact), np.asarray(data.exact[i, j]))
            np.testing.assert_array_equal(np.asarray(d.cfrc_ext), np.asarray(data.cfrc_ext[i, j]))

    # Purity/determinism: identical inputs anywhere in a batch give identical outputs, and
    # a repeated call reproduces the first, whatever the scratch MjData held before.
    flat = jax.tree.map(lambda x: x.reshape((6,) + x.shape[2:]), data)
    dup = jax.tree.map(lambda x: jnp.concatenate([x, x[::-1]]), flat)
    c = jnp.concatenate([ctrl.reshape(6, -1), ctrl.reshape(6, -1)[::-1]])
    step1 = jax.jit(jax.vmap(phys.step))
    out_a = step1(dup, c)
    out_b = step1(dup, c)
    np.testing.assert_array_equal(np.asarray(out_a.exact), np.asarray(out_b.exact))
    np.testing.assert_array_equal(np.asarray(out_a.exact[:6]), np.asarray(out_a.exact[6:][::-1]))


@pytest.mark.parametrize("batch", [5, 10, 40])
def test_thread_count_does_not_change_results(models, monkeypatch, batch):
    """5 envs run serially, 10 in one chunk per thread, 40 on 2 threads in a few chunks
    per thread (on 4, one per thread); every split gives the single-threaded result
    exactly."""
    model = models["Walker2d-v5"]
    qpos = np.stack([_start(model, s)[0] for s in range(batch)])
    qvel = np.stack([_start(model, s)[1] for s in range(batch)])
    ctrl = np.random.default_rng(8).uniform(-1, 1, (batch, model.nu)).astype(np.float32)
    outs = []
    for threads in (1, 2, 4):
        phys = MujocoPhysics(model, 4, num_threads=threads)
        data = jax.vmap(phys.init)(qpos, qvel)
        outs.append(np.asarray(jax.vmap(phys.step)(data, ctrl).exact))
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])

    monkeypatch.setenv(THREADS_ENV_VAR, "3")
    assert default_num_threads() == 3 and MujocoPhysics(model, 4).num_threads == 3
    monkeypatch.delenv(THREADS_ENV_VAR)
    assert default_num_threads() == (os.cpu_count() or 1)
    with pytest.raises(ValueError, match="num_threads"):
        MujocoPhysics(model, 4, num_threads=0)
    with pytest.raises(ValueError, match="ctrl"):
        phys.step(data, np.zeros(model.nu + 1, np.float32))


_SHARD_SCRIPT = r"""
import os, jax, jax.numpy as jnp, numpy as np, gymnasium as gym
from active_rlhf_jax.envs.mujoco_physics import MujocoPhysics, shard_envs
assert jax.device_count() == 2, jax.devices()
model = gym.make("HalfCheetah-v5").unwrapped.model
phys = MujocoPhysics(model, 5, num_threads=1)
rng = np.random.default_rng(0)
qpos = (model.qpos0 + rng.uniform(-0.1, 0.1, (4, model.nq))).astype(np.float32)
qvel = np.zeros((4, model.nv), np.float32)
ctrl = rng.uniform(-1, 1, (4, model.nu)).astype(np.float32)
seen = set()
orig = phys._host_step
def spy(*args):
    seen.add(np.asarray(args[1]).shape[0])
    return orig(*args)
phys._host_step = spy
data = jax.jit(jax.vmap(phys.init))(qpos, qvel)
ref = jax.jit(jax.vmap(phys.step))(data, ctrl)
seen.clear()
sharded = jax.jit(shard_envs(jax.vmap(phys.step)))
out = sharded(data, ctrl)
np.testing.assert_array_equal(np.asarray(out.exact), np.asarray(ref.exact))
assert len(out.qpos.sharding.device_set) == 2, out.qpos.sharding
assert seen == {2}, seen  # each device called back with its own 2 envs
print("OK")
"""


def test_shard_envs_two_cpu_devices():
    env = dict(os.environ)
    env["XLA_FLAGS"] = env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env["JAX_PLATFORMS"] = "cpu"
    res = subprocess.run(
        [sys.executable, "-c", _SHARD_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0 and "OK" in res.stdout, res.stdout + res.stderr[-3000:]


# ----------------------------------------------------------------- task level (tasks.py)

from _parity import TASK_ENVS  # noqa: E402


@pytest.mark.parametrize("env_id", list(TASK_ENVS))
def test_task_float32_first_10_steps_match_gymnasium(env_id):
    pytest.importorskip("active_rlhf_jax.envs.tasks")
    from active_rlhf_jax.envs import make

    kwargs = TASK_ENVS[env_id]
    ours = make(env_id, backend="mujoco", **kwargs)
    assert ours.backend == "mujoco"
    ref = gym.make(env_id, **kwargs).unwrapped
    ref.reset(seed=0)
    state = jax.jit(ours.reset)(jax.random.PRNGKey(0))
    ref.set_state(np.asarray(state.data.qpos, np.float64), np.asarray(state.data.qvel, np.float64))
    step = jax.jit(ours.step)
    rng = np.random.default_rng(1)
    for t in range(10):
        action = rng.uniform(ref.action_space.low, ref.action_space.high).astype(np.float32)
        obs, reward, *_ = ref.step(action)
        state = step(state, jnp.asarray(action))
        assert state.obs.dtype == jnp.float32
        np.testing.assert_allclose(
            np.asarray(state.obs), obs, rtol=1e-3, atol=1e-3, err_msg=f"{env_id} obs at step {t}"
        )
        np.testing.assert_allclose(
            float(state.reward),
            reward,
            rtol=1e-3,
            atol=1e-3,
            err_msg=f"{env_id} reward at step {t}",
        )
    # The carried float64 state is still exactly Gymnasium's.
    np.testing.assert_array_equal(
        np.asarray(state.data.exact).view(np.float64)[1 : 1 + ref.model.nq], ref.data.qpos
    )


def test_training_env_jit_scan_deterministic_and_matches_unbatched():
    pytest.importorskip("active_rlhf_jax.envs.tasks")
    from active_rlhf_jax.envs import TrainingEnv, make

    env = make("Ant-v5", backend="mujoco")
    tenv = TrainingEnv(env, 3)

    @jax.jit
    def rollout(state, key):
        def body(state, k):
            a = jax.random.uniform(k, (3, env.action_size), minval=-1.0, maxval=1.0)
            state = tenv.step(state, a)
            return state, (state.obs, state.reward, a, state.data.exact)

        return jax.lax.scan(body, state, jax.random.split(key, 20))

    key = jax.random.PRNGKey(3)
    state0 = jax.jit(tenv.reset)(key)
    final, (obs, rew, acts, exact) = rollout(state0, key)
    final2, (obs2, rew2, _, _) = rollout(state0, key)
    np.testing.assert_array_equal(np.asarray(obs), np.asarray(obs2))
    np.testing.assert_array_equal(np.asarray(final.data.exact), np.asarray(final2.data.exact))
    assert np.isfinite(np.asarray(rew)).all() and float(jnp.abs(rew).sum()) > 0

    # Env 1 of the batch, replayed unbatched from its reset state, steps the same physics
    # bit for bit (rewards may differ by float32 rounding: XLA fuses batched code differently).
    state = jax.tree.map(lambda x: x[1], state0)
    wrapper_keys = ("steps", "truncation", "final_obs", "key")
    state = state.replace(info={k: v for k, v in state.info.items() if k not in wrapper_keys})
    step = jax.jit(env.step)
    for t in range(20):
        state = step(state, acts[t, 1])
        np.testing.assert_array_equal(np.asarray(state.data.exact), np.asarray(exact[t, 1]))
        np.testing.assert_allclose(np.asarray(state.reward), np.asarray(rew[t, 1]), rtol=1e-5)
