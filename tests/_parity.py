"""Parity helpers: our MuJoCo tasks vs Gymnasium's, for any physics backend.

Gymnasium's state before a step is more than qpos/qvel: ``data.xpos`` is the kinematics
of the previous step's last substep (mj_step integrates after its forward pass), and
Reacher-v4's reward and Ant-v5's velocity read it; the solver warm start
(``qacc_warmstart``) moves results by up to the solver tolerance. ``make_step_fn`` therefore
builds our state from (qpos, qvel, xpos, qacc_warmstart) and returns the same four, so one
compiled function serves both one-step parity (Gymnasium's state in) and free running (our
own state fed back).
"""

from __future__ import annotations

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax.envs import make

GYM_OPTIONS = ("terminate_when_unhealthy",)


def make_pair(env_id: str, backend: str, **options):
    """(our env, Gymnasium's unwrapped env) with the same options."""
    env = make(env_id, backend=backend, **options)
    gym_opts = {k: v for k, v in options.items() if k in GYM_OPTIONS}
    if "terminate_when_unhealthy" in env.defaults:
        gym_opts.setdefault("terminate_when_unhealthy", env.options["terminate_when_unhealthy"])
    genv = gymnasium.make(env_id, **gym_opts).unwrapped
    return env, genv


def gym_state(genv):
    d = genv.data
    return (d.qpos.copy(), d.qvel.copy(), d.xpos.copy(), d.qacc_warmstart.copy())


def make_step_fn(env):
    """jit((qpos, qvel, xpos, warm), action) -> (obs, reward, done, (qpos, qvel, xpos, warm))."""
    template = env.reset(jax.random.PRNGKey(0))

    def fn(phys, action):
        qpos, qvel, xpos, warm = phys
        data = env.physics.init(qpos, qvel)
        data = data.replace(xpos=xpos.astype(data.xpos.dtype))
        if hasattr(data, "qacc_warmstart"):
            data = data.replace(qacc_warmstart=warm.astype(data.qacc_warmstart.dtype))
        nxt = env.step(template.replace(data=data), action)
        d = nxt.data
        new_warm = d.qacc_warmstart if hasattr(d, "qacc_warmstart") else warm
        return nxt.obs, nxt.reward, nxt.done, (d.qpos, d.qvel, d.xpos, new_warm)

    return jax.jit(fn)


def _to(x, dtype):
    return tuple(jnp.asarray(a, dtype) for a in x)


def one_step_errors(env, genv, step_fn, n_steps: int, seed: int = 0):
    """Copy Gymnasium's state into ours before every step of a random-action episode.

    Returns dicts of arrays ``[n_steps]``: ours and Gymnasium's obs/reward/done.
    """
    dtype = jnp.zeros(()).dtype
    rng = np.random.default_rng(seed)
    genv.reset(seed=seed)
    ours, theirs = {"obs": [], "reward": [], "done": []}, {"obs": [], "reward": [], "done": []}
    for _ in range(n_steps):
        action = rng.uniform(env.action_low, env.action_high).astype(np.float64)
        phys = _to(gym_state(genv), dtype)
        obs, reward, done, _ = step_fn(phys, jnp.asarray(action, dtype))
        gobs, greward, gterm, _, _ = genv.step(action)
        for k, v in (("obs", obs), ("reward", reward), ("done", done)):
            ours[k].append(np.asarray(v, np.float64))
        theirs["obs"].append(gobs)
        theirs["reward"].append(greward)
        theirs["done"].append(float(gterm))
    return {k: np.stack(v) for k, v in ours.items()}, {k: np.array(v) for k, v in theirs.items()}


def free_run(env, genv, step_fn, n_steps: int, seed: int = 0):
    """Same initial state, same random actions, each simulator on its own.

    Returns (ours obs [n_steps, obs], Gymnasium obs [n_steps, obs], rewards ours/theirs).
    """
    dtype = jnp.zeros(()).dtype
    rng = np.random.default_rng(seed)
    genv.reset(seed=seed)
    phys = _to(gym_state(genv), dtype)
    obs_o, obs_g, rew_o, rew_g = [], [], [], []
    for _ in range(n_steps):
        action = rng.uniform(env.action_low, env.action_high).astype(np.float64)
        obs, reward, _, phys = step_fn(phys, jnp.asarray(action, dtype))
        gobs, greward, *_ = genv.step(action)
        obs_o.append(np.asarray(obs, np.float64))
        rew_o.append(float(reward))
        obs_g.append(gobs)
        rew_g.append(greward)
    return np.stack(obs_o), np.stack(obs_g), np.array(rew_o), np.array(rew_g)


def agreeing_steps(ours: np.ndarray, theirs: np.ndarray, tol: float) -> int:
    """Number of leading steps whose obs satisfy allclose(rtol=tol, atol=tol)."""
    ok = np.all(np.abs(ours - theirs) <= tol + tol * np.abs(theirs), axis=-1)
    bad = np.flatnonzero(~ok)
    return int(bad[0]) if bad.size else len(ok)


def reset_obs(env, genv, n: int, n_theirs: int | None = None, seed: int = 0):
    """Initial observations: ours ``[n, obs]`` (vmapped reset), Gymnasium's ``[n_theirs, obs]``."""
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    ours = np.asarray(jax.jit(jax.vmap(env.reset))(keys).obs, np.float64)
    n_theirs = n if n_theirs is None else n_theirs
    theirs = np.stack([genv.reset(seed=seed * 100_000 + i)[0] for i in range(n_theirs)])
    return ours, theirs


# Gymnasium id -> kwargs for both sides of a parity check (no early termination, so every
# requested step runs).
TASK_ENVS = {
    "HalfCheetah-v5": {},
    "Hopper-v4": {"terminate_when_unhealthy": False},
    "Hopper-v5": {"terminate_when_unhealthy": False},
    "Walker2d-v5": {"terminate_when_unhealthy": False},
    "Swimmer-v5": {},
    "Reacher-v4": {},
    "Reacher-v5": {},
    "Ant-v5": {"terminate_when_unhealthy": False},
}
