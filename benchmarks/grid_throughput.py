"""A sweep's cells in one compiled call against the same cells one after another (#15).

The cells are ``--arms`` crossed with every ``--grid`` (``active-rlhf sweep``'s own
parsing); they must share one program (differ only in traced hyperparameters and the
acquisition method). Measured in one process, so both share the machine's load:

* ``grouped``: one program over ``cells x seeds`` runs (``runner.run_cells``' program:
  ``make_train(config, program_choices(cells))``, ``vmap`` over ``(keys, hyper)``).
* ``sequential``: each cell's own program over its ``seeds`` runs, one after another.

Both with ``benchmarks.pipeline_throughput.measure_pipeline``: compiled ahead of time
(compile timed apart), ``--chunks`` chunks of ``--iterations-per-chunk`` iterations, the
first chunk not timed. The ratio is grouped env steps/s over sequential env steps/s (the
sum of the cells' timed steps over the sum of their timed wall). The persistent
compilation cache is off, so the compile times are real compiles.

Usage::

    python -m benchmarks.grid_throughput                       # cheetah+results, 4 cells x 2 seeds
    python -m benchmarks.grid_throughput --preset smoke --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys

from benchmarks.pipeline_throughput import _line, measure_pipeline


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="cheetah+results", help="base preset")
    p.add_argument("--arms", default="pref-random", help="comma-separated arms")
    p.add_argument("--grid", action="append", default=None, metavar="FIELD=V1,V2",
                   help="repeatable (default: acquisition.method=random,bald and "
                   "reward.lr=1e-3,3e-4)")
    p.add_argument("--seeds", type=int, default=2, help="seeds per cell")
    p.add_argument("--chunks", type=int, default=2, help="chunks run; the first is not timed")
    p.add_argument("--iterations-per-chunk", type=int, default=1)
    p.add_argument("--json", default=None, help="write the records here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = _parse_args(argv)
    from active_rlhf_jax.config import ConfigError
    from active_rlhf_jax.pipeline.hyper import static_differences
    from active_rlhf_jax.sweep import arm_config, expand_grid, parse_arms, parse_grid

    grid = args.grid or ["acquisition.method=random,bald", "reward.lr=1e-3,3e-4"]
    try:
        names = expand_grid(parse_arms(args.arms), parse_grid(grid))
        cells = [arm_config(args.preset, n, {}, args.seeds) for n in names]
    except ConfigError as e:
        print(f"grid_throughput: {e}", file=sys.stderr)
        return 2
    fields = static_differences(cells)
    if fields:
        print(f"grid_throughput: the cells differ in static fields {fields}; they cannot share "
              "one program", file=sys.stderr)
        return 2
    records = []
    grouped = measure_pipeline(cells[0], args.chunks, args.iterations_per_chunk,
                               f"grouped {len(cells)} cells", cells=cells)
    records.append(grouped)
    print(_line(grouped), flush=True)
    for name, cfg in zip(names, cells):
        rec = measure_pipeline(cfg, args.chunks, args.iterations_per_chunk, f"alone {name}")
        records.append(rec)
        print(_line(rec), flush=True)
    alone = records[1:]
    seq_sps = sum(r["timed_steps"] for r in alone) / sum(r["timed_s"] for r in alone)
    summary = dict(
        cells=names,
        seeds=args.seeds,
        grouped_sps=grouped["sps"],
        sequential_sps=seq_sps,
        ratio=grouped["sps"] / seq_sps,
        grouped_compile_s=grouped["compile_init_s"] + grouped["compile_chunk_s"],
        sequential_compile_s=sum(r["compile_init_s"] + r["compile_chunk_s"] for r in alone),
    )
    print(f"grouped {summary['grouped_sps']:,.0f} env steps/s vs one after another "
          f"{seq_sps:,.0f} (ratio {summary['ratio']:.2f}); compile {summary['grouped_compile_s']:.0f} s "
          f"vs {summary['sequential_compile_s']:.0f} s", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"summary": summary, "records": records}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
