"""What sets MJX's env-step time on an accelerator (#15 item 3).

For one task (default HalfCheetah-v5) at each ``--batch-sizes`` it times a jitted
``lax.scan`` of ``--steps`` env steps with uniform random actions (as
``benchmarks.env_throughput``: compile timed apart, one warm-up, best of ``--repeats``) under
several solver settings, the ``--variants``:

* ``gymnasium``: the XML's settings (Newton, 100 iterations, 50 line-search iterations,
  tolerance 1e-8), ``fidelity="gymnasium"``: the default.
* ``fast``: ``fidelity="fast"`` (4 iterations, 8 line-search iterations).
* ``ls8``: the XML's 100 iterations with 8 line-search iterations: the line search's
  share (under ``vmap`` MJX's line search, a ``scan`` of ``lax.cond`` steps, runs all of
  its iterations every solver iteration, whatever the tolerance).
* ``iter1``: 1 iteration and 1 line-search iteration: the step's cost with the solver cut
  to its floor (its physics is not meant for training; it bounds what any solver setting
  can save).
* ``nocontact``: the XML's solver with contacts disabled (``mjDSBL_CONTACT``): no collision
  detection and no contact constraints, so what remains is kinematics, dynamics, joint
  limits and integration.

MJX does not record how many solver iterations it ran, so ``--solver-iterations B``
reads them from C MuJoCo instead (same model, same solver settings, ``mj_step`` on ``B``
envs with uniform random actions from perturbed default poses, HalfCheetah's reset noise
for every task, CPU only): per
physics step the mean of ``solver_niter`` over envs and the maximum over envs, and the
most line-search evaluations (``neval``) any iteration needed. Under ``vmap`` MJX's solver
``while_loop`` runs every env for as many iterations as the slowest one in the batch, so
the maximum is what a batch pays for.

``--compare-ls LS B`` steps ``B`` envs of C MuJoCo with the XML's line search and with
``LS`` line-search iterations side by side (same states, same random actions) and reports
the largest state difference and where the two first differ (CPU only).

``--actions zero`` steps with all-zero actions instead of uniform random ones (the
solver's work depends on the contacts the actions cause).

Each timing record: variant, batch, steps, compile_s, run_s, sps (env steps/s),
ms_per_step (one env step = ``frame_skip`` physics steps, for the whole batch), device.
Records are printed and, with ``--json``, rewritten after every measurement (a run cut
short keeps what it measured).

Usage::

    python -m benchmarks.mjx_latency --batch-sizes 512,4096 --json out.json
    python -m benchmarks.mjx_latency --batch-sizes 8 --steps 5 --variants gymnasium,iter1
    python -m benchmarks.mjx_latency --solver-iterations 512 --steps 200   # C MuJoCo, CPU
"""

from __future__ import annotations

import argparse
import json

from benchmarks._barrier import wait_turn

VARIANTS = ("gymnasium", "fast", "ls8", "iter1", "nocontact")


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--batch-sizes", default="512,4096")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--steps", type=int, default=100, help="env steps per jitted scan")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    p.add_argument("--solver-iterations", type=int, default=None, metavar="B",
                   help="instead of timing MJX, count C MuJoCo's solver iterations on B envs")
    p.add_argument("--compare-ls", type=int, nargs=2, default=None, metavar=("LS", "B"),
                   help="instead of timing MJX, step B envs of C MuJoCo with the XML's line "
                   "search and with LS iterations side by side and report their difference")
    p.add_argument("--actions", default="uniform", choices=("uniform", "zero"),
                   help="uniform random actions over the action box, or all zeros")
    p.add_argument("--barrier", default=None, help=argparse.SUPPRESS)  # compile_then_time
    args = p.parse_args(argv)
    args.batch_sizes = tuple(int(b) for b in args.batch_sizes.split(",") if b)
    args.variants = tuple(v for v in args.variants.split(",") if v)
    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        p.error(f"--variants: unknown {bad}; known {list(VARIANTS)}")
    return args


