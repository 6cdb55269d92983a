"""Runs (cells x seeds) in one compiled call against raw MJX stepping at the same total
batch (#15's benchmark): env steps/s, pipeline / raw and compile time per point.

A point is (envs per run, runs). Its runs are the cells of ``--arms`` crossed with every
``--grid`` (as ``active-rlhf sweep`` builds them; they must share one program) times seeds:
``runs = cells x seeds`` with as many cells as fit (1 run: the first cell, 1 seed; 8 runs:
4 cells x 2 seeds; 64 runs: 4 cells x 16 seeds). Every run has ``envs`` MJX envs x
``--num-steps`` steps per PPO iteration and ``--minibatches`` minibatches per epoch (the
preset's other PPO settings are kept). Per point, in one process:

* ``pipeline``: ``benchmarks.pipeline_throughput.measure_pipeline`` over all runs in one
  call (``runner.run_cells``' program: compiled ahead of time, compile of ``init`` and of
  the chunk timed apart; ``--chunks`` chunks of one iteration, the first not timed).
* ``raw``: ``benchmarks.env_throughput.prepare``, a jitted scan of ``--raw-steps`` env
  steps at ``runs x envs`` envs (the same total batch) and the runs' fidelity, with uniform
  random actions and/or all-zero ones (``--raw-actions``; MJX's step cost depends on the
  contacts the actions cause, and a policy's actions are neither).

Records (one JSON object per line, appended to ``--jsonl`` as each is measured, so a run
cut short keeps what it measured) carry ``bench="scaling"``, the point, both rates, their
ratio and the compile times.

Usage::

    python -m benchmarks.accelerator_scaling --points 512x8,512x64,4096x8 --jsonl out.jsonl
    python -m benchmarks.accelerator_scaling --preset smoke --points 4x1,4x2 --num-steps 8 \\
        --raw-steps 8 --backend mujoco      # CPU check of the script itself
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks._overrides import parse_overrides


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cheetah+results")
    p.add_argument("--arms", default="pref-random")
    p.add_argument("--grid", action="append", default=None, metavar="FIELD=V1,V2",
                   help="repeatable (default: acquisition.method=random,bald and "
                   "reward.lr=1e-3,3e-4: 4 cells)")
    p.add_argument("--points", default="512x1,512x8,512x64,4096x1,4096x8,4096x64",
                   help="comma-separated ENVSxRUNS, measured in this order")
    p.add_argument("--num-steps", type=int, default=64,
                   help="PPO steps per env per rollout (at least the clip length)")
    p.add_argument("--minibatches", type=int, default=8, help="PPO minibatches per epoch")
    p.add_argument("--backend", default="mjx")
    p.add_argument("--fidelity", default="gymnasium")
    p.add_argument("--chunks", type=int, default=3, help="chunks of 1 iteration; first untimed")
    p.add_argument("--raw-steps", type=int, default=32)
    p.add_argument("--raw-repeats", type=int, default=1)
    p.add_argument("--raw-actions", default="uniform",
                   help="comma-separated raw baselines: uniform (random actions over the "
                   "box), zero; the first gives the ratio, all are recorded")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--jsonl", default=None, help="append each record here")
    p.add_argument("--barrier", default=None, help=argparse.SUPPRESS)  # compile_then_time
    args = p.parse_args(argv)
    try:
        args.points = [tuple(int(x) for x in s.split("x")) for s in args.points.split(",") if s]
        if any(len(pt) != 2 or min(pt) < 1 for pt in args.points):
            raise ValueError
    except ValueError:
        p.error(f"--points: expected ENVSxRUNS,..., e.g. 512x8, got {args.points!r}")
    args.set = parse_overrides(args.set, p.error)
    args.raw_actions = [a for a in args.raw_actions.split(",") if a]
    if not args.raw_actions or any(a not in ("uniform", "zero") for a in args.raw_actions):
        p.error(f"--raw-actions: expected uniform and/or zero, got {','.join(args.raw_actions)!r}")
    return args


def point_cells(args, envs: int, runs: int) -> list:
    """The configs of one point: ``cells`` configs of ``runs // cells`` seeds each."""
    from active_rlhf_jax.config import ConfigError
    from active_rlhf_jax.sweep import arm_config, expand_grid, parse_arms, parse_grid

    grid = args.grid or ["acquisition.method=random,bald", "reward.lr=1e-3,3e-4"]
    names = expand_grid(parse_arms(args.arms), parse_grid(grid))
    n = min(len(names), runs)
    if runs % n:
        raise ConfigError("points", f"{runs} runs do not split into {n} cells")
    batch = envs * args.num_steps
    if batch % args.minibatches:
        raise ConfigError("minibatches", f"must divide envs x steps = {batch}")
    changes = {"ppo.num_envs": envs, "ppo.num_steps": args.num_steps,
               "ppo.minibatch_size": batch // args.minibatches, "env.backend": args.backend,
               "env.fidelity": args.fidelity, **args.set}
    return [arm_config(args.preset, name, changes, runs // n) for name in names[:n]]


def measure_point(args, envs: int, runs: int) -> dict:
    from active_rlhf_jax.envs import make
    from active_rlhf_jax.pipeline.hyper import static_differences
    from benchmarks._barrier import wait_turn
    from benchmarks.env_throughput import prepare
    from benchmarks.pipeline_throughput import measure_pipeline

    cells = point_cells(args, envs, runs)
    fields = static_differences(cells)
    if fields:
        raise SystemExit(f"accelerator_scaling: the cells differ in static fields {fields}")
    cfg = cells[0]
    raw_timers = {}

    def compiled():  # the raw scans compiled too before anything is timed
        for actions in args.raw_actions:
            # The runs' own env: same backend and task options (fidelity included).
            env = make(cfg.env.env_id, backend=cfg.env.backend, **cfg.env.options())
            raw_timers[actions] = prepare(cfg.env.env_id, cfg.env.backend, runs * envs,
                                          args.raw_steps, raw_env=env, actions=actions)[0]
        wait_turn(args.barrier)

    pipe = measure_pipeline(cfg, args.chunks, 1, f"{runs} runs x {envs} envs", cells=cells,
                            before_timing=compiled)
    raws = {a: t(args.raw_repeats) for a, t in raw_timers.items()}
    raw = raws[args.raw_actions[0]]
    return dict(
        bench="scaling",
        envs=envs,
        runs=runs,
        cells=len(cells),
        seeds=cfg.seeds,
        preset=args.preset,
        num_steps=cfg.ppo.num_steps,
        minibatch_size=cfg.ppo.minibatch_size,
        fidelity=cfg.env.fidelity,
        pipeline_sps=pipe["sps"],
        raw_sps=raw["sps"],
        ratio=pipe["sps"] / raw["sps"],
        compile_init_s=pipe["compile_init_s"],
        compile_chunk_s=pipe["compile_chunk_s"],
        raw_compile_s=raw["compile_s"],
        raw_actions=args.raw_actions[0],
        raw_sps_by_actions={a: r["sps"] for a, r in raws.items()},
        chunk_s=pipe["chunk_s"],
        device=pipe["device"],
        load=[pipe["load_before"], pipe["load_after"]],
    )


def main(argv=None) -> int:
    args = _parse_args(argv)
    from active_rlhf_jax.config import ConfigError

    try:
        for envs, runs in args.points:  # validate every point before the first compile
            point_cells(args, envs, runs)
    except ConfigError as e:
        print(f"accelerator_scaling: {e}", file=sys.stderr)
        return 2
    for envs, runs in args.points:
        rec = measure_point(args, envs, runs)
        print(f"{runs:>3} runs x {envs:>5} envs: pipeline {rec['pipeline_sps']:>11,.0f} env steps/s, "
              f"raw {rec['raw_sps']:>11,.0f} at {runs * envs} envs, ratio {rec['ratio']:.2f}; "
              f"compile init {rec['compile_init_s']:.1f} s + chunk {rec['compile_chunk_s']:.1f} s "
              f"[{rec['device']}]", flush=True)
        if args.jsonl:
            with open(args.jsonl, "a") as f:
                f.write(json.dumps(rec) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
