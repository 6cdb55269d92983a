"""The physics-backend contract that the MuJoCo task code is written against.

Task code (observations, rewards, healthy checks, reset distributions) lives in
``active_rlhf_jax/envs/tasks.py`` and never knows which engine steps it. A backend
provides, for one ``mujoco.MjModel`` loaded from Gymnasium's installed XML:

* ``init(qpos [nq], qvel [nv]) -> data``: a physics state at that position/velocity with
  the kinematics computed (``mj_forward``), so ``xpos`` etc. are valid.
* ``step(data, ctrl [nu]) -> data``: ``frame_skip`` physics steps with that control,
  followed by ``mj_rnePostConstraint`` where the task needs ``cfrc_ext`` (Ant-v5), as
  Gymnasium does.

``data`` exposes at least ``qpos``, ``qvel``, ``xpos`` ``[nbody, 3]``, ``cfrc_ext``
``[nbody, 6]`` (when requested) and ``time``, and supports ``.replace(qpos=..., qvel=...)``
so a user or a test can put either backend into a given physical state.

Backends:
* ``mjx``: ``mujoco.mjx`` (``active_rlhf_jax/envs/mjx_physics.py``), differentiable,
  for accelerators.
* ``mujoco``: C MuJoCo as a host function (``active_rlhf_jax/envs/mujoco_physics.py``; an
  XLA custom call on a CPU, ``envs/host_call.py``), for CPUs; the exact C state (solver
  warm start included) travels in the state so the host function is pure.
"""

from __future__ import annotations

from typing import Any, Protocol

import jax


class Physics(Protocol):
    """What a physics backend provides (see the module docstring)."""

    frame_skip: int
    #: Seconds per env step: frame_skip * model.opt.timestep.
    dt: float
    #: Name of the backend: "mjx" or "mujoco".
    name: str

    def init(self, qpos: jax.Array, qvel: jax.Array) -> Any: ...

    def step(self, data: Any, ctrl: jax.Array) -> Any: ...