def make_env(env_id: str, variant: str):
    """The MJX env of ``variant`` (its solver settings set on the env's own copy of the
    model, and the device copy placed from it afresh)."""
    import mujoco

    from active_rlhf_jax.envs import make

    # gymnasium, ls8 and fast are the package's own fidelities; iter1 and nocontact are not.
    env = make(env_id, backend="mjx",
               fidelity=variant if variant in ("ls8", "fast") else "gymnasium")
    opt = env.physics.mj_model.opt
    if variant == "iter1":
        opt.iterations, opt.ls_iterations = 1, 1
    elif variant == "nocontact":
        opt.disableflags |= int(mujoco.mjtDisableBit.mjDSBL_CONTACT)
    # The env's constructor already placed the model (it traces one observation to size
    # it): drop that copy so the settings above are the ones compiled.
    env.physics._models.clear()
    return env


def prepare(env_id: str, variant: str, batch: int, steps: int, seed: int = 0,
            actions: str = "uniform"):
    """Compile one scan of ``steps`` env steps of ``batch`` envs under ``variant``; returns
    ``time_it(repeats) -> record`` (see the module docstring)."""
    from benchmarks.env_throughput import prepare as prepare_scan

    env = make_env(env_id, variant)
    opt = env.physics.model.opt
    time_scan, _ = prepare_scan(env_id, "mjx", batch, steps, seed, env, actions)

    def time_it(repeats: int) -> dict:
        rec = time_scan(repeats)
        rec.update(variant=variant, actions=actions, ms_per_step=1e3 * rec["run_s"] / steps,
                   solver=[int(opt.iterations), int(opt.ls_iterations)])
        return rec

    return time_it


def measure(env_id: str, variant: str, batch: int, steps: int, repeats: int, seed: int = 0):
    """Compile and time one scan; see the module docstring for the record."""
    return prepare(env_id, variant, batch, steps, seed)(repeats)


def _line(r) -> str:
    return (f"{r['env_id']} {r['variant']:>9} {r['actions']:>7} actions B={r['batch']:<6} {r['sps']:>11,.0f} steps/s  "
            f"{r['ms_per_step']:7.2f} ms/step  compile {r['compile_s']:5.1f} s  [{r['device']}]")


def _c_start(env, model, rng):
    """A C MuJoCo state at the default pose with HalfCheetah's reset noise (uniform +-0.1 on
    qpos, 0.1 N(0, 1) on qvel), whatever the task, after ``mj_forward``."""
    import mujoco
    import numpy as np

    d = mujoco.MjData(model)
    d.qpos[:] = np.asarray(env.init_qpos) + rng.uniform(-0.1, 0.1, model.nq)
    d.qvel[:] = np.asarray(env.init_qvel) + 0.1 * rng.standard_normal(model.nv)
    mujoco.mj_forward(model, d)
    return d


def solver_iterations(env_id: str, batch: int, steps: int, seed: int = 0) -> dict:
    """Solver iterations per physics step of C MuJoCo on ``batch`` envs under uniform random
    actions for ``steps`` env steps (``frame_skip`` physics steps each, no resets: the
    horizon is kept under the episode length). Returns the mean over envs and steps, the
    mean over physics steps of the maximum over envs, and the largest count seen."""
    import mujoco
    import numpy as np

    from active_rlhf_jax.envs import make

    env = make(env_id, backend="mujoco")
    model = env.mj_model
    rng = np.random.default_rng(seed)
    datas = [_c_start(env, model, rng) for _ in range(batch)]
    low, high = np.asarray(env.action_low), np.asarray(env.action_high)
    counts = np.zeros((steps * env.frame_skip, batch))
    evals = np.zeros((steps * env.frame_skip, batch))  # most line-search evaluations
    for t in range(steps):
        for i, d in enumerate(datas):
            d.ctrl[:] = rng.uniform(low, high)
            for k in range(env.frame_skip):
                mujoco.mj_step(model, d)
                n = int(d.solver_niter[0])
                counts[t * env.frame_skip + k, i] = n
                if n:
                    evals[t * env.frame_skip + k, i] = max(d.solver[j].neval for j in range(n))
    return dict(env_id=env_id, batch=batch, steps=steps, solver=[model.opt.iterations,
                model.opt.ls_iterations], niter_mean=float(counts.mean()),
                niter_batch_max=float(counts.max(axis=1).mean()), niter_max=int(counts.max()),
                ls_evals_max=int(evals.max()), ls_evals_batch_max=float(evals.max(axis=1).mean()),
                ls_evals_over_8=float((evals > 8).mean()))


