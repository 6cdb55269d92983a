"""JAX's multi-process runtime for seed sweeps larger than one machine.

Every process runs the same program (``active-rlhf train ... --coordinator HOST:PORT
--num-processes N --process-id I``); ``jax.distributed`` joins their devices into one
global device list, the runner's seed mesh spans all of them, and the seed axis is split
over the devices with ``shard_map`` exactly as on one machine. Seeds never communicate, so
the only cross-process traffic is gathering each chunk's metrics (and the final state's
policy and evaluation) to every process; process 0 alone writes logs and files, while all
processes take part in orbax's checkpoint saves (which need a directory every process
sees, e.g. a shared file system across machines).

On CPU the cross-process collectives use gloo (set here before initialising).
"""

from __future__ import annotations

import jax
import numpy as np

from active_rlhf_jax.config import ConfigError


def initialize(coordinator: str, num_processes: int, process_id: int) -> None:
    """Join the multi-process runtime (call before any other JAX work).

    Args:
        coordinator: ``host:port`` of process 0's coordination service.
        num_processes: processes in all; process_id: this one's index in 0..N-1.
    """
    if num_processes < 1:
        raise ConfigError("num_processes", f"must be at least 1, got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ConfigError("process_id", f"must be in 0..{num_processes - 1}, got {process_id}")
    if ":" not in coordinator:
        raise ConfigError("coordinator", f"must be host:port, got {coordinator!r}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)


def is_multiprocess() -> bool:
    return jax.process_count() > 1


def is_main_process() -> bool:
    return jax.process_index() == 0


def to_global(x: np.ndarray, mesh) -> jax.Array:
    """A host array every process holds in full -> a global array split on axis 0 over ``mesh``."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, NamedSharding(mesh, P("seeds")), lambda i: x[i])


def fetch(tree):
    """Device arrays (global ones included) -> host numpy on every process."""
    if is_multiprocess():
        from jax.experimental import multihost_utils

        return multihost_utils.process_allgather(tree, tiled=True)
    return jax.device_get(tree)


def barrier(name: str) -> None:
    """Wait until every process reaches ``name`` (no-op with one process)."""
    if is_multiprocess():
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def finish(name: str) -> None:
    """The command's last step under ``jax.distributed``: wait for every process at
    ``name``, then leave the runtime together (no-op with one process).

    Left to interpreter exit, JAX's own shutdown barrier waits at most 5 minutes for the
    others, and what a process does between its last barrier and that exit (threads to
    join, buffers to free under a loaded machine) is not bounded: the two-process sweep
    test failed there with process 0 late. Shutting down right after a common barrier
    takes that time out of the runtime's reach.
    """
    if is_multiprocess():
        barrier(name)
        jax.distributed.shutdown()
