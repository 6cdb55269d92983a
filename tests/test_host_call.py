"""``envs/host_call.py``: a host function as a cacheable XLA custom call.

Checked: the custom call and ``jax.pure_callback`` give bitwise equal outputs under jit,
nested vmap (an unbatched argument included) and scan; the persistent cache writes a
C MuJoCo program in one process and a second process reads it back (no new entry, equal
outputs), while the ``callback`` mode writes nothing; an exception inside the host
function comes back as NaN outputs plus one ``HostCallError``; bad keys and modes are
refused with one line naming them.
"""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.envs import host_call as hc

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _toy(x, k):
    """x [..., 3] float32, k [...] int32 -> (x * 2 + k, sum of squares [...], k as uint32)."""
    x, k = np.asarray(x), np.asarray(k)
    return {
        "a": (x * 2 + k[..., None]).astype(np.float32),
        "b": (x.astype(np.float64) ** 2).sum(-1).astype(np.float32),
        "c": (k * 3).astype(np.uint32),
    }


def _toy_shapes(batch):
    return {
        "a": jax.ShapeDtypeStruct(batch + (3,), jnp.float32),
        "b": jax.ShapeDtypeStruct(batch, jnp.float32),
        "c": jax.ShapeDtypeStruct(batch, jnp.uint32),
    }


def _program(x, k, scale):
    """vmap over two axes, one argument unbatched in the inner vmap, inside a scan."""

    def one(x1, k1, s):
        return hc.host_call("test-toy", _toy, _toy_shapes, x1 * s, k1)

    inner = jax.vmap(one, in_axes=(0, 0, None))
    outer = jax.vmap(inner, in_axes=(0, 0, None))

    def body(carry, _):
        out = outer(carry, k, scale)
        return out["a"] * 0.5, out

    return jax.lax.scan(body, x, None, length=3)


def test_custom_call_equals_pure_callback_bitwise(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    k = rng.integers(0, 5, (2, 4)).astype(np.int32)
    results = {}
    for mode in ("ffi", "callback"):
        monkeypatch.setenv(hc.MODE_ENV_VAR, mode)
        assert hc.mode() == mode
        # a fresh function object per mode: jit's trace cache does not see the variable
        lowered = jax.jit(lambda *a: _program(*a)).lower(x, k, 1.5)
        text = lowered.as_text()
        assert (hc.TARGET in text) == (mode == "ffi"), mode
        results[mode] = jax.device_get(lowered.compile()(x, k, 1.5))
    for a, b in zip(jax.tree.leaves(results["ffi"]), jax.tree.leaves(results["callback"]),
                    strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    # and the host function's own numbers, for the first scan step
    ref = _toy(x * np.float32(1.5), k)
    np.testing.assert_array_equal(results["ffi"][1]["a"][0], ref["a"])
    np.testing.assert_array_equal(results["ffi"][1]["c"][0], ref["c"])


def test_exception_gives_nan_outputs_and_one_host_call_error(monkeypatch, capsys):
    monkeypatch.setenv(hc.MODE_ENV_VAR, "ffi")

    def broken(x):
        raise ZeroDivisionError("boom")

    shapes = lambda b: (jax.ShapeDtypeStruct(b + (2,), jnp.float32),  # noqa: E731
                        jax.ShapeDtypeStruct(b, jnp.int32))
    f = jax.jit(jax.vmap(lambda x: hc.host_call("test-broken", broken, shapes, x)))
    a, b = jax.device_get(f(jnp.ones((3, 2))))
    assert np.isnan(a).all() and a.shape == (3, 2)
    assert (b == 0).all()
    assert "ZeroDivisionError: boom" in capsys.readouterr().err
    with pytest.raises(hc.HostCallError, match="test-broken.*ZeroDivisionError"):
        hc.raise_pending()
    hc.raise_pending()  # once only


def test_wrong_output_shape_is_an_error(monkeypatch, capsys):
    monkeypatch.setenv(hc.MODE_ENV_VAR, "ffi")
    shapes = lambda b: jax.ShapeDtypeStruct(b + (2,), jnp.float32)  # noqa: E731
    f = jax.jit(lambda x: hc.host_call("test-shape", lambda x: np.zeros(3, np.float32),
                                       shapes, x))
    out = np.asarray(f(jnp.ones(2)))  # one output: the buffer itself, not a tuple
    assert np.isnan(out).all()
    with pytest.raises(hc.HostCallError, match=r"float32\[3\], expected float32\[1, 2\]"):
        hc.raise_pending()
    capsys.readouterr()


def test_bad_key_and_mode_are_refused(monkeypatch):
    with pytest.raises(ValueError, match="key must not contain"):
        hc.host_call("a|b", _toy, _toy_shapes, jnp.ones(3), jnp.int32(1))
    monkeypatch.setenv(hc.MODE_ENV_VAR, "threads")
    with pytest.raises(ValueError, match=hc.MODE_ENV_VAR):
        hc.mode()


_CACHE_SCRIPT = r"""
import os, sys, jax, numpy as np, gymnasium as gym
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
from active_rlhf_jax.envs.mujoco_physics import MujocoPhysics
model = gym.make("HalfCheetah-v5").unwrapped.model
phys = MujocoPhysics(model, 5, num_threads=1)
qpos = np.tile(model.qpos0, (4, 1)).astype(np.float32)
qvel = np.zeros((4, model.nv), np.float32)
ctrl = np.linspace(-1, 1, 4 * model.nu).reshape(4, model.nu).astype(np.float32)

def roll(q, v, c):
    d = jax.vmap(phys.init)(q, v)
    def body(d, _):
        d = jax.vmap(phys.step)(d, c)
        return d, d.qpos
    return jax.lax.scan(body, d, None, length=5)[1]

out = np.asarray(jax.jit(roll)(qpos, qvel, ctrl))
np.save(sys.argv[2], out)
"""


def _run_cache_script(cache, out, mode):
    env = dict(os.environ, JAX_PLATFORMS="cpu", **{hc.MODE_ENV_VAR: mode})
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    res = subprocess.run([sys.executable, "-c", _CACHE_SCRIPT, str(cache), str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    return np.load(out)


def _program_entries(cache):
    return sorted(p.name for p in cache.iterdir() if p.name.startswith("jit_roll"))


def test_c_mujoco_program_is_kept_by_the_persistent_cache(tmp_path):
    cache = tmp_path / "cache"
    first = _run_cache_script(cache, tmp_path / "a.npy", "ffi")
    entries = _program_entries(cache)
    assert len(entries) == 1, entries  # written by the first process
    mtime = (cache / entries[0]).stat().st_mtime_ns
    second = _run_cache_script(cache, tmp_path / "b.npy", "ffi")
    assert _program_entries(cache) == entries  # read back, not compiled and written again
    assert (cache / entries[0]).stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(first, second)
    assert first.shape == (5, 4, 9) and np.isfinite(first).all()

    other = tmp_path / "callback_cache"
    third = _run_cache_script(other, tmp_path / "c.npy", "callback")
    written = other.exists() and _program_entries(other) != []
    assert written == hc.jax_caches_callbacks()  # jax 0.10 refuses callbacks, 0.11 keeps them
    np.testing.assert_array_equal(first, third)
