"""How the C backend's host step splits a batch over threads: per-call time by batch size.

Times ``MujocoPhysics._host_step`` (the numpy/C work of one env step of a batch, no XLA
around it) with uniform random controls, in one process, for two schedulers:

* ``current``: ``MujocoPhysics._parallel`` as it is (a thread only for at least
  ``_MIN_PER_THREAD`` envs; below ``_SMALL_PER_THREAD`` envs per thread one chunk per
  thread, the calling thread taking the first; above, as before);
* ``before``: the scheduler before 2026-12-04 (reproduced here: ``4 x threads`` chunks
  all handed to the pool, the calling thread waiting; serial for batches of 1-2).

and ``--threads`` 1 and the machine's thread count. Each cell: 10 warm-up calls, then
the mean over about ``--env-steps`` env steps.

Usage::

    python -m benchmarks.host_threads --env Walker2d-v5 --batches 1,2,5,10,40,256
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import time

import numpy as np


def _before(self, n, chunk_fn):
    """The scheduler of ``MujocoPhysics._parallel`` before 2026-12-04."""
    if self.num_threads <= 1 or n <= 2:
        if n:
            chunk_fn(0, n)
        return
    with self._pool_lock:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self.num_threads)
    k = min(n, 4 * self.num_threads)
    bounds = np.linspace(0, n, k + 1).astype(int)
    futures = [self._pool.submit(chunk_fn, lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    for fut in futures:
        fut.result()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="Walker2d-v5")
    p.add_argument("--batches", default="1,2,5,10,40,256")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--env-steps", type=int, default=8000)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)

    import jax

    import active_rlhf_jax.envs.mujoco_physics as mp
    from active_rlhf_jax.envs import make

    env = make(a.env, backend="mujoco")
    phys = env.physics
    current = mp.MujocoPhysics._parallel
    rows = []
    print(f"load before: {os.getloadavg()[0]:.1f}")
    for batch in (int(b) for b in a.batches.split(",")):
        data = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(0), batch)).data
        args = (np.asarray(data.exact), np.asarray(data.qpos), np.asarray(data.qvel),
                np.random.default_rng(0).uniform(-1, 1, (batch, phys.nu)).astype(np.float32))
        row = {"batch": batch}
        for name, sched in (("before", _before), ("current", current)):
            mp.MujocoPhysics._parallel = sched
            for threads in sorted({1, a.threads}):
                phys.num_threads = threads
                for _ in range(10):
                    phys._host_step(*args)
                calls = max(a.env_steps // batch, 20)
                t = time.perf_counter()
                for _ in range(calls):
                    phys._host_step(*args)
                row[f"{name}_t{threads}_us"] = (time.perf_counter() - t) / calls * 1e6
        mp.MujocoPhysics._parallel = current
        rows.append(row)
        t = a.threads
        print(f"batch {batch:4d}: us per call, 1 thread {row['current_t1_us']:,.0f}; {t} threads "
              f"before {row[f'before_t{t}_us']:,.0f}, now {row[f'current_t{t}_us']:,.0f} "
              f"({row[f'before_t{t}_us'] / row[f'current_t{t}_us']:.2f}x)", flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"env": a.env, "threads": a.threads, "machine": platform.processor()
                       or platform.machine(), "cpu_count": os.cpu_count(), "rows": rows}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
