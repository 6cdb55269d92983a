"""The float64 tests of tests/x64 (MJX parity with Gymnasium, the C backend's exact
fields and task parity), in one subprocess with JAX_ENABLE_X64=1: jax_enable_x64 is
process-global and must be set before JAX starts."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run_x64(marker: str):
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu")
    # -n 0: one process here; the outer suite already runs two workers.
    cmd = [sys.executable, "-m", "pytest", "tests/x64", "-q", "-n", "0", "-p", "no:cacheprovider",
           "-m", marker]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout, proc.stdout[-2000:]


def test_float64_suite_subprocess():
    _run_x64("not slow")


@pytest.mark.slow
def test_float64_suite_subprocess_slow():
    _run_x64("slow")
