"""``make(env_id, backend=..., **options)``: the one way to build an environment."""

from __future__ import annotations

from typing import Callable

import jax

from active_rlhf_jax.envs.base import Env
from active_rlhf_jax.envs.probes import PROBES

BACKENDS = ("auto", "mjx", "mujoco")

# env_id -> factory(backend: str, **options) -> Env. MuJoCo tasks register themselves in
# active_rlhf_jax.envs.tasks; probes ignore the backend.
_REGISTRY: dict[str, Callable[..., Env]] = {}
ALIASES: dict[str, str] = {}


def register(env_id: str, factory: Callable[..., Env], aliases: tuple[str, ...] = ()) -> None:
    _REGISTRY[env_id] = factory
    for alias in aliases:
        ALIASES[alias] = env_id


for _pid, _cls in PROBES.items():
    register(_pid, lambda backend="auto", _cls=_cls, **options: _cls(**options))


def known_ids() -> list[str]:
    _load_tasks()
    return sorted(_REGISTRY) + sorted(ALIASES)


def resolve_backend(backend: str) -> str:
    """``auto`` -> ``mujoco`` when JAX's default device is a CPU, else ``mjx``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        return "mujoco" if jax.default_backend() == "cpu" else "mjx"
    return backend


def fidelity_note(env, platform: str | None = None) -> str | None:
    """A one-line hint for an MJX env stepped on an accelerator (``platform``: JAX's
    default backend unless given) at the XML's solver settings, else None."""
    platform = platform or jax.default_backend()
    if platform == "cpu" or getattr(env, "backend", None) != "mjx":
        return None
    if getattr(env, "fidelity", None) != "gymnasium":
        return None
    return (f"MJX on {platform} at env.fidelity=gymnasium: --env.fidelity ls8 gives the same "
            "physics (docs/envs.md) about 4x faster (its line search is capped at 8)")


def make(env_id: str, backend: str = "auto", **options) -> Env:
    """Build an environment.

    Args:
        env_id: a Gymnasium id (``HalfCheetah-v5``, ...), a lower-case alias
            (``halfcheetah``), or a probe id (``probe/target``).
        backend: ``mjx``, ``mujoco`` (C MuJoCo through a host callback) or ``auto``.
        **options: task options (``terminate_when_unhealthy``, ``fidelity``, ...).

    Raises:
        ValueError: unknown id (the message lists the known ids) or backend.
    """
    _load_tasks()
    env_id = ALIASES.get(env_id, env_id)
    if env_id not in _REGISTRY:
        raise ValueError(f"env_id: unknown environment {env_id!r}; known ids: {known_ids()}")
    return _REGISTRY[env_id](backend=resolve_backend(backend), **options)


def _load_tasks() -> None:
    # Import lazily so that probes work without importing MuJoCo.
    try:
        import active_rlhf_jax.envs.tasks  # noqa: F401  (registers the MuJoCo tasks)
    except ModuleNotFoundError as e:  # pragma: no cover - only before tasks exist
        if e.name != "active_rlhf_jax.envs.tasks":
            raise
