"""Import everything a training run needs, before a device lease is spent on compiling.

``python -m benchmarks.preflight`` prints one line naming every missing module and exits 1,
or prints the versions and exits 0. On 2026-12-05 two device calls failed only after
starting: the carried wheels lacked distrax, then tensorboardX (imported when a run opens
its logs, after the 74 s compile of its first phase).
"""

from __future__ import annotations

import importlib
import sys

#: Modules a ``train`` / ``sweep`` run imports, some of them only lazily (tensorboardX when
#: the logs open, gymnasium for ``--gym-eval-episodes``, mujoco.mjx for the MJX backend).
MODULES = (
    "jax", "flax", "optax", "chex", "distrax", "orbax.checkpoint", "mujoco", "mujoco.mjx",
    "gymnasium", "tensorboardX", "tqdm", "scipy", "matplotlib", "imageio",
    "active_rlhf_jax.cli", "active_rlhf_jax.pipeline.runner",
)


def missing(modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``modules`` (default :data:`MODULES`) that fail to import, each as
    ``name (error)``."""
    bad = []
    for name in MODULES if modules is None else modules:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - any import failure disqualifies the machine
            bad.append(f"{name} ({type(e).__name__}: {e})")
    return bad


def main() -> int:
    bad = missing()
    if bad:
        print("preflight: cannot import " + "; ".join(bad), file=sys.stderr)
        return 1
    import jax
    import mujoco
    print(f"preflight: ok: jax {jax.__version__} on {jax.devices()}, mujoco {mujoco.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
