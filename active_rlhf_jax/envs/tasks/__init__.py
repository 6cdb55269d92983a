"""Gymnasium-faithful MuJoCo tasks; importing this module registers them with ``make``.

Each task loads Gymnasium's own XML and reproduces the Gymnasium task (frame skip,
observation layout, reward terms and weights, healthy ranges, reset noise, horizon), on
either physics backend (``mjx`` or ``mujoco``). ``terminate_when_unhealthy`` defaults to
False (fixed-horizon episodes, as the reference runs them). See ``docs/envs.md``.
"""

from active_rlhf_jax.envs.registry import register
from active_rlhf_jax.envs.tasks._base import ASSETS, MujocoTask, load_model, make_physics
from active_rlhf_jax.envs.tasks.locomotion import (
    AntV5,
    HalfCheetahV5,
    HopperV4,
    HopperV5,
    SwimmerV5,
    Walker2dV5,
)
from active_rlhf_jax.envs.tasks.reacher import ReacherV4, ReacherV5

TASKS = {
    cls.env_id: cls
    for cls in (
        HalfCheetahV5,
        HopperV5,
        HopperV4,
        Walker2dV5,
        SwimmerV5,
        ReacherV4,
        ReacherV5,
        AntV5,
    )
}
_ALIASES = {
    "HalfCheetah-v5": ("halfcheetah",),
    "Hopper-v5": ("hopper",),
    "Walker2d-v5": ("walker2d",),
    "Swimmer-v5": ("swimmer",),
    "Reacher-v5": ("reacher",),
    "Ant-v5": ("ant",),
}

for _env_id, _cls in TASKS.items():
    register(_env_id, _cls, aliases=_ALIASES.get(_env_id, ()))

__all__ = ["ASSETS", "TASKS", "MujocoTask", "load_model", "make_physics"]
