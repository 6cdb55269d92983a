"""MJX physics backend: ``mujoco.mjx`` stepping of a Gymnasium MuJoCo model.

Implements the :class:`~active_rlhf_jax.envs.physics.Physics` protocol:

* ``init(qpos, qvel)``: ``mjx.make_data`` with that position/velocity, then
  ``mjx.forward`` (Gymnasium's ``set_state`` calls ``mj_forward``).
* ``step(data, ctrl)``: ``frame_skip`` calls of ``mjx.step`` in a ``lax.fori_loop``, then
  ``mjx.rne_postconstraint`` when the task reads ``cfrc_ext`` (Gymnasium calls
  ``mj_rnePostConstraint`` after every ``do_simulation``).

The float dtype follows JAX: float32 by default, float64 under ``jax_enable_x64``. MJX
builds its integer contact bookkeeping from NumPy defaults at ``make_data`` time (int64
under x64), while the traced step may produce int32 fields; a ``fori_loop`` carry must keep
its dtypes, so every step casts its output back to the input's dtypes (``_match_dtypes``).

Fidelity:

* ``"gymnasium"`` (default): the solver settings of Gymnasium's XML (Newton, 100
  iterations, 50 line-search iterations, tolerance 1e-8). MJX stops at the tolerance, so
  these are upper bounds, but under ``vmap`` every env runs as long as the slowest one.
* ``"ls8"``: the XML's 100 iterations and tolerance, the line search capped at 8
  iterations. MJX's line search is a fixed-length ``scan`` of ``lax.cond`` steps; under
  ``vmap`` the conds become selects, so every solver iteration of every env runs all
  ``ls_iterations`` of them. C MuJoCo never needed more than 8 line-search evaluations on
  HalfCheetah and Hopper and at most 10 on Walker2d (``benchmarks/mjx_latency.py
  --solver-iterations``), and on an H200 the cap cuts HalfCheetah's step at 512 envs from
  44 ms to 10 ms (docs/benchmarks.md).
* ``"fast"``: ``iterations=4``, ``ls_iterations=8`` for accelerator throughput.

The effect of each on parity is measured in ``docs/envs.md``
(``benchmarks/parity_horizons.py``).
"""

from __future__ import annotations

import copy

import jax
import jax.numpy as jnp
import mujoco

from active_rlhf_jax.envs.quiet import import_mjx

mjx = import_mjx()  # ``from mujoco import mjx`` without its "Failed to import warp" prints

FIDELITIES = ("gymnasium", "ls8", "fast")
#: Solver settings of each fidelity: (iterations, ls_iterations); None keeps the XML's.
SOLVER_SETTINGS = {"gymnasium": (None, None), "ls8": (None, 8), "fast": (4, 8)}
FAST_SOLVER = SOLVER_SETTINGS["fast"]


def with_fidelity(mj_model: mujoco.MjModel, fidelity: str) -> mujoco.MjModel:
    """A copy of ``mj_model`` with ``fidelity``'s solver settings (the caller's model is
    never changed)."""
    if fidelity not in FIDELITIES:
        raise ValueError(f"fidelity: must be one of {list(FIDELITIES)}, got {fidelity!r}")
    model = copy.deepcopy(mj_model)
    iterations, ls_iterations = SOLVER_SETTINGS[fidelity]
    if iterations is not None:
        model.opt.iterations = iterations
    if ls_iterations is not None:
        model.opt.ls_iterations = ls_iterations
    return model


def _float_dtype():
    return jnp.zeros(()).dtype  # float32, or float64 under jax_enable_x64


def _match_dtypes(new, like):
    """Cast every leaf of ``new`` to the dtype of the matching leaf of ``like``."""
    return jax.tree.map(
        lambda a, b: a.astype(b.dtype) if hasattr(a, "dtype") and a.dtype != b.dtype else a,
        new,
        like,
    )


class MjxPhysics:
    """``mujoco.mjx`` backend for one ``MjModel`` (see the module docstring).

    Args:
        mj_model: the compiled model (loaded from Gymnasium's XML). It is copied, so
            the fidelity's solver settings never leak into the caller's model.
        frame_skip: physics steps per env step.
        need_cfrc_ext: compute ``cfrc_ext`` (``rne_postconstraint``) after each env step.
        fidelity: ``"gymnasium"``, ``"ls8"`` or ``"fast"``.
    """

    name = "mjx"

    def __init__(
        self,
        mj_model: mujoco.MjModel,
        frame_skip: int,
        need_cfrc_ext: bool = False,
        fidelity: str = "gymnasium",
    ):
        if frame_skip < 1:
            raise ValueError(f"frame_skip: must be >= 1, got {frame_skip}")
        model = with_fidelity(mj_model, fidelity)
        self.mj_model = model
        self.frame_skip = int(frame_skip)
        self.dt = float(frame_skip * model.opt.timestep)
        self.need_cfrc_ext = bool(need_cfrc_ext)
        self.fidelity = fidelity
        # Placed lazily: the dtype (float32/float64) is read when the model is first used,
        # so constructing an env before enabling x64 still gives float64 physics.
        self._models: dict = {}

    @property
    def model(self) -> mjx.Model:
        dtype = _float_dtype()
        if dtype not in self._models:
            # Concrete arrays even when first called under jit (no leaked tracers).
            with jax.ensure_compile_time_eval():
                self._models[dtype] = mjx.put_model(self.mj_model, impl="jax")
        return self._models[dtype]

    def init(self, qpos: jax.Array, qvel: jax.Array) -> mjx.Data:
        """``qpos [nq]``, ``qvel [nv]`` -> ``mjx.Data`` after ``mjx.forward``."""
        model = self.model
        data = mjx.make_data(model, impl="jax")
        dtype = data.qpos.dtype
        data = data.replace(qpos=jnp.asarray(qpos, dtype), qvel=jnp.asarray(qvel, dtype))
        # No rne_postconstraint here: Gymnasium's reset (mj_resetData + mj_forward) leaves
        # cfrc_ext at zero, and Ant-v5's first observation reads those zeros.
        return _match_dtypes(mjx.forward(model, data), data)

    def step(self, data: mjx.Data, ctrl: jax.Array) -> mjx.Data:
        """``frame_skip`` physics steps with ``ctrl [nu]``; returns the new ``mjx.Data``."""
        model = self.model
        data = data.replace(ctrl=jnp.asarray(ctrl, data.qpos.dtype))

        def body(_, d):
            return _match_dtypes(mjx.step(model, d), d)

        out = jax.lax.fori_loop(0, self.frame_skip, body, data)
        if self.need_cfrc_ext:
            out = _match_dtypes(mjx.rne_postconstraint(model, out), out)
        return out
