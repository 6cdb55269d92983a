"""Paired differences in reward-model quality at equal labels between arms of a matrix.

For each ``A:B`` pair of arm directories (same seeds), at the iterations ``--iterations``:
Spearman of the learned against the true clip return on the pool (``reward_corr``) and on
the policy's fresh clips (``reward_corr_fresh``, where logged), A - B per seed with a
Student-t 95% CI; and the mean training return over the whole run (the area under the
learning curve per iteration). Reads only ``metrics.jsonl`` (or the committed records'
``metrics.jsonl.gz``); nothing is trained.

Usage::

    python -m benchmarks.label_efficiency benchmarks/results/matrix_cheetah \\
        pref-bald:pref-random "bald-fixed+teacher.rating_scale=pool:unified-random+teacher.rating_scale=pool"
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from active_rlhf_jax.analysis.loading import metrics_path, read_metrics


def _rows(path: Path) -> list[dict]:
    return read_metrics(metrics_path(path))


def paired_ci(diffs) -> tuple[float, float, float, int, int]:
    """mean, CI low, CI high (Student-t 95%, ``analysis.stats.compute_mean_ci``), seeds
    ahead (> 0), seeds."""
    from active_rlhf_jax.analysis.stats import compute_mean_ci

    x = np.asarray(diffs, float)
    mean, lo, hi, n = compute_mean_ci(x)
    return float(mean), float(lo), float(hi), int((x > 0).sum()), int(n)


def compare(rows_a, rows_b, iterations, keys=("reward_corr", "reward_corr_fresh")) -> list[dict]:
    """One record per (iteration, key) present in both arms for every seed, and one for
    the mean training return over the run."""
    out = []
    for it in iterations:
        for key in keys:
            va = {r["seed"]: r.get(key) for r in rows_a if r["iteration"] == it}
            vb = {r["seed"]: r.get(key) for r in rows_b if r["iteration"] == it}
            seeds = sorted(va)
            if not seeds or any(va[s] is None or vb.get(s) is None for s in seeds):
                continue
            labels = float(np.mean([r["labels_used"] for r in rows_a if r["iteration"] == it]))
            out.append(dict(iteration=it, labels=labels, metric=key,
                            a=float(np.mean([va[s] for s in seeds])),
                            b=float(np.mean([vb[s] for s in seeds])),
                            diff=paired_ci([va[s] - vb[s] for s in seeds])))

    def auc(rows):
        return {s: float(np.mean([r["true_return"] for r in rows if r["seed"] == s]))
                for s in {r["seed"] for r in rows}}

    aa, ab = auc(rows_a), auc(rows_b)
    seeds = sorted(aa)
    out.append(dict(iteration=None, labels=None, metric="mean training true_return",
                    a=float(np.mean([aa[s] for s in seeds])),
                    b=float(np.mean([ab[s] for s in seeds])),
                    diff=paired_ci([aa[s] - ab[s] for s in seeds])))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("matrix", help="a sweep's output directory")
    p.add_argument("pairs", nargs="+", help="ARM_A:ARM_B (A - B is reported)")
    p.add_argument("--iterations", default="1,5,10,25,50")
    a = p.parse_args(argv)
    root = Path(a.matrix)
    iterations = [int(x) for x in a.iterations.split(",")]
    for pair in a.pairs:
        arm_a, sep, arm_b = pair.partition(":")
        if not sep:
            print(f"label_efficiency: expected ARM_A:ARM_B, got {pair!r}", file=sys.stderr)
            return 2
        for arm in (arm_a, arm_b):
            if metrics_path(root / arm) is None:
                print(f"label_efficiency: no metrics.jsonl under {root / arm}", file=sys.stderr)
                return 2
        print(f"\n{arm_a} - {arm_b}")
        for rec in compare(_rows(root / arm_a), _rows(root / arm_b), iterations):
            m, lo, hi, ahead, n = rec["diff"]
            where = (f"iteration {rec['iteration']:2d} ({rec['labels']:.0f} labels) "
                     if rec["iteration"] is not None else "")
            print(f"  {where}{rec['metric']}: {rec['a']:.3f} vs {rec['b']:.3f}, "
                  f"difference {m:+.3f} [{lo:+.3f}, {hi:+.3f}], {ahead}/{n} ahead")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