def ls_cap_difference(env_id: str, batch: int, steps: int, ls: int, seed: int = 0) -> dict:
    """C MuJoCo with the XML's line search against one capped at ``ls`` iterations: both
    step the same ``batch`` initial states (the default pose with HalfCheetah's reset noise,
    uniform +-0.1 on qpos and 0.1 N(0, 1) on qvel, for every task) with the same uniform
    random actions for ``steps`` env steps; returns the largest |qpos| / |qvel| difference
    seen and the first (env, step) where the two differ at all (None: bitwise equal)."""
    import copy

    import mujoco
    import numpy as np

    from active_rlhf_jax.envs import make

    env = make(env_id, backend="mujoco")
    full = env.mj_model
    capped = copy.deepcopy(full)
    capped.opt.ls_iterations = ls
    rng = np.random.default_rng(seed)
    worst, first = 0.0, None
    for i in range(batch):
        d_full = _c_start(env, full, rng)
        d_capped = mujoco.MjData(capped)  # the same start: copied, not drawn again
        d_capped.qpos[:], d_capped.qvel[:] = d_full.qpos, d_full.qvel
        mujoco.mj_forward(capped, d_capped)
        pair = [(full, d_full), (capped, d_capped)]
        for t in range(steps):
            action = rng.uniform(env.action_low, env.action_high)
            for model, d in pair:
                d.ctrl[:] = action
                for _ in range(env.frame_skip):
                    mujoco.mj_step(model, d)
            (_, a), (_, b) = pair
            diff = max(np.abs(a.qpos - b.qpos).max(), np.abs(a.qvel - b.qvel).max())
            if diff > 0 and first is None:
                first = [i, t]
            worst = max(worst, float(diff))
    return dict(env_id=env_id, batch=batch, steps=steps, ls_iterations=ls, max_abs_diff=worst,
                first_difference=first)


def main(argv=None) -> int:
    args = _parse_args(argv)
    if args.compare_ls:
        rec = ls_cap_difference(args.env, args.compare_ls[1], args.steps, args.compare_ls[0],
                                args.seed)
        print(f"{rec['env_id']} C MuJoCo, line search 50 against {rec['ls_iterations']}, "
              f"{rec['batch']} envs x {rec['steps']} env steps: largest state difference "
              f"{rec['max_abs_diff']:.3g}, first at (env, step) {rec['first_difference']}",
              flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rec, f, indent=1)
        return 0
    if args.solver_iterations:
        rec = solver_iterations(args.env, args.solver_iterations, args.steps, args.seed)
        print(f"{rec['env_id']} C MuJoCo solver {rec['solver']}, {rec['batch']} envs x "
              f"{rec['steps']} env steps: iterations per physics step mean {rec['niter_mean']:.2f}, "
              f"max over the batch {rec['niter_batch_max']:.2f} (mean over steps), largest "
              f"{rec['niter_max']}; line-search evaluations per iteration: largest "
              f"{rec['ls_evals_max']}, max over the batch {rec['ls_evals_batch_max']:.2f} (mean over "
              f"steps), share of env steps above 8: {rec['ls_evals_over_8']:.4f}", flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rec, f, indent=1)
        return 0
    # Everything is compiled before anything is timed (``--barrier``: then wait for the go).
    timers = [prepare(args.env, v, b, args.steps, args.seed, args.actions)
              for b in args.batch_sizes for v in args.variants]
    wait_turn(args.barrier)
    records = []
    for time_it in timers:
        rec = time_it(args.repeats)
        records.append(rec)
        print(_line(rec), flush=True)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(records, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
