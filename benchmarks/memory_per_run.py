"""Device memory of one RLHF chunk per run, from XLA's buffer assignment (issue #15).

For each arm of ``--arms`` (an experiment preset part after ``--preset``, as in
``active-rlhf sweep``) the chunk program of ``--runs`` vmapped runs is lowered and
compiled ahead of time against the initial state's shapes (``jax.eval_shape``; nothing
runs), and its ``memory_analysis()`` gives the temporary buffers XLA assigned. Divided by
the runs, that is what each further seed or cell of a sweep costs on the device, on top of
its state. ``--posterior-block`` overrides ``pipeline.feedback.POSTERIOR_BLOCK`` (clips per
block of the reward model's posterior samples) to compare block sizes.

Usage::

    python -m benchmarks.memory_per_run --preset hopper+results --arms pref-bald \
        --runs 2 --posterior-block 2048,256
"""

from __future__ import annotations

import argparse
import json


def measure(preset: str, arm: str, runs: int, length: int = 1) -> dict:
    """``{"state_mb", "temp_mb"}`` per run of ``arm``'s ``length``-iteration chunk."""
    import jax

    from active_rlhf_jax.pipeline.train import make_train
    from active_rlhf_jax.sweep import arm_config

    cfg = arm_config(preset, arm, {}, 1)
    pipe = make_train(cfg)
    keys = jax.random.split(jax.random.PRNGKey(0), runs)
    state = jax.eval_shape(jax.vmap(pipe.init), keys)
    compiled = jax.jit(jax.vmap(lambda s: pipe.run_chunk(s, length))).lower(state).compile()
    mem = compiled.memory_analysis()
    state_bytes = sum(x.size * x.dtype.itemsize for x in jax.tree_util.tree_leaves(state))
    return {"state_mb": state_bytes / runs / 2**20,
            "temp_mb": mem.temp_size_in_bytes / runs / 2**20}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="hopper+results")
    p.add_argument("--arms", default="pref-random,pref-bald")
    p.add_argument("--runs", type=int, default=2, help="vmapped runs compiled together")
    p.add_argument("--posterior-block", default="",
                   help="comma-separated POSTERIOR_BLOCK values to compare (default: as is)")
    p.add_argument("--json", default=None, help="also write the records here")
    args = p.parse_args(argv)
    from active_rlhf_jax.pipeline import feedback

    blocks = [int(b) for b in args.posterior_block.split(",") if b] or [feedback.POSTERIOR_BLOCK]
    records = []
    print("| arm | posterior block | runs | state MB / run | chunk buffers MB / run |")
    print("|---|---:|---:|---:|---:|")
    for block in blocks:
        feedback.POSTERIOR_BLOCK = block
        for arm in args.arms.split(","):
            r = dict(measure(args.preset, arm, args.runs), arm=arm, posterior_block=block,
                     runs=args.runs, preset=args.preset)
            records.append(r)
            print(f"| {arm} | {block} | {args.runs} | {r['state_mb']:.1f} | {r['temp_mb']:.0f} |",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
