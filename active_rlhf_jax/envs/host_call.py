"""A host (numpy) function called from inside ``jit`` as a cacheable XLA custom call.

``jax.pure_callback`` works everywhere, but JAX never writes a program that contains one
to the persistent compilation cache (``jax/_src/compiler.py``: the callback object is
bound to the executable, so a program read back in another process would have nothing
to call). The C MuJoCo backend steps through such a function, so before this module its
programs compiled afresh on every run and every resume (20-70 s on a 2-core CPU).

:func:`host_call` calls the same kind of function through a custom-call *target name*
instead: one legacy XLA custom-call target, registered in every process that imports
this module (a ``ctypes`` trampoline into Python), with a string in the program that
names the Python function by a key the caller chooses and describes every buffer. The
program then holds no Python object, the persistent cache keeps it, and a process that
reads it back finds the function under the same key, because the caller registers it
while tracing, which happens before any cache lookup.

Contract of ``fn`` (as for ``pure_callback(..., vmap_method="broadcast_all")``): it takes
numpy arrays that share any number of leading batch axes and returns a pytree of arrays
with the shapes and dtypes of ``result_shape(batch)``. It must be a pure function of its
inputs, and ``key`` must name it uniquely and identically in every process (e.g. a digest
of the model it steps): two functions under one key would silently share programs.

Batching. A ``custom_vmap`` rule folds every ``vmap`` axis into one leading host batch,
so the host sees ``[n, ...]`` arrays and one call per program step, as before.

Errors. A legacy custom call cannot make XLA fail, so an exception inside ``fn`` prints
its traceback to stderr, fills the outputs with NaN (floats) or zeros, and is kept:
:func:`raise_pending` raises it on the host (the pipeline calls it after every compiled
call; its NaN guard stops the run on the NaNs in any case).

Where it applies: the CPU platform (``jax.default_backend() == "cpu"``). On other
platforms, and with ``ACTIVE_RLHF_HOST_CALL=callback``, :func:`host_call` is
``jax.pure_callback``; both paths run the same ``fn`` and give bitwise equal results
(``tests/test_host_call.py``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import threading
import traceback
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

#: The XLA custom-call target every host call goes through.
TARGET = "active_rlhf_jax_host_call"
#: ``callback`` forces ``jax.pure_callback``; ``ffi`` (default) the cacheable custom call.
MODE_ENV_VAR = "ACTIVE_RLHF_HOST_CALL"
# Legacy custom call, "status returning unified":
# void fn(void* out, const void** in, const char* opaque, size_t opaque_len, void* status)
_API_VERSION = 3
_SEP = "|"

_FUNCTIONS: dict[str, Callable[..., Any]] = {}
_ERRORS: list[tuple[str, BaseException]] = []
_registered = False
_register_lock = threading.Lock()

_PROTOTYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p,
    ctypes.c_size_t, ctypes.c_void_p,
)


class HostCallError(RuntimeError):
    """A host function called from a compiled program raised."""


def mode() -> str:
    """``"ffi"`` or ``"callback"``: how :func:`host_call` reaches the host on this process."""
    value = os.environ.get(MODE_ENV_VAR, "ffi").strip().lower() or "ffi"
    if value not in ("ffi", "callback"):
        raise ValueError(f"{MODE_ENV_VAR}: must be 'ffi' or 'callback', got {value!r}")
    if value == "ffi" and jax.default_backend() != "cpu":
        return "callback"
    return value


def jax_caches_callbacks() -> bool:
    """Whether this JAX writes programs with a ``pure_callback`` to the persistent cache.

    jax 0.10.2 (pinned) refuses them (its log: ``Not writing persistent cache entry ...
    because it uses host callbacks``); jax 0.11.2 writes them (``tests/test_host_call.py``
    run under it, 2026-12-04). Versions between were not checked; the first with the
    change is taken to be 0.11.
    """
    major, minor = (int(x) for x in jax.__version__.split(".")[:2])
    return (major, minor) >= (0, 11)


def raise_pending() -> None:
    """Raise (once) the first error a host function hit since the last call, if any."""
    if _ERRORS:
        key, exc = _ERRORS[0]
        _ERRORS.clear()
        raise HostCallError(f"host function {key!r} raised {exc!r} inside a compiled call "
                            "(traceback printed to stderr)") from exc


def _spec(arrays) -> str:
    return ";".join(
        np.dtype(a.dtype).str + ":" + ",".join(str(int(d)) for d in a.shape) for a in arrays
    )


def _parse_spec(text: str) -> tuple[tuple[np.dtype, tuple[int, ...]], ...]:
    out = []
    for item in text.split(";") if text else []:
        dtype, shape = item.split(":")
        out.append((np.dtype(dtype), tuple(int(d) for d in shape.split(",")) if shape else ()))
    return tuple(out)


@functools.lru_cache(maxsize=256)
def _layout(text: str):
    """``opaque -> (key, input specs, output specs)``, parsed once per program, not per call."""
    key, spec_in, spec_out = text.split(_SEP)
    return key, _parse_spec(spec_in), _parse_spec(spec_out)


class _Buffer:
    """An XLA buffer described by the array interface, for :func:`_view`."""

    __slots__ = ("__array_interface__",)

    def __init__(self, address: int, dtype: np.dtype, shape: tuple[int, ...]):
        self.__array_interface__ = {"data": (address, False), "shape": shape,
                                    "typestr": dtype.str, "version": 3}


def _view(address: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """A numpy view of an XLA buffer (no copy); writable. Through the array interface: a
    quarter of the time of a ctypes array (1.7 against 6.5 us; ten buffers a C step)."""
    if 0 in shape:
        return np.empty(shape, dtype)
    return np.asarray(_Buffer(address, dtype, shape))


def _handler(out, ins, opaque, opaque_len, status):  # noqa: ARG001 (status unused)
    key, ins_spec, outs_spec = _layout(ctypes.string_at(opaque, opaque_len).decode())
    if len(outs_spec) == 1:
        out_ptrs = [out]
    else:
        table = ctypes.cast(out, ctypes.POINTER(ctypes.c_void_p))
        out_ptrs = [table[i] for i in range(len(outs_spec))]
    outputs = [_view(p, d, s) for p, (d, s) in zip(out_ptrs, outs_spec, strict=True)]
    try:
        inputs = [
            _view(ins[i], d, s) for i, (d, s) in enumerate(ins_spec)
        ]
        fn = _FUNCTIONS.get(key)
        if fn is None:
            raise LookupError(f"no host function registered under {key!r} in this process")
        results = jax.tree.leaves(fn(*inputs))
        if len(results) != len(outputs):
            raise ValueError(f"returned {len(results)} arrays, expected {len(outputs)}")
        for dst, res in zip(outputs, results, strict=True):
            res = np.asarray(res)
            if res.shape != dst.shape or res.dtype != dst.dtype:
                raise ValueError(f"returned {res.dtype}{list(res.shape)}, expected "
                                 f"{dst.dtype}{list(dst.shape)}")
            np.copyto(dst, res)
    except BaseException as exc:  # noqa: BLE001 (reported through raise_pending)
        traceback.print_exc(file=sys.stderr)
        _ERRORS.append((key, exc))
        for dst in outputs:
            dst[...] = np.nan if np.issubdtype(dst.dtype, np.inexact) else 0


_TRAMPOLINE = _PROTOTYPE(_handler)  # module-level: must outlive every program


def _ensure_registered() -> None:
    global _registered
    with _register_lock:
        if not _registered:
            jax.ffi.register_ffi_target(
                TARGET, jax.ffi.pycapsule(_TRAMPOLINE), platform="cpu", api_version=0
            )
            _registered = True


def _batched(key: str, result_shape: Callable[[tuple[int, ...]], Any]):
    """The custom call over arrays with one leading batch axis ``n`` (shared by all)."""

    @jax.custom_batching.custom_vmap
    def call(*args):
        n = args[0].shape[0]
        leaves, tree = jax.tree.flatten(result_shape((n,)))
        opaque = _SEP.join((key, _spec(args), _spec(leaves)))
        outs = jax.ffi.ffi_call(
            TARGET, leaves, custom_call_api_version=_API_VERSION,
            legacy_backend_config=opaque,
        )(*args)
        return jax.tree.unflatten(tree, outs)

    @call.def_vmap
    def _rule(axis_size, in_batched, *args):
        flat = []
        for a, batched in zip(args, in_batched, strict=True):
            if not batched:
                a = jnp.broadcast_to(a, (axis_size,) + a.shape)
            flat.append(a.reshape((axis_size * a.shape[1],) + a.shape[2:]))
        out = call(*flat)
        out = jax.tree.map(lambda o: o.reshape((axis_size, -1) + o.shape[1:]), out)
        return out, jax.tree.map(lambda _: True, out)

    return call


def host_call(key: str, fn: Callable[..., Any], result_shape: Callable[[tuple[int, ...]], Any],
              *args: jax.Array):
    """``fn(*args)`` on the host from traced code (unbatched; ``vmap`` it for batches).

    Args:
        key: names ``fn`` in every process (no ``|``); see the module docstring.
        fn: the host function (numpy in, pytree of numpy out; any leading batch axes).
        result_shape: ``batch -> pytree of jax.ShapeDtypeStruct`` of ``fn``'s outputs for
            inputs with leading axes ``batch`` (``()`` unbatched).
        *args: arrays, unbatched.

    Returns:
        the pytree of ``result_shape(())``.
    """
    if _SEP in key:
        raise ValueError(f"host_call: key must not contain {_SEP!r}, got {key!r}")
    args = tuple(jnp.asarray(a) for a in args)
    if mode() == "callback":
        return jax.pure_callback(fn, result_shape(()), *args, vmap_method="broadcast_all")
    _FUNCTIONS[key] = fn
    _ensure_registered()
    out = _batched(key, result_shape)(*(a[None] for a in args))
    return jax.tree.map(lambda o: o[0], out)
