"""C MuJoCo physics backend: ``mj_step`` called from inside jit as a host function.

Implements the :class:`~active_rlhf_jax.envs.physics.Physics` protocol for CPUs, where C
MuJoCo steps a batch of small models far faster than MJX (see ``docs/backends.md``).

Exactness. One env step is ``mj_setState`` -> ``ctrl`` -> ``mj_step(nstep=frame_skip)``
-> (``mj_rnePostConstraint``) -> ``mj_getState`` on a scratch ``MjData``. The state
round-trips with the ``mjSTATE_INTEGRATION`` spec, which includes the constraint solver's
warm start (``qacc_warmstart``): with it, restoring and stepping reproduces a continuously
stepped ``MjData`` bit for bit (HalfCheetah/Ant/Walker2d, 200 steps); without it (the
``mjSTATE_FULLPHYSICS`` spec that ``mujoco.rollout`` carries) trajectories drift by ~1 after
200 steps. That is why this module runs its own threaded loop over ``MjData`` instead of
``mujoco.rollout``, which cannot return the final warm start.

The exact float64 state travels in :class:`MujocoData` ``.exact`` as raw bit patterns
(``uint32`` pairs), so it survives a float32 pipeline unchanged. The float fields
(``qpos``, ``qvel``, ``xpos``, ``cfrc_ext``, ``time``) are in JAX's default float dtype
(float32, or float64 under ``jax_enable_x64``) and are what task code reads. A
``data.replace(qpos=..., qvel=...)`` is detected on the host: every element of the float
``qpos``/``qvel`` that no longer equals the carried exact value (cast to the float dtype)
is taken from the float field instead, so the user's values take effect at the next step
while untouched elements keep their exact float64 values.

Host calls. On a CPU the step is an XLA custom call into Python (:mod:`host_call`), so
the persistent compilation cache keeps programs that step C MuJoCo; elsewhere, or with
``ACTIVE_RLHF_HOST_CALL=callback``, it is ``jax.pure_callback``. Both run the same host
code; the programs name it by a digest of the model (:attr:`MujocoPhysics.key`).

Purity. The callback's outputs depend only on its inputs: every step starts from
``mj_setState`` on a scratch ``MjData`` (one per concurrent chunk) (``mj_step`` recomputes everything
else from the integration state), so it is safe under ``jit``, ``lax.scan``, nested
``vmap`` (any leading batch axes are flattened into one host batch), and concurrent calls.

Threads. A host batch is split into contiguous chunks stepped on a thread pool (MuJoCo
releases the GIL inside ``mj_step``). The thread count is ``num_threads`` if given, else
the environment variable ``ACTIVE_RLHF_MUJOCO_THREADS``, else ``os.cpu_count()``.

Devices. Under plain ``jit`` a host callback runs once, for the whole batch, on one device.
To spread env batches over several CPU devices (``XLA_FLAGS=
--xla_force_host_platform_device_count=N``), wrap the batched function with
:func:`shard_envs` so that each device calls back with its own shard.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import queue
import threading
from typing import Callable

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct

from active_rlhf_jax.envs.host_call import host_call

#: Environment variable read for the default thread count.
THREADS_ENV_VAR = "ACTIVE_RLHF_MUJOCO_THREADS"
_SPEC = mujoco.mjtState.mjSTATE_INTEGRATION
_CHUNKS_PER_THREAD = 4
_SMALL_PER_THREAD = 8
_MIN_PER_THREAD = 3


@struct.dataclass
class MujocoData:
    """C-backend physics state (field names follow ``mujoco.mjx.Data``).

    Attributes:
        qpos: joint positions ``[..., nq]`` (float dtype of JAX).
        qvel: joint velocities ``[..., nv]``.
        xpos: body positions ``[..., nbody, 3]`` (as left by the last ``mj_step``, i.e.
            the kinematics at the start of its last physics step, like Gymnasium's data).
        cfrc_ext: external contact forces ``[..., nbody, 6]`` (zeros unless the backend
            was built with ``need_cfrc_ext``).
        time: simulation time ``[...]``.
        exact: the ``mjSTATE_INTEGRATION`` state as float64 bit patterns,
            ``[..., 2 * nstate]`` uint32 (warm start included).
    """

    qpos: jax.Array
    qvel: jax.Array
    xpos: jax.Array
    cfrc_ext: jax.Array
    time: jax.Array
    exact: jax.Array


def default_num_threads() -> int:
    """``$ACTIVE_RLHF_MUJOCO_THREADS`` if set, else ``os.cpu_count()``."""
    value = os.environ.get(THREADS_ENV_VAR)
    if value:
        n = int(value)
        if n < 1:
            raise ValueError(f"{THREADS_ENV_VAR}: must be >= 1, got {value!r}")
        return n
    return os.cpu_count() or 1


def _float_dtype():
    return jnp.zeros(()).dtype  # float32, or float64 under jax_enable_x64


def _component_slice(model: mujoco.MjModel, bit: int) -> slice:
    """Where component ``bit`` of the integration spec sits in the state vector."""
    start = mujoco.mj_stateSize(model, int(_SPEC) & (bit - 1))
    return slice(start, start + mujoco.mj_stateSize(model, bit))


class MujocoPhysics:
    """C MuJoCo backend for one ``MjModel`` (see the module docstring).

    Args:
        mj_model: the compiled model (loaded from Gymnasium's XML); not modified.
        frame_skip: physics steps per env step.
        need_cfrc_ext: call ``mj_rnePostConstraint`` after each env step so ``cfrc_ext``
            is filled (as Gymnasium does); otherwise ``cfrc_ext`` is zeros.
        num_threads: host threads per callback; default :func:`default_num_threads`.
    """

    name = "mujoco"

    def __init__(
        self,
        mj_model: mujoco.MjModel,
        frame_skip: int,
        need_cfrc_ext: bool = False,
        num_threads: int | None = None,
    ):
        if frame_skip < 1:
            raise ValueError(f"frame_skip: must be >= 1, got {frame_skip}")
        num_threads = default_num_threads() if num_threads is None else int(num_threads)
        if num_threads < 1:
            raise ValueError(f"num_threads: must be >= 1, got {num_threads}")
        self.mj_model = mj_model
        self.frame_skip = int(frame_skip)
        self.dt = float(self.frame_skip * mj_model.opt.timestep)
        self.need_cfrc_ext = bool(need_cfrc_ext)
        self.num_threads = num_threads
        m = mj_model
        self.nq, self.nv, self.nu, self.nbody = m.nq, m.nv, m.nu, m.nbody
        self.nstate = mujoco.mj_stateSize(m, _SPEC)
        st = mujoco.mjtState
        self._time = _component_slice(m, st.mjSTATE_TIME).start
        self._qpos = _component_slice(m, st.mjSTATE_QPOS)
        self._qvel = _component_slice(m, st.mjSTATE_QVEL)
        self._ctrl = _component_slice(m, st.mjSTATE_CTRL)
        buf = np.empty(mujoco.mj_sizeModel(m), np.uint8)
        mujoco.mj_saveModel(m, None, buf)
        #: Names this physics in compiled programs, the same in every process: a digest of
        #: the model (options included), the frame skip and ``need_cfrc_ext``.
        self.key = "mujoco-{}-{}-{}".format(
            hashlib.sha256(buf.tobytes()).hexdigest()[:20], self.frame_skip,
            int(self.need_cfrc_ext),
        )
        self._free: queue.SimpleQueue[mujoco.MjData] = queue.SimpleQueue()
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MujocoPhysics(frame_skip={self.frame_skip}, threads={self.num_threads})"

    # ----------------------------------------------------------------- traced API

    def _shapes(self, batch: tuple[int, ...]):
        f = _float_dtype()
        return MujocoData(
            qpos=jax.ShapeDtypeStruct(batch + (self.nq,), f),
            qvel=jax.ShapeDtypeStruct(batch + (self.nv,), f),
            xpos=jax.ShapeDtypeStruct(batch + (self.nbody, 3), f),
            cfrc_ext=jax.ShapeDtypeStruct(batch + (self.nbody, 6), f),
            time=jax.ShapeDtypeStruct(batch, f),
            exact=jax.ShapeDtypeStruct(batch + (2 * self.nstate,), jnp.uint32),
        )

    def init(self, qpos: jax.Array, qvel: jax.Array) -> MujocoData:
        """``qpos [nq]``, ``qvel [nv]`` -> state after ``mj_resetData`` + set + ``mj_forward``."""
        f = _float_dtype()
        qpos = jnp.asarray(qpos, f)
        qvel = jnp.asarray(qvel, f)
        if qpos.shape != (self.nq,) or qvel.shape != (self.nv,):
            raise ValueError(
                f"init: expected qpos ({self.nq},) and qvel ({self.nv},), "
                f"got {qpos.shape} and {qvel.shape}"
            )
        return host_call(self.key + "-init", self._host_init, self._shapes, qpos, qvel)

    def step(self, data: MujocoData, ctrl: jax.Array) -> MujocoData:
        """``frame_skip`` C ``mj_step`` calls with ``ctrl [nu]`` (unbatched; vmap for batches)."""
        f = _float_dtype()
        ctrl = jnp.asarray(ctrl, f)
        if ctrl.shape != (self.nu,):
            raise ValueError(f"step: expected ctrl ({self.nu},), got {ctrl.shape}")
        return host_call(
            self.key + "-step",
            self._host_step,
            self._shapes,
            data.exact,
            jnp.asarray(data.qpos, f),
            jnp.asarray(data.qvel, f),
            ctrl,
        )

    # ------------------------------------------------------------------ host side

    def _with_scratch(self, fn: Callable[[mujoco.MjData], None]) -> None:
        # Scratch MjData live in a free list, not in thread-locals: callbacks run on XLA's
        # own threads, and MjData left in their thread-locals crash the process at exit.
        try:
            d = self._free.get_nowait()
        except queue.Empty:
            d = mujoco.MjData(self.mj_model)
        try:
            fn(d)
        finally:
            self._free.put(d)

    def _parallel(self, n: int, chunk_fn: Callable[[int, int], None]) -> None:
        """Run ``chunk_fn(lo, hi)`` over contiguous chunks of ``range(n)`` on the pool.

        A hand-off to the pool costs about two Walker2d env steps on this project's 2-core
        CPU (``benchmarks/host_threads.py``), so a thread is used only for at least
        ``_MIN_PER_THREAD`` envs (5 envs: serial, 592 us a call against 727 us in 5 pool
        chunks), and batches of fewer than ``_SMALL_PER_THREAD`` envs per thread get one
        chunk per thread, the first on the calling thread (10 envs: 819 us against 1,175
        us). Larger batches get a few chunks per thread, all on the pool, so one slow
        (preempted) thread does not hold up the batch (the caller taking a chunk there
        oversubscribed the cores: 0.85-0.93x at 40 and 256 envs).
        """
        threads = min(self.num_threads, n // _MIN_PER_THREAD)
        if threads <= 1:
            if n:
                chunk_fn(0, n)
            return
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    self.num_threads, thread_name_prefix="mujoco_physics"
                )
        small = n < _SMALL_PER_THREAD * threads
        k = threads if small else min(n, _CHUNKS_PER_THREAD * threads)
        bounds = np.linspace(0, n, k + 1).astype(int)
        first = 1 if small else 0  # a small batch's first chunk runs on the calling thread
        futures = [
            self._pool.submit(chunk_fn, lo, hi)
            for lo, hi in zip(bounds[first:-1], bounds[first + 1:], strict=True)
        ]
        try:
            if small:
                chunk_fn(int(bounds[0]), int(bounds[1]))
        finally:  # never return (or raise) while a pool thread still writes the outputs
            for fut in futures:
                fut.result()

    def _outputs(self, exact64: np.ndarray, xpos, cfrc, batch, dtype) -> MujocoData:
        return MujocoData(
            qpos=exact64[:, self._qpos].astype(dtype).reshape(batch + (self.nq,)),
            qvel=exact64[:, self._qvel].astype(dtype).reshape(batch + (self.nv,)),
            xpos=xpos.astype(dtype).reshape(batch + (self.nbody, 3)),
            cfrc_ext=cfrc.astype(dtype).reshape(batch + (self.nbody, 6)),
            time=exact64[:, self._time].astype(dtype).reshape(batch),
            exact=exact64.view(np.uint32).reshape(batch + (2 * self.nstate,)),
        )

    def _host_init(self, qpos, qvel) -> MujocoData:
        qpos, qvel = np.asarray(qpos), np.asarray(qvel)
        dtype = qpos.dtype
        batch = qpos.shape[:-1]
        q = np.asarray(qpos, np.float64).reshape(-1, self.nq)
        v = np.asarray(qvel, np.float64).reshape(-1, self.nv)
        n = q.shape[0]
        exact = np.zeros((n, self.nstate), np.float64)
        xpos = np.zeros((n, self.nbody, 3), np.float64)
        cfrc = np.zeros((n, self.nbody, 6), np.float64)
        m = self.mj_model

        def run(d, lo, hi):
            for i in range(lo, hi):
                mujoco.mj_resetData(m, d)
                d.qpos[:] = q[i]
                d.qvel[:] = v[i]
                mujoco.mj_forward(m, d)
                mujoco.mj_getState(m, d, exact[i], _SPEC)
                xpos[i] = d.xpos
                cfrc[i] = d.cfrc_ext  # zero after mj_resetData, as in Gymnasium's reset

        self._parallel(n, lambda lo, hi: self._with_scratch(lambda d: run(d, lo, hi)))
        return self._outputs(exact, xpos, cfrc, batch, dtype)

    def _host_step(self, exact_bits, qpos, qvel, ctrl) -> MujocoData:
        qpos, qvel, ctrl = np.asarray(qpos), np.asarray(qvel), np.asarray(ctrl)
        dtype = qpos.dtype
        batch = qpos.shape[:-1]
        bits = np.ascontiguousarray(exact_bits, dtype=np.uint32).reshape(-1, 2 * self.nstate)
        exact = bits.view(np.float64).copy()  # [n, nstate], writable
        n = exact.shape[0]
        # Honour data.replace(qpos=..., qvel=...): take every float element that differs
        # from the exact value as seen in the float dtype.
        for sl, given in ((self._qpos, qpos), (self._qvel, qvel)):
            given = given.reshape(n, -1)
            carried = exact[:, sl]
            changed = carried.astype(dtype) != given
            if changed.any():
                exact[:, sl] = np.where(changed, given.astype(np.float64), carried)
        exact[:, self._ctrl] = ctrl.reshape(n, self.nu).astype(np.float64)
        xpos = np.empty((n, self.nbody, 3), np.float64)
        cfrc = np.zeros((n, self.nbody, 6), np.float64)
        m, nstep, post = self.mj_model, self.frame_skip, self.need_cfrc_ext

        def run(d, lo, hi):
            for i in range(lo, hi):
                mujoco.mj_setState(m, d, exact[i], _SPEC)
                mujoco.mj_step(m, d, nstep)
                if post:
                    mujoco.mj_rnePostConstraint(m, d)
                    cfrc[i] = d.cfrc_ext
                mujoco.mj_getState(m, d, exact[i], _SPEC)
                xpos[i] = d.xpos

        self._parallel(n, lambda lo, hi: self._with_scratch(lambda d: run(d, lo, hi)))
        return self._outputs(exact, xpos, cfrc, batch, dtype)


def shard_envs(fn: Callable, mesh: jax.sharding.Mesh | None = None, axis_name: str = "envs"):
    """Wrap a batched env function so each device steps (and calls back for) its own shard.

    ``fn`` takes and returns pytrees whose every leaf has the env batch as its leading
    axis (e.g. ``TrainingEnv.step`` or ``jax.vmap(physics.step)``); the batch must be
    divisible by the number of devices in ``mesh`` (default: a 1-D mesh over all devices).
    Under plain ``jit`` the C backend's host callback runs for the whole batch on one
    device; under the returned ``shard_map`` every device issues its own callback.

    Example::

        step = jax.jit(shard_envs(jax.vmap(physics.step)))
        data = step(data, ctrl)          # data, ctrl: [B, ...], B % n_devices == 0
    """
    from jax.sharding import PartitionSpec as P

    if mesh is None:
        mesh = jax.sharding.Mesh(np.array(jax.devices()), (axis_name,))
    spec = P(axis_name)
    return jax.shard_map(fn, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
