"""active-rlhf-jax: active RLHF from preferences and ratings on MuJoCo, as one JAX program."""

import os as _os

__version__ = "0.1.0"

# XLA's CPU runtime (jaxlib 0.10.2) can wedge forever -- every worker idle, the result
# never ready -- when its concurrency-optimised scheduler runs the independent preference
# and rating branches of a vmapped pipeline iteration side by side (reproduced every time
# on the smoke preset with 2 seeds; fine with one thread or with this scheduler off). The
# flag only changes the order of independent ops on CPU, never results. It must be set
# before JAX creates its CPU backend, so we add it here unless the user chose otherwise.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
if _FLAG not in _os.environ.get("XLA_FLAGS", ""):
    _os.environ["XLA_FLAGS"] = (_os.environ.get("XLA_FLAGS", "") + f" {_FLAG}=false").strip()
