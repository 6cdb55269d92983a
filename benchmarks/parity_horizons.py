"""Measure how long our MJX tasks agree with Gymnasium (C MuJoCo) when free running.

For each env: reset Gymnasium with a seed, copy its exact state into ours, then step both
with the same uniform random actions and count the leading steps whose observations agree
to allclose(rtol=tol, atol=tol). Also reports the worst one-step error (Gymnasium's state
copied in before every step) over one episode. Prints one JSON line per (env, fidelity).

    python benchmarks/parity_horizons.py                       # float32
    JAX_ENABLE_X64=1 python benchmarks/parity_horizons.py      # float64
    python benchmarks/parity_horizons.py --envs Ant-v5 --fidelity fast --seeds 5
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import _parity  # noqa: E402

ENVS = [
    "HalfCheetah-v5",
    "Hopper-v5",
    "Hopper-v4",
    "Walker2d-v5",
    "Swimmer-v5",
    "Reacher-v4",
    "Reacher-v5",
    "Ant-v5",
]


def measure(env_id: str, backend: str, fidelity: str, seeds: int, steps: int) -> dict:
    x64 = bool(jax.config.jax_enable_x64)
    tols = (1e-9, 1e-6, 1e-3, 1e-2) if x64 else (1e-3, 1e-2)
    env, genv = _parity.make_pair(env_id, backend, fidelity=fidelity)
    t0 = time.time()
    step_fn = _parity.make_step_fn(env)
    n = min(steps, env.episode_length)
    horizons = {tol: [] for tol in tols}
    for seed in range(seeds):
        obs, gobs, _, _ = _parity.free_run(env, genv, step_fn, n, seed=seed)
        for tol in tols:
            horizons[tol].append(_parity.agreeing_steps(obs, gobs, tol))
    ours, theirs = _parity.one_step_errors(env, genv, step_fn, env.episode_length, seed=0)
    err = np.abs(ours["obs"] - theirs["obs"]) / (1 + np.abs(theirs["obs"]))
    return {
        "env": env_id,
        "backend": backend,
        "fidelity": fidelity,
        "dtype": "float64" if x64 else "float32",
        "steps_run": n,
        "seeds": seeds,
        # min / median over seeds of the leading steps agreeing to each tolerance
        "horizon_min": {f"{t:g}": int(min(v)) for t, v in horizons.items()},
        "horizon_median": {f"{t:g}": float(np.median(v)) for t, v in horizons.items()},
        "one_step_max_rel_err": float(err.max()),
        "one_step_reward_max_err": float(np.abs(ours["reward"] - theirs["reward"]).max()),
        "seconds": round(time.time() - t0, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=ENVS)
    parser.add_argument("--backend", default="mjx")
    parser.add_argument("--fidelity", nargs="+", default=["gymnasium"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    for env_id in args.envs:
        for fidelity in args.fidelity:
            print(json.dumps(measure(env_id, args.backend, fidelity, args.seeds, args.steps)))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
