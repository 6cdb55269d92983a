"""Parity of our MuJoCo tasks with Gymnasium's (float32 here; float64 in tests/x64).

Default run: reset statistics of HalfCheetah-v5 and Hopper-v4; float32 step parity of
HalfCheetah-v5 (contacts + Euler) and Reacher-v4 (reward before the step). Hopper-v4
(contacts + RK4 + healthy terms) is checked step by step in float64 by default
(tests/x64, which steps the others in float64 with ``-m slow``) and in float32 with
``-m slow``, with the other tasks: each MJX step compile costs about a minute on the 2-core
CI machine. Each env compiles one step function (shared by the
one-step and free-running checks) and one vmapped reset.
Ant-v5 is excluded from the strict checks: MJX's capsule-plane contact frame differs from
C MuJoCo's and the pyramidal friction cone is not rotation invariant (docs/envs.md).
"""

from __future__ import annotations

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import _parity  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ["mjx"]  # the C backend's engineer adds "mujoco"
CORE = ["HalfCheetah-v5", "Hopper-v4", "Reacher-v4"]
SLOW = ["Hopper-v5", "Walker2d-v5", "Swimmer-v5", "Reacher-v5"]
ENVS = CORE + [pytest.param(e, marks=pytest.mark.slow) for e in SLOW]
# The default run keeps HalfCheetah-v5 (step and reset) here; Hopper-v4 in float64
# (tests/x64: contacts, RK4 and health terms) runs with -m slow since 2026-12-04. Reacher-v4's step (its reward is read
# before the step; 36-56 s of MJX compile) and Hopper-v4's reset statistics (19-27 s) run
# with -m slow, so the default suite keeps to its 10 minutes (issue #16).
RESET_ENVS = ["HalfCheetah-v5"] + [
    pytest.param(e, marks=pytest.mark.slow) for e in ["Hopper-v4", "Reacher-v4"] + SLOW
]
STEP_ENVS = ["HalfCheetah-v5"] + [
    pytest.param(e, marks=pytest.mark.slow) for e in ["Hopper-v4", "Reacher-v4"] + SLOW
]

_CACHE: dict = {}


def _setup(env_id: str, backend: str):
    """(env, gym env, compiled step fn), built once per process and env."""
    key = (env_id, backend)
    if key not in _CACHE:
        env, genv = _parity.make_pair(env_id, backend)
        _CACHE[key] = (env, genv, _parity.make_step_fn(env))
    return _CACHE[key]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("env_id", STEP_ENVS)
def test_one_step_parity_float32(env_id, backend):
    env, genv, step_fn = _setup(env_id, backend)
    ours, theirs = _parity.one_step_errors(env, genv, step_fn, env.episode_length, seed=1)
    # float32 rounding through a contact solve can move a joint velocity by a little more
    # than 1e-3 relative (HalfCheetah, seed 1: one element in 17000 at 1.6e-3), so: every
    # step within 1e-2, and at least 99.5% of the steps within rtol=atol=1e-3.
    for k in ("obs", "reward"):
        a, b = ours[k].reshape(len(ours[k]), -1), theirs[k].reshape(len(theirs[k]), -1)
        np.testing.assert_allclose(a, b, rtol=1e-2, atol=1e-2)
        close = np.all(np.isclose(a, b, rtol=1e-3, atol=1e-3), axis=1)
        assert close.mean() >= 0.995, (k, np.flatnonzero(~close))
    np.testing.assert_array_equal(ours["done"], theirs["done"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("env_id", STEP_ENVS)
def test_free_run_float32_first_10_steps(env_id, backend):
    env, genv, step_fn = _setup(env_id, backend)
    obs, gobs, rew, grew = _parity.free_run(env, genv, step_fn, 10, seed=2)
    np.testing.assert_allclose(obs, gobs, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(rew, grew, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "env_id",
    RESET_ENVS
    + [
        pytest.param(
            "Ant-v5",
            marks=[
                pytest.mark.slow,
                # Measured: the quaternion-w element's mean sits ~10 SE from Gymnasium's
                # (both leave the quaternion unnormalised after the reset noise); the cause
                # is not found yet. Kept visible rather than dropped.
                pytest.mark.xfail(reason="Ant-v5 reset quaternion mean differs", strict=False),
            ],
        )
    ],
)
def test_reset_statistics(env_id, backend):
    """Our resets vs Gymnasium's: every obs element's mean within 4 standard errors and
    std within 5%.

    With 1000 samples a normal element's sample std has a 2.2% standard deviation, so a 5%
    check over 9+ elements fails by chance (HalfCheetah: -6.8% with 1000 vs 1000, though
    100000 samples agree to 0.5%). We draw 4000 of ours (1.1%) against 10000 of
    Gymnasium's (a near-exact reference)."""
    env, genv = _parity.make_pair(env_id, backend)
    ours, theirs = _parity.reset_obs(env, genv, 4000, n_theirs=10000, seed=3)
    assert ours.shape == (4000, env.observation_size)
    se = np.sqrt(ours.var(0) / len(ours) + theirs.var(0) / len(theirs))
    const = theirs.std(0) < 1e-12  # e.g. Ant's contact forces, zero after a reset
    np.testing.assert_allclose(ours[:, const], theirs[:1, const].repeat(len(ours), 0), atol=1e-6)
    z = np.abs(ours.mean(0) - theirs.mean(0))[~const] / se[~const]
    assert np.all(z < 4), z
    ratio = ours.std(0)[~const] / theirs.std(0)[~const]
    assert np.all(np.abs(ratio - 1) < 0.05), ratio
