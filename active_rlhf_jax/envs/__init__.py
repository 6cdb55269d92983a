"""Environments: Gymnasium-faithful MuJoCo tasks (MJX or C MuJoCo) and probe envs."""

from active_rlhf_jax.envs.base import Env, EnvState
from active_rlhf_jax.envs.registry import BACKENDS, known_ids, make, register, resolve_backend
from active_rlhf_jax.envs.wrappers import TrainingEnv

__all__ = [
    "BACKENDS",
    "Env",
    "EnvState",
    "TrainingEnv",
    "known_ids",
    "make",
    "register",
    "resolve_backend",
]
