"""What keeping the rollout's two conds under the seed vmap buys (``batched_cond.any_in_batch``).

Under ``jax.vmap`` over seeds a ``lax.cond`` with a per-seed predicate becomes a select, so
the auto-reset of finished envs (a C MuJoCo host call on the CPU backend) and the critic
pass on truncated observations ran on every env step. ``any_in_batch`` keeps them conds.
This script times ground-truth PPO with a learner preset (default ``tuned``: Hopper and
Walker2d 1 env x 2,048 steps per seed, HalfCheetah 8 x 64), ``--seeds`` seeds in one
``jax.jit(jax.vmap(train))`` call, both ways in one process, alternating:

* ``conds``: the code as it is;
* ``selects``: ``any_in_batch`` replaced by the identity in ``envs/wrappers.py`` and
  ``ppo/learner.py`` (the behaviour before it), i.e. both branches on every step.

Both programs are compiled ahead of time and run once before timing; each is then timed
``--repeats`` times, interleaved, and the best is kept. The two give bitwise-equal results
(checked here on every returned leaf, NaN equal to NaN: steps without a finished episode log NaN).

Usage::

    python -m benchmarks.seed_vmap_conds --envs Walker2d-v5,Hopper-v5,HalfCheetah-v5 \\
        --seeds 5 --updates 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", default="Walker2d-v5,Hopper-v5,HalfCheetah-v5")
    p.add_argument("--preset", default="tuned", help="learner preset (configs/ppo_presets.py)")
    p.add_argument("--backend", default="mujoco")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--updates", type=int, default=3, help="PPO updates per timed call")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def _compiled(cfg, keys, batched_predicates: bool):
    """``jit(vmap(train))`` compiled with the conds as they are, or as selects."""
    import jax

    import active_rlhf_jax.envs.wrappers as wrappers
    import active_rlhf_jax.ppo.learner as learner
    from active_rlhf_jax.ppo import make_ppo_train

    saved = wrappers.any_in_batch, learner.any_in_batch
    if batched_predicates:
        wrappers.any_in_batch = learner.any_in_batch = lambda p: p
    try:
        return jax.jit(jax.vmap(make_ppo_train(cfg))).lower(keys).compile()
    finally:
        wrappers.any_in_batch, learner.any_in_batch = saved


def measure(env_id, preset, backend, seeds, updates, repeats):
    import jax
    import numpy as np

    from configs.ppo_presets import PRESETS

    probe = PRESETS[preset](env_id, 1, backend=backend)
    cfg = PRESETS[preset](env_id, updates * probe.ppo.batch_size, backend=backend)
    keys = jax.random.split(jax.random.PRNGKey(0), seeds)
    progs = {"conds": _compiled(cfg, keys, False), "selects": _compiled(cfg, keys, True)}
    outs = {k: jax.block_until_ready(f(keys)) for k, f in progs.items()}
    equal = all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True) for a, b in zip(
        jax.tree_util.tree_leaves(outs["conds"]), jax.tree_util.tree_leaves(outs["selects"]),
        strict=True))
    best = {k: float("inf") for k in progs}
    load = [os.getloadavg()[0]]
    for _ in range(repeats):
        for k, f in progs.items():
            t = time.perf_counter()
            jax.block_until_ready(f(keys))
            best[k] = min(best[k], time.perf_counter() - t)
    load.append(os.getloadavg()[0])
    steps = cfg.env_steps * seeds
    return {
        "env": env_id, "preset": preset, "backend": backend, "seeds": seeds,
        "num_envs": cfg.ppo.num_envs, "num_steps": cfg.ppo.num_steps, "updates": updates,
        "env_steps": steps, "bitwise_equal": bool(equal),
        "sps_conds": steps / best["conds"], "sps_selects": steps / best["selects"],
        "speedup": best["selects"] / best["conds"], "load_before_after": load,
        "device": str(jax.devices()[0]), "machine": platform.processor() or platform.machine(),
    }


def main(argv=None) -> int:
    a = _args(argv)
    rows = []
    for env_id in a.envs.split(","):
        r = measure(env_id, a.preset, a.backend, a.seeds, a.updates, a.repeats)
        rows.append(r)
        print(f"{env_id}: {r['seeds']} seeds x {r['num_envs']} envs x {r['num_steps']} steps: "
              f"conds {r['sps_conds']:,.0f} env steps/s, selects {r['sps_selects']:,.0f} "
              f"({r['speedup']:.2f}x); bitwise equal: {r['bitwise_equal']}; load "
              f"{r['load_before_after'][0]:.1f} -> {r['load_before_after'][1]:.1f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
