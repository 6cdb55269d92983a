"""Compile time of a sweep's program against its number of cells and seeds (#15 item 5).

For each ``CELLSxSEEDS`` size, the program ``runner.run_cells`` would build for that many
cells (``--arms`` crossed with ``reward.lr`` values, so all share one program) and seeds
is lowered and compiled ahead of time, the initial phase and one chunk of
``--iterations-per-chunk`` iterations, without running anything (the chunk is lowered
against the initial state's shapes from ``jax.eval_shape``). The persistent compilation
cache is off, and each size is compiled in a fresh process, so no size reuses another's
compile (JAX's in-memory caches would otherwise serve repeated subcomputations).

Usage::

    python -m benchmarks.compile_scaling --sizes 1x1,1x8,4x2,4x8,1x32 --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time


def _one(preset: str, arms: str, cells: int, seeds: int, length: int) -> dict:
    import functools

    import jax

    from active_rlhf_jax.pipeline import runner
    from active_rlhf_jax.pipeline.hyper import program_choices
    from active_rlhf_jax.pipeline.train import make_train
    from active_rlhf_jax.sweep import arm_config, expand_grid, parse_arms, parse_grid
    from benchmarks.env_throughput import _device_name, _load

    lrs = ",".join(f"{1e-3 / (i + 1):.6g}" for i in range(cells))
    grid = parse_grid([f"reward.lr={lrs}"]) if cells > 1 else []
    names = expand_grid(parse_arms(arms), grid)
    configs = [arm_config(preset, n, {}, seeds) for n in names]
    load_before = _load()
    t0 = time.perf_counter()
    pipe = make_train(configs[0], program_choices(configs))
    runs = seeds * len(configs)
    mesh = runner._seed_mesh(runs)
    args = runner.batch_inputs(configs)
    init_fn = runner.seed_parallel(pipe.init, mesh)
    chunk_fn = runner.seed_parallel(functools.partial(pipe.run_chunk, length=length), mesh)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    init_fn.lower(*args).compile()
    compile_init = time.perf_counter() - t0
    state_shapes = jax.eval_shape(init_fn, *args)
    t0 = time.perf_counter()
    chunk_fn.lower(state_shapes).compile()
    compile_chunk = time.perf_counter() - t0
    return dict(preset=preset, arms=names, cells=len(configs), seeds=seeds, runs=runs,
                iterations_per_chunk=length, build_s=build, compile_init_s=compile_init,
                compile_chunk_s=compile_chunk, compile_total_s=compile_init + compile_chunk,
                device=_device_name(jax), devices=jax.device_count(),
                load_before=load_before, load_after=_load())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cheetah+results")
    p.add_argument("--arms", default="pref-random")
    p.add_argument("--sizes", default="1x1,1x8,4x2,4x8,1x32",
                   help="comma-separated CELLSxSEEDS")
    p.add_argument("--iterations-per-chunk", type=int, default=5)
    p.add_argument("--json", default=None)
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # a child process's size
    a = p.parse_args(argv)
    if a.one:
        cells, seeds = (int(x) for x in a.one.split("x"))
        print(json.dumps(_one(a.preset, a.arms, cells, seeds, a.iterations_per_chunk)))
        return 0
    try:
        sizes = [tuple(int(x) for x in s.split("x")) for s in a.sizes.split(",")]
        if any(len(s) != 2 or min(s) < 1 for s in sizes):
            raise ValueError
    except ValueError:
        print(f"compile_scaling: --sizes: expected CELLSxSEEDS,..., got {a.sizes!r}",
              file=sys.stderr)
        return 2
    records = []
    for cells, seeds in sizes:
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.compile_scaling", "--preset", a.preset,
             "--arms", a.arms, "--iterations-per-chunk", str(a.iterations_per_chunk),
             "--one", f"{cells}x{seeds}"],
            capture_output=True, text=True)
        if out.returncode:
            print(out.stderr[-2000:], file=sys.stderr)
            return out.returncode
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        records.append(rec)
        print(f"{cells} cells x {seeds} seeds ({rec['runs']} runs): compile init "
              f"{rec['compile_init_s']:.1f} s + chunk {rec['compile_chunk_s']:.1f} s = "
              f"{rec['compile_total_s']:.1f} s  (load {rec['load_before']} -> "
              f"{rec['load_after']})", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(records, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
