"""Whole-pipeline throughput: RLHF iterations against raw env stepping (issue #7).

Measured in one process, so that every rate shares the machine's load:

* ``raw``: ``benchmarks.env_throughput.measure`` at the preset's batch (``ppo.num_envs``
  envs, same env id and backend): a jitted ``lax.scan`` of ``TrainingEnv`` steps with
  uniform random actions, best of ``--raw-repeats`` runs. Taken before and after the
  pipeline runs; the ratio uses the mean of the two.
* ``pipeline``: ``make_train(config)`` run as ``active-rlhf train`` runs it: ``init`` and
  ``run_chunk`` under ``runner.seed_parallel`` (``jit(vmap)`` over seeds, ``shard_map``
  over devices when there are several) with ``runner.seed_keys``. Both programs are
  compiled ahead of time (``lower().compile()``, timed apart: "compile init" and
  "compile chunk"), then ``init`` runs once and ``--chunks`` chunks of
  ``--iterations-per-chunk`` iterations run back to back. Env steps/s counts the PPO env
  steps of the chunks after the first (``iterations * steps_per_iteration * seeds`` over
  their wall time), so neither compilation nor first-call effects are in it. The run
  keeps the preset's ``total_ppo_timesteps`` (so the query pacing, ``max_queries`` and
  every shape are those of the real run) and simply stops after ``--chunks`` chunks.
* ``ground-truth``: the same config with ``run.feedback="none"`` (PPO on the true
  reward; no relabelling, harvest, acquisition, teacher or refit) at equal batch. The
  share of an RLHF iteration spent outside PPO is ``1 - rlhf_rate / ground_truth_rate``.
* ``seeds``: the pipeline with 1, 4 and 16 seeds in one call (``--seed-counts``), total
  env steps/s across seeds, ``--sweep-chunks`` chunks of ``--sweep-iterations-per-chunk``
  iterations (again the first chunk excluded).

Every line carries the device and the load average (``os.getloadavg()``) before and after
its measurement: the machine may be shared.

Usage::

    python -m benchmarks.pipeline_throughput                     # default preset, ~8 min on 2 cores
    python -m benchmarks.pipeline_throughput --preset smoke --raw-steps 25 --seed-counts 1,2
    python -m benchmarks.pipeline_throughput --json out.json --threads 2
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time

from benchmarks._overrides import parse_overrides


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="default", help="preset name (configs/presets.py)")
    p.add_argument("--chunks", type=int, default=3, help="chunks run; the first is not timed")
    p.add_argument("--iterations-per-chunk", type=int, default=2)
    p.add_argument(
        "--total-ppo-timesteps",
        type=int,
        default=None,
        help="override run.total_ppo_timesteps (changes the pacing; default: the preset's)",
    )
    p.add_argument("--raw-steps", type=int, default=640, help="env steps per raw scan")
    p.add_argument("--raw-repeats", type=int, default=3)
    p.add_argument("--no-ground-truth", action="store_true", help="skip the feedback=none run")
    p.add_argument(
        "--seed-counts", default="1,4,16", help="seeds per call for the sweep ('' to skip)"
    )
    p.add_argument("--sweep-chunks", type=int, default=3)
    p.add_argument("--sweep-iterations-per-chunk", type=int, default=1)
    p.add_argument(
        "--sweep-timesteps-per-iteration",
        type=int,
        default=None,
        help="override run.ppo_timesteps_per_iteration in the seed sweep only (to fit 16 "
        "seeds in the time available; default: the preset's)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="C backend threads (default: $ACTIVE_RLHF_MUJOCO_THREADS or cpu count)",
    )
    p.add_argument(
        "--sweep-first",
        action="store_true",
        help="run the seed sweep right after the pipeline, before the ground-truth run and "
        "the second raw measurement (for short device leases)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="config override applied to every measured config, e.g. --set ppo.num_envs=512 "
        "(repeatable; values parsed as Python literals)",
    )
    p.add_argument(
        "--json",
        default=None,
        help="write the records to this JSON file (rewritten after every measurement, so an "
        "interrupted run keeps what it measured)",
    )
    args = p.parse_args(argv)
    args.set = parse_overrides(args.set, p.error)
    args.seed_counts = tuple(int(s) for s in args.seed_counts.split(",") if s)
    if args.chunks < 2 or args.sweep_chunks < 2:
        p.error("--chunks and --sweep-chunks must be at least 2 (the first is not timed)")
    return args


def build_config(preset: str, seeds: int = 1, **overrides):
    """The preset with ``seeds`` seeds and dotted ``overrides``, validated."""
    from active_rlhf_jax.config import replace
    from configs.presets import get_preset

    cfg = replace(get_preset(preset), seeds=seeds, **overrides)
    return cfg.validate()


def measure_pipeline(config, chunks: int, length: int, label: str, cells=None,
                     before_timing=None) -> dict:
    """Compile and run ``init`` + ``chunks`` chunks of ``length`` iterations; time each.

    ``cells``: several configs that share one program (``runner.run_cells``: cells x seeds
    runs in one call, ``config`` their first); default ``[config]``. ``before_timing``: called
    (no arguments) once both programs are compiled and ``init`` has run, before the chunks.
    """
    import jax
    import numpy as np

    from active_rlhf_jax.pipeline import runner
    from active_rlhf_jax.pipeline.hyper import program_choices
    from active_rlhf_jax.pipeline.train import make_train
    from benchmarks.env_throughput import _device_name, _load

    cells = list(cells or [config])
    runs = config.seeds * len(cells)
    load_before = _load()
    pipe = make_train(config, program_choices(cells))
    mesh = runner._seed_mesh(runs)  # as `active-rlhf train` splits seeds
    args = runner.batch_inputs(cells)  # as runner.run_cells builds them
    init_fn = runner.seed_parallel(pipe.init, mesh)
    chunk_fn = runner.seed_parallel(functools.partial(pipe.run_chunk, length=length), mesh)

    t0 = time.perf_counter()
    init_c = init_fn.lower(*args).compile()
    compile_init = time.perf_counter() - t0
    t0 = time.perf_counter()
    state = jax.block_until_ready(init_c(*args))
    init_run = time.perf_counter() - t0

    t0 = time.perf_counter()
    chunk_c = chunk_fn.lower(state).compile()
    compile_chunk = time.perf_counter() - t0
    if before_timing is not None:
        before_timing()

    times, metrics = [], None
    for _ in range(chunks):
        t0 = time.perf_counter()
        state, metrics = chunk_c(state)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - t0)

    steps_per_chunk = length * config.steps_per_iteration * runs
    env_steps = np.asarray(jax.device_get(metrics["env_steps"]))  # [runs, length]
    expected = chunks * length * config.steps_per_iteration
    if not np.all(env_steps[:, -1] == expected):
        raise RuntimeError(f"{label}: env_steps {env_steps[:, -1]} != {expected}")
    timed = sum(times[1:])
    return dict(
        label=label,
        preset=config.name,
        feedback=config.run.feedback,
        env_id=config.env.env_id,
        backend=config.env.backend,
        seeds=config.seeds,
        cells=len(cells),
        num_envs=config.ppo.num_envs,
        num_steps=config.ppo.num_steps,
        steps_per_iteration=config.steps_per_iteration,
        iterations_per_chunk=length,
        chunks=chunks,
        chunk_s=times,
        timed_steps=steps_per_chunk * (chunks - 1),
        timed_s=timed,
        sps=steps_per_chunk * (chunks - 1) / timed,
        sps_first_chunk=steps_per_chunk / times[0],
        compile_init_s=compile_init,
        init_run_s=init_run,
        compile_chunk_s=compile_chunk,
        device=_device_name(jax),
        load_before=load_before,
        load_after=_load(),
    )


def measure_raw(config, steps: int, repeats: int, label: str) -> dict:
    """Raw TrainingEnv stepping at the config's batch (env_throughput.measure)."""
    from benchmarks.env_throughput import _load, measure

    load_before = _load()
    rec = measure(config.env.env_id, config.env.backend, config.ppo.num_envs, steps, repeats)
    rec.update(label=label, load_before=load_before, load_after=_load(), seeds=1)
    return rec


