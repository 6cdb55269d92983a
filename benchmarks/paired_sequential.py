"""A paired comparison of two arms as a group-sequential test over nested seed sets.

For comparisons whose seeds came in sets and were looked at after each set (docs/results.md,
Walker2d BALD - random): pairs the two arms' per-seed final returns on the seeds both
have, takes the looks at the first ``n_1 < n_2 < ...`` pairs in seed order, and tests each
look against the two-sided O'Brien-Fleming alpha-spending boundary of
``active_rlhf_jax.analysis.sequential`` (information fraction = pairs at the look / pairs
at the final look, which is every pair found). Each look's z boundary is also given as a
Student-t critical value at that look's degrees of freedom, which is what its paired t
statistic is compared with.

Each arm is one or more arm directories (a run directory, or a sweep's per-arm
directory) holding ``final_eval_gymnasium.json`` (else ``final_eval.json``); the per-seed
value is each seed's mean evaluation return.

Usage::

    python -m benchmarks.paired_sequential --a DIR [DIR ...] --b DIR [DIR ...]
        --looks 10,20 [--seeds 120-159] [--alpha 0.05] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

from active_rlhf_jax.analysis.matrix import GYM_EVAL_FILE, eval_file_scores
from active_rlhf_jax.analysis.sequential import boundaries, paired_t, t_boundary
from active_rlhf_jax.analysis.stats import compute_mean_ci

EVAL_FILES = (GYM_EVAL_FILE, "final_eval.json")


def per_seed_returns(dirs) -> dict[int, float]:
    """{seed: mean evaluation return} over the arm directories ``dirs``.

    Raises:
        ValueError: a directory without an evaluation file, or a seed found twice.
    """
    out: dict[int, float] = {}
    for d in map(pathlib.Path, dirs):
        path = next((d / f for f in EVAL_FILES if (d / f).is_file()), None)
        if path is None:
            raise ValueError(f"{d}: no {' or '.join(EVAL_FILES)} (is this an arm directory?)")
        for seed, value in eval_file_scores(path).items():
            if seed in out:
                raise ValueError(f"{path}: seed {seed} is in two directories of one arm")
            out[seed] = value
    return out


def analyse(a: dict[int, float], b: dict[int, float], looks, alpha=0.05, seeds=None) -> dict:
    """The group-sequential analysis of ``a - b`` (see the module docstring) as a dict."""
    common = sorted(set(a) & set(b))
    if seeds is not None:
        common = [s for s in common if seeds[0] <= s <= seeds[1]]
    n = len(common)
    looks = [int(k) for k in looks]
    if any(k <= 1 for k in looks) or looks != sorted(set(looks)) or (looks and looks[-1] >= n):
        raise ValueError(f"looks: need increasing pair counts in (1, {n}) before the final "
                         f"look at every pair ({n}), got {looks}")
    d = np.array([a[s] - b[s] for s in common])
    counts = looks + [n]
    c = boundaries([k / n for k in counts], alpha)
    rows = []
    for k, ck in zip(counts, c):
        stat, mean = paired_t(d[:k])
        tb = t_boundary(float(ck), k - 1)
        rows.append({"pairs": k, "seeds": [common[0], common[k - 1]], "mean": mean,
                     "t": stat, "z_boundary": float(ck),
                     "t_boundary": tb, "ahead": int((d[:k] > 0).sum()),
                     "crossed": bool(abs(stat) >= tb)})
    m, lo, hi, _ = compute_mean_ci(d)
    final = rows[-1]
    return {"pairs": n, "seeds": common, "diffs": d.tolist(), "alpha": alpha, "looks": rows,
            "final_mean": float(m), "final_ci95": [float(lo), float(hi)],
            "decision": ("a > b" if final["crossed"] and final["mean"] > 0 else
                         "a < b" if final["crossed"] else "not resolved")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--a", nargs="+", required=True, help="arm A's directories")
    p.add_argument("--b", nargs="+", required=True, help="arm B's directories")
    p.add_argument("--looks", default="", help="earlier looks, as pair counts, e.g. 10,20")
    p.add_argument("--seeds", default=None, help="seed range LO-HI to use (default: all)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--json", default=None, help="write the analysis here")
    args = p.parse_args(argv)
    try:
        seeds = None
        if args.seeds:
            lo, _, hi = args.seeds.partition("-")
            try:
                seeds = (int(lo), int(hi))
            except ValueError:
                raise ValueError(f"--seeds: need LO-HI, got {args.seeds!r}") from None
        looks = [int(x) for x in args.looks.split(",") if x.strip()]
        res = analyse(per_seed_returns(args.a), per_seed_returns(args.b), looks, args.alpha,
                      seeds)
    except ValueError as e:
        print(f"paired_sequential: {e}", file=sys.stderr)
        return 2
    for r in res["looks"]:
        print(f"look at {r['pairs']:3d} pairs (seeds {r['seeds'][0]}-{r['seeds'][1]}): "
              f"A - B {r['mean']:+,.1f}, {r['ahead']} ahead, t {r['t']:+.3f}; boundary "
              f"|t| >= {r['t_boundary']:.3f} (z {r['z_boundary']:.3f}): "
              f"{'crossed' if r['crossed'] else 'not crossed'}")
    lo, hi = res["final_ci95"]
    print(f"final: A - B {res['final_mean']:+,.1f} [{lo:+,.1f}, {hi:+,.1f}] (Student-t 95% CI, "
          f"{res['pairs']} pairs); decision at alpha {res['alpha']}: {res['decision']}")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
