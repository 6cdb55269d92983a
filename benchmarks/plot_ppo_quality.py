"""Learning curves of ``benchmarks.ppo_quality`` runs (both learners on one figure).

Every record's episodes are binned by the env step at which they finished (``--bin``
steps per bin); a seed's value in a bin is the mean return of its episodes there, and the
curve is the mean over seeds with a 95% Student-t band (no band for one seed).

Usage::

    python -m benchmarks.plot_ppo_quality ours.jsonl sb3.jsonl --out docs/figures/ppo_quality.png
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np


def _seed_series(rec):
    """-> list of (steps [n], returns [n]) per seed from one record's curve fields."""
    steps = np.asarray(rec["curve_steps"], float)
    rets = np.asarray(rec["curve_returns"], float)
    if rets.ndim == 1:  # SB3: one seed, one entry per episode
        return [(steps, rets)]
    return [(steps[np.isfinite(r)], r[np.isfinite(r)]) for r in rets]


def binned(series, total, bin_steps):
    """Per-seed bin means ``[seeds, bins]`` (NaN for empty bins) and bin centres."""
    edges = np.arange(0, total + bin_steps, bin_steps)
    out = np.full((len(series), len(edges) - 1), np.nan)
    for i, (x, y) in enumerate(series):
        idx = np.digitize(x, edges) - 1
        for b in range(out.shape[1]):
            sel = idx == b
            if sel.any():
                out[i, b] = y[sel].mean()
    return out, 0.5 * (edges[1:] + edges[:-1])


def main(argv=None):
    from scipy import stats

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+", help="JSON-lines files written by ppo_quality --json")
    p.add_argument("--out", required=True)
    p.add_argument("--bin", type=int, default=50_000, help="env steps per bin [50000]")
    a = p.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list] = {}
    env_id = None
    for path in a.files:
        for line in open(path):
            rec = json.loads(line)
            if "curve_steps" not in rec:
                continue
            env_id = rec["env"]
            groups.setdefault(rec["learner"], []).append(rec)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    # Common horizon: SB3 rounds its last rollout up past the requested steps.
    total = min(r["env_steps"] for recs in groups.values() for r in recs)
    for learner, recs in groups.items():
        series = [(x[x <= total], y[x <= total]) for r in recs for x, y in _seed_series(r)]
        vals, x = binned(series, total, a.bin)
        n = np.sum(np.isfinite(vals), axis=0)
        mean = np.nanmean(np.where(n > 0, vals, 0.0), axis=0)
        keep = n > 0
        line, = ax.plot(x[keep], mean[keep], label=f"{learner} ({len(series)} seeds)")
        if len(series) > 1:
            sd = np.nanstd(vals, axis=0, ddof=1)
            half = np.array([stats.t.ppf(0.975, k - 1) * s / math.sqrt(k) if k > 1 else np.nan
                             for k, s in zip(n, sd)])
            ok = keep & np.isfinite(half)
            ax.fill_between(x[ok], (mean - half)[ok], (mean + half)[ok], alpha=0.2,
                            color=line.get_color())
    ax.set_xlabel("env steps")
    ax.set_ylabel("training episode return")
    ax.set_title(f"PPO on {env_id}: mean over seeds, 95% CI")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(a.out, dpi=120)
    print(a.out)


if __name__ == "__main__":
    main()