def _line(rec) -> str:
    extra = ""
    if "compile_init_s" in rec:
        extra = (
            f"  (first chunk {rec['sps_first_chunk']:,.0f}/s; compile init "
            f"{rec['compile_init_s']:.1f} s, chunk {rec['compile_chunk_s']:.1f} s; "
            f"init run {rec['init_run_s']:.1f} s)"
        )
    else:
        extra = f"  (compile {rec['compile_s']:.1f} s)"
    return (
        f"{rec['label']:<28} seeds={rec['seeds']:<3} {rec['sps']:>9,.0f} env steps/s{extra} "
        f"[{rec['device']}; load {rec['load_before']} -> {rec['load_after']}]"
    )


def _fmt(x, spec):
    return "" if x is None else format(x, spec)


def markdown_table(records: list[dict], raw_sps: float) -> str:
    head = [
        "measurement",
        "seeds",
        "envs x steps",
        "timed env steps",
        "env steps/s",
        "vs raw",
        "compile init (s)",
        "compile chunk (s)",
        "init run (s)",
        "load before -> after",
        "device",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in records:
        is_pipe = "compile_init_s" in r
        envs = r.get("num_envs", r.get("batch"))
        steps = r.get("num_steps", r.get("steps"))
        timed = r["timed_steps"] if is_pipe else r["batch"] * r["steps"]
        row = [
            r["label"],
            str(r["seeds"]),
            f"{envs} x {steps}",
            f"{timed:,}",
            f"{r['sps']:,.0f}",
            f"{r['sps'] / raw_sps:.2f}" if r["seeds"] == 1 else "",
            _fmt(r.get("compile_init_s"), ".1f") if is_pipe else f"{r['compile_s']:.1f}",
            _fmt(r.get("compile_chunk_s"), ".1f"),
            _fmt(r.get("init_run_s"), ".1f"),
            f"{r['load_before']} -> {r['load_after']}",
            r["device"],
        ]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = _parse_args(argv)
    if args.threads is not None:
        os.environ["ACTIVE_RLHF_MUJOCO_THREADS"] = str(args.threads)
    import jax

    import active_rlhf_jax  # noqa: F401  (sets its XLA CPU flag before JAX starts)
    from benchmarks.env_throughput import _load, _threads

    common = dict(args.set)
    if args.total_ppo_timesteps is not None:
        common["run.total_ppo_timesteps"] = args.total_ppo_timesteps
    overrides = {**common, "run.iterations_per_chunk": args.iterations_per_chunk}
    config = build_config(args.preset, **overrides)
    mujoco = not config.env.env_id.startswith("probe/")
    print(
        f"# pipeline throughput: jax {jax.__version__}, devices {jax.devices()}, "
        f"host cpus {os.cpu_count()}, {platform.processor() or platform.machine()}, "
        f"load average {_load()} (other processes share these cores)"
    )
    print(
        f"# preset {args.preset!r}: {config.env.env_id} (backend {config.env.backend}), "
        f"{config.ppo.num_envs} envs x {config.ppo.num_steps} steps, "
        f"{config.cycles_per_iteration} rollouts = {config.steps_per_iteration} env steps per "
        f"iteration, feedback {config.run.feedback}, acquisition "
        f"{config.acquisition.method}/{config.acquisition.allocation}, "
        f"{config.num_iterations} iterations in the full run (max {config.max_queries} "
        f"queries/iteration); C backend threads {_threads() if mujoco else 'n/a'}"
    )
    t_start = time.perf_counter()
    records = []

    def record(rec):
        records.append(rec)
        print(_line(rec), flush=True)
        if args.json:
            _write_json(args.json, jax, argv, args.preset, records, None)
        return rec

    raw_before = record(measure_raw(config, args.raw_steps, args.raw_repeats, "raw env (before)"))
    rlhf = record(
        measure_pipeline(config, args.chunks, args.iterations_per_chunk, "pipeline")
    )
    sweep_overrides = {**common, "run.iterations_per_chunk": args.sweep_iterations_per_chunk}
    if args.sweep_timesteps_per_iteration is not None:
        sweep_overrides["run.ppo_timesteps_per_iteration"] = args.sweep_timesteps_per_iteration

    def run_ground_truth():
        if args.no_ground_truth:
            return None
        gt_config = build_config(args.preset, **overrides, **{"run.feedback": "none"})
        return record(
            measure_pipeline(
                gt_config, args.chunks, args.iterations_per_chunk, "ground truth (feedback=none)"
            )
        )

    def run_sweep():
        out = []
        for n in args.seed_counts:
            cfg = build_config(args.preset, seeds=n, **sweep_overrides)
            out.append(
                record(
                    measure_pipeline(
                        cfg, args.sweep_chunks, args.sweep_iterations_per_chunk,
                        f"seeds sweep ({n})",
                    )
                )
            )
        return out

    if args.sweep_first:  # short device leases: the seed sweep before the baselines
        sweep = run_sweep()
        gt = run_ground_truth()
    else:
        gt = run_ground_truth()
    raw_after = record(measure_raw(config, args.raw_steps, args.raw_repeats, "raw env (after)"))
    raw_sps = (raw_before["sps"] + raw_after["sps"]) / 2
    if not args.sweep_first:
        sweep = run_sweep()
    total_s = time.perf_counter() - t_start

    summary = dict(
        raw_sps=raw_sps,
        pipeline_sps=rlhf["sps"],
        ratio_pipeline_to_raw=rlhf["sps"] / raw_sps,
        ratio_ground_truth_to_raw=gt["sps"] / raw_sps if gt else None,
        share_outside_ppo=1 - rlhf["sps"] / gt["sps"] if gt else None,
        seed_speedup={r["seeds"]: r["sps"] / sweep[0]["sps"] for r in sweep} if sweep else {},
        total_wall_s=total_s,
    )
    print()
    print(markdown_table(records, raw_sps))
    print()
    print(
        f"raw env rate (mean of before/after, best of {args.raw_repeats} each): "
        f"{raw_sps:,.0f} env steps/s [{raw_before['device']}]"
    )
    print(
        f"pipeline / raw = {summary['ratio_pipeline_to_raw']:.2f} (goal >= 0.6) "
        f"[{rlhf['device']}]"
    )
    if gt:
        print(
            f"ground truth / raw = {summary['ratio_ground_truth_to_raw']:.2f}; share of an RLHF "
            f"iteration outside PPO (relabel, harvest, acquisition, teacher, refit) = "
            f"{summary['share_outside_ppo']:.0%} [{gt['device']}]"
        )
    if sweep:
        print(
            "seed scaling (total env steps/s relative to the sweep's first count): "
            + ", ".join(f"{k} seeds x{v:.2f}" for k, v in summary["seed_speedup"].items())
            + f" [{sweep[0]['device']}]"
        )
    print(f"# load average at the end: {_load()}; total wall {total_s:.0f} s")
    return _write_json(args.json, jax, argv, args.preset, records, summary)


def _write_json(path, jax, argv, preset, records, summary) -> dict:
    out = dict(
        jax=jax.__version__,
        cpus=os.cpu_count(),
        argv=list(argv) if argv is not None else None,
        preset=preset,
        records=records,
        summary=summary,
    )
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1, default=str)
        os.replace(tmp, path)
    return out


if __name__ == "__main__":
    main()
