"""Float64 parity tests: collected only in a process started with JAX_ENABLE_X64=1
(tests/test_parity_mjx.py starts one), since jax_enable_x64 is process-global."""

import os

if os.environ.get("JAX_ENABLE_X64", "").lower() not in ("1", "true"):
    collect_ignore_glob = ["test_*.py"]
