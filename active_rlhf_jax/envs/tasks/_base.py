"""Shared machinery of the Gymnasium-faithful MuJoCo tasks (both physics backends).

A task loads Gymnasium's own XML from the installed package, builds a physics backend
through :func:`make_physics`, and implements the task-specific parts (reset distribution,
observation, reward terms, healthy check) as pure functions of the physics data.
"""

from __future__ import annotations

import functools
import pathlib

import gymnasium
import jax
import jax.numpy as jnp
import mujoco
import numpy as np

from active_rlhf_jax.envs.base import Env, EnvState

#: Gymnasium's MuJoCo assets (the XML is always loaded from here, never copied).
ASSETS = pathlib.Path(gymnasium.__file__).resolve().parent / "envs" / "mujoco" / "assets"
FIDELITIES = ("gymnasium", "ls8", "fast")


@functools.lru_cache(maxsize=None)
def load_model(xml_file: str) -> mujoco.MjModel:
    """Compile Gymnasium's ``xml_file`` (cached; backends copy it before changing it)."""
    from active_rlhf_jax.envs.quiet import mujoco_warnings

    with mujoco_warnings():  # no settotalmass deprecation, no MUJOCO_LOG.TXT in the cwd
        return mujoco.MjModel.from_xml_path(str(ASSETS / xml_file))


def make_physics(backend: str, mj_model, frame_skip: int, need_cfrc_ext: bool, fidelity: str):
    """Backend name (``"mjx"`` or ``"mujoco"``) -> a :class:`Physics` for ``mj_model``."""
    if fidelity not in FIDELITIES:
        raise ValueError(f"fidelity: must be one of {list(FIDELITIES)}, got {fidelity!r}")
    if backend == "mjx":
        from active_rlhf_jax.envs.mjx_physics import MjxPhysics

        return MjxPhysics(mj_model, frame_skip, need_cfrc_ext, fidelity=fidelity)
    if backend == "mujoco":
        # Imported lazily: the C backend lives in its own module.
        from active_rlhf_jax.envs.mjx_physics import with_fidelity
        from active_rlhf_jax.envs.mujoco_physics import MujocoPhysics

        # Same solver settings on both backends (a copy; the shared model is unchanged).
        return MujocoPhysics(with_fidelity(mj_model, fidelity), frame_skip, need_cfrc_ext)
    raise ValueError(f"backend: must be 'mjx' or 'mujoco' for {mj_model!r}, got {backend!r}")


def float_dtype():
    return jnp.zeros(()).dtype  # float32, or float64 under jax_enable_x64


def cfrc_ext(data) -> jax.Array:
    """``cfrc_ext [nbody, 6]`` of either backend's data (MJX keeps it in ``data._impl``)."""
    impl = getattr(data, "_impl", None)
    if impl is not None and hasattr(impl, "cfrc_ext"):
        return impl.cfrc_ext
    return data.cfrc_ext


class MujocoTask(Env):
    """Base of the MuJoCo tasks: reset/step plumbing; subclasses give the task terms.

    Subclasses set ``env_id``, ``xml_file``, ``frame_skip``, ``episode_length``,
    ``defaults`` (the Gymnasium constructor options they accept, with Gymnasium's values
    except ``terminate_when_unhealthy`` which defaults to False as the reference runs it),
    ``metric_keys``, and implement ``_sample_init``, ``_obs`` and ``_terms``.
    """

    xml_file: str
    frame_skip: int
    need_cfrc_ext = False
    defaults: dict = {}
    metric_keys: tuple[str, ...] = ()

    def __init__(self, backend: str = "mjx", fidelity: str = "gymnasium", **options):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise ValueError(
                f"options: {unknown} not accepted by {self.env_id}; "
                f"accepted: {sorted(self.defaults) + ['fidelity']}"
            )
        self.options = {**self.defaults, **options}
        self.fidelity = fidelity
        self.mj_model = load_model(self.xml_file)
        self.physics = make_physics(
            backend, self.mj_model, self.frame_skip, self.need_cfrc_ext, fidelity
        )
        self.dt = self.physics.dt
        self.init_qpos = np.array(self.mj_model.qpos0)  # Gymnasium's init_qpos
        self.init_qvel = np.zeros(self.mj_model.nv)
        self.action_size = int(self.mj_model.nu)
        ctrlrange = np.array(self.mj_model.actuator_ctrlrange, np.float32)
        self.action_low, self.action_high = ctrlrange[:, 0], ctrlrange[:, 1]
        qpos, qvel = self.init_qpos, self.init_qvel
        self.observation_size = int(
            jax.eval_shape(lambda: self._obs(self.physics.init(qpos, qvel))).shape[0]
        )

    @property
    def backend(self) -> str:
        return self.physics.name

    # --- task-specific parts -------------------------------------------------------------
    def _sample_init(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """key -> (qpos [nq], qvel [nv]) from Gymnasium's ``reset_model`` distribution."""
        raise NotImplementedError

    def _obs(self, data) -> jax.Array:
        raise NotImplementedError

    def _terms(self, before, after, action) -> tuple[jax.Array, jax.Array, dict]:
        """(data before, data after, action) -> (reward, terminated bool, metrics)."""
        raise NotImplementedError

    # --- Env interface ---------------------------------------------------------------------
    def reset(self, key: jax.Array) -> EnvState:
        qpos, qvel = self._sample_init(key)
        data = self.physics.init(qpos, qvel)
        zero = jnp.zeros((), float_dtype())
        return EnvState(
            data=data,
            obs=self._obs(data).astype(float_dtype()),
            reward=zero,
            done=zero,
            metrics={k: zero for k in self.metric_keys},
        )

    def step(self, state: EnvState, action: jax.Array) -> EnvState:
        action = self.check_action(action)
        data = self.physics.step(state.data, action)
        reward, terminated, metrics = self._terms(state.data, data, action.astype(float_dtype()))
        dtype = float_dtype()
        return state.replace(
            data=data,
            obs=self._obs(data).astype(dtype),
            reward=reward.astype(dtype),
            done=terminated.astype(dtype),
            metrics={k: metrics[k].astype(dtype) for k in self.metric_keys},
        )

    # --- helpers shared by the locomotion tasks ------------------------------------------
    def _uniform(self, key, size, scale):
        return jax.random.uniform(key, (size,), float_dtype(), -scale, scale)

    def _ctrl_cost(self, action, weight):
        return weight * jnp.sum(jnp.square(action))
