"""The float64 tests (MJX parity, C MuJoCo pipeline): collected only in a process started
with JAX_ENABLE_X64=1 (tests/test_x64.py starts one), since jax_enable_x64 is
process-global. This is the suite's one x64 mechanism."""

import os

if os.environ.get("JAX_ENABLE_X64", "").lower() not in ("1", "true"):
    collect_ignore_glob = ["test_*.py"]
