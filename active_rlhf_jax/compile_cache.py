"""JAX's persistent compilation cache, on by default for the command line.

A second run of the same experiment (or a resume) then skips most of XLA's compile: the
pipeline's programs take 20-70 s to compile on a 2-core CPU and minutes under MJX.

Where: ``$JAX_COMPILATION_CACHE_DIR`` if set (JAX's own variable), else
``$XDG_CACHE_HOME/active-rlhf-jax/jax`` (``~/.cache/active-rlhf-jax/jax``). Off with
``ACTIVE_RLHF_NO_COMPILE_CACHE=1``. Only programs that take at least
:data:`MIN_COMPILE_SECONDS` to compile are stored, so the cache holds the few large
programs of a run, not every small helper.

What it could not keep before 2026-12-04: JAX never writes a program that contains a
``jax.pure_callback`` to the persistent cache, and the C MuJoCo backend (``env.backend
mujoco``, what ``auto`` picks on a CPU) stepped through one, so the pipeline's large
programs compiled afresh on every run and resume. It now steps through a named XLA
custom call on the CPU (``envs/host_call.py``), which the cache keeps like any other
program (the ``default`` preset's two programs: 16.7 + 17.1 s compiled, 3.7 + 2.9 s read back
on the 2-core CPU).
:func:`uncacheable_reason` still names the one case left, ``ACTIVE_RLHF_HOST_CALL=
callback`` (or C MuJoCo on a non-CPU platform), and the runner prints it once per run.
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

    ``env_backend``: the environment's resolved backend (``Env.backend``). Only C MuJoCo
    through ``jax.pure_callback`` is refused (JAX's log: ``Not writing persistent cache
    entry ... because it uses host callbacks``); through the custom call it is kept
    (``tests/test_host_call.py`` reads a program back in a second process).
    """
    import jax

    if not jax.config.jax_compilation_cache_dir:
        return None
    from active_rlhf_jax.envs.host_call import MODE_ENV_VAR, jax_caches_callbacks, mode

    if env_backend == "mujoco" and mode() == "callback" and not jax_caches_callbacks():
        return ("the persistent compilation cache cannot keep this run's programs: C MuJoCo "
                f"steps through jax.pure_callback here ({MODE_ENV_VAR}=callback or a non-CPU "
                "platform), which JAX never caches")
    return None
