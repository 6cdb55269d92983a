"""Shared test setup: CPU only, persistent compilation cache inside the checkout."""

import os
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(ROOT / ".jax_cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update(
    "jax_persistent_cache_min_compile_time_secs",
    float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]),
)


@pytest.fixture(scope="module", autouse=True)
def _compile_mode(request):
    """``pytestmark = pytest.mark.fast_compile`` in a module: its programs (and its tests'
    subprocesses) compile with XLA's backend optimisations and LLVM's expensive passes off
    (``jax_disable_most_optimizations``). For the pipeline's end-to-end tests compiling is
    nearly all the time: the smoke pipeline's two programs took 63 s to compile and 0.1 s
    to run, 33 s and 0.3 s without the optimisations (2 cores, 2026-12-01). Tests that
    mostly *run* (toy learning, MJX parity, value of BALD) keep the optimisations: there the
    same switch made them 2-15x slower. The switch is part of XLA's compile options, so
    the persistent cache keeps the two kinds of program apart."""
    if request.node.get_closest_marker("fast_compile") is None:
        yield
        return
    old = jax.config.read("jax_disable_most_optimizations")
    old_env = os.environ.get("JAX_DISABLE_MOST_OPTIMIZATIONS")
    jax.config.update("jax_disable_most_optimizations", True)
    os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = "1"
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", old)
        if old_env is None:
            os.environ.pop("JAX_DISABLE_MOST_OPTIMIZATIONS", None)
        else:
            os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] = old_env


#: The modules that take longest (seconds of a clean-cache run, 2 cores, 2026-12-02: about
#: 130, 120, 120, 106, 105, 95, then 25-55 each), run first: xdist hands whole files to the
#: two workers in collection order, so a long file collected last (test_x64.py, one 106 s
#: test) left one worker busy alone at the end. Longest first is the classic greedy
#: packing; an outdated list only costs balance. test_reliability.py before
#: test_pipeline.py: they share the 2-seed smoke programs, so the second finds them in the
#: persistent cache.
LONG_MODULES = (
    "test_reliability.py", "test_parity_mjx.py", "test_pipeline_variants.py", "test_x64.py",
    "test_sweep.py", "test_pipeline.py", "test_reward_trainer.py", "test_acquisition.py",
    "test_reward_toy.py", "test_envs_mjx.py", "test_reward_model.py", "test_evaluation.py",
    "test_rating_scale.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept
