"""JAX's persistent compilation cache, on by default for the command line.

A second run of the same experiment (or a resume) then skips most of XLA's compile: the
pipeline's programs take 20-70 s to compile on a 2-core CPU and minutes under MJX.

Where: ``$JAX_COMPILATION_CACHE_DIR`` if set (JAX's own variable), else
``$XDG_CACHE_HOME/active-rlhf-jax/jax`` (``~/.cache/active-rlhf-jax/jax``). Off with
``ACTIVE_RLHF_NO_COMPILE_CACHE=1``. Only programs that take at least
:data:`MIN_COMPILE_SECONDS` to compile are stored, so the cache holds the few large
programs of a run, not every small helper.

What it cannot keep: JAX never writes a program that contains a host callback to the
persistent cache, and the C MuJoCo backend (``env.backend mujoco``, what ``auto`` picks on
a CPU) steps through ``jax.pure_callback``. So on that backend the pipeline's large
programs (the initial phase and the chunk program) compile afresh on every run and resume;
only MJX and the pure-JAX probe environments get the cache's benefit.
:func:`uncacheable_reason` says so, and the runner prints it once per run. JAX's
pull request #38405 (merged 2026-06) lets the cache keep programs with host callbacks;
the jax 0.10.2 pinned here still refuses them (``jax/_src/compiler.py``, ``_cache_write``),
so a jax upgrade that carries it (to be checked against MJX parity and the tests) or the C
step as an XLA FFI custom call would lift this.
"""

from __future__ import annotations

import os
from pathlib import Path

MIN_COMPILE_SECONDS = 1.0
OFF_VARIABLE = "ACTIVE_RLHF_NO_COMPILE_CACHE"


def cache_dir(environ=os.environ) -> Path | None:
    """The directory the CLI caches compiled programs in, or None when turned off."""
    if environ.get(OFF_VARIABLE, "").strip().lower() in ("1", "true", "yes"):
        return None
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return Path(environ["JAX_COMPILATION_CACHE_DIR"]).expanduser()
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "active-rlhf-jax" / "jax"


def enable(environ=os.environ) -> Path | None:
    """Turn the persistent cache on (before the first compile) -> its directory or None.

    A directory that cannot be created leaves the cache off (a run never fails for it).
    """
    import jax

    if jax.config.jax_compilation_cache_dir:  # already set by the caller: keep it
        return Path(jax.config.jax_compilation_cache_dir)
    path = cache_dir(environ)
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    return path


def uncacheable_reason(env_backend: str) -> str | None:
    """Why the persistent cache cannot keep a run's programs, or None when it can.

    ``env_backend``: the environment's resolved backend (``Env.backend``). Checked against
    JAX itself: ``Not writing persistent cache entry ... because it uses host callbacks``
    in its compiler log for a C MuJoCo run, and three entries written for the same run on a
    probe environment (2026-12-04).
    """
    import jax

    if not jax.config.jax_compilation_cache_dir:
        return None
    if env_backend == "mujoco":
        return ("the persistent compilation cache cannot keep this run's programs: C MuJoCo "
                "steps through a host callback, which JAX never caches (MJX programs are kept)")
    return None
