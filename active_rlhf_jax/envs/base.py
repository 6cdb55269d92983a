"""The environment contract shared by every backend (MJX, C MuJoCo, pure-JAX probes).

An environment is a static Python object holding pure functions, in the brax/Playground
style::

    state = env.reset(key)            # EnvState, unbatched
    state = env.step(state, action)   # action: [action_size], float

Both are pure and jit/vmap compatible. ``state.reward`` is the *true* task reward; the
reward terms are in ``state.metrics``. ``state.done`` is 1.0 only on termination (an
unhealthy robot with ``terminate_when_unhealthy=True``); the fixed horizon is handled by
:class:`~active_rlhf_jax.envs.wrappers.TrainingEnv`, which also auto-resets.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


@struct.dataclass
class EnvState:
    """State of one (or, with leading axes, many) environments.

    Attributes:
        data: physics state (``mujoco.mjx.Data`` for MJX, the C backend's dataclass, or
            a probe's array); exposes ``qpos``/``qvel`` and ``.replace(...)`` for MuJoCo.
        obs: observation ``[..., observation_size]``.
        reward: true task reward of the last step ``[...]``.
        done: 1.0 where the last step terminated the episode ``[...]``.
        metrics: reward terms and diagnostics, each ``[...]``.
        info: bookkeeping added by wrappers (step counter, truncation, final obs, key).
    """

    data: Any
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    metrics: dict = struct.field(default_factory=dict)
    info: dict = struct.field(default_factory=dict)


class Env(abc.ABC):
    """Base class: subclasses set the sizes and bounds and implement reset/step."""

    #: Gymnasium id of the task (or ``probe/...``).
    env_id: str = ""
    observation_size: int
    action_size: int
    #: Fixed horizon in env steps (1000 for locomotion, 50 for Reacher).
    episode_length: int
    #: Per-dimension action bounds, numpy arrays ``[action_size]``.
    action_low: np.ndarray
    action_high: np.ndarray

    @abc.abstractmethod
    def reset(self, key: jax.Array) -> EnvState:
        """Sample an initial state. ``key``: a PRNG key. Returns an unbatched state."""

    @abc.abstractmethod
    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        """Advance one env step with ``action`` ``[action_size]`` (clipped to the bounds)."""

    @property
    def backend(self) -> str:
        return "jax"

    def check_action(self, action: jax.Array) -> jax.Array:
        """Validate an action at trace time and clip it to the bounds.

        Raises:
            ValueError: wrong trailing shape or a non-floating dtype (never broadcast).
        """
        action = jnp.asarray(action)
        if action.shape != (self.action_size,):
            raise ValueError(
                f"action: expected shape ({self.action_size},) for {self.env_id}, "
                f"got {tuple(action.shape)}"
            )
        if not jnp.issubdtype(action.dtype, jnp.floating):
            raise ValueError(f"action: expected a floating dtype, got {action.dtype}")
        return jnp.clip(action, self.action_low, self.action_high)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.env_id!r}, backend={self.backend!r})"
