"""How much a relative rating scale resolves: the pool's clips and the labelled ratings per bin.

Under ``teacher.rating_scale="pool"`` the teacher rates a clip into K equal bins between
the lowest and highest discounted true clip return in the pool
(``teachers.pool_rating_range``). When a few clips stretch that range (with absorbing
clips, a pool of an early Hopper policy is mostly clips that fall within a few steps, and
one clip that hops for all 50), most clips share the lowest bins and their ratings tell
the model little. This reads a run's newest checkpoint and prints, per seed:

- the pool: its range, the number of valid clips per bin, the share of clips that hold an
  absorbing step (a NaN-marked observation, ``run.absorbing_clips``) and the mean number
  of live steps of the clips in each bin;
- the rating buffer: the labelled ratings per bin, and per labelling round group.

Nothing is trained; only the checkpoint (``<run>/checkpoints/<step>/default``) and
``config.json`` are read, so the run must still have its checkpoints.

(``teacher.rating_scale="pool-rank"`` bins by the pool's quantiles instead, so its pool
bins hold a K-th of the clips each by construction; the ratings' histogram still shows
which clips were asked.)

Usage::

    python -m benchmarks.rating_resolution runs/coldstart/unified-random+teacher.rating_scale=pool \\
        --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def pool_bins(rew: np.ndarray, valid: np.ndarray, gamma: float, num_bins: int,
              scale: str = "pool") -> np.ndarray:
    """The teacher's relative bin of every valid clip, in numpy.

    Args:
        rew: [P, L] true per-step rewards (0 on absorbing steps).
        valid: [P] bool.
        scale: ``teacher.rating_scale``, "pool" or "pool-rank".

    Returns:
        [V] int bins in 0..K-1 of the valid clips, in pool order. "pool": ``floor(K (g -
        lo) / (hi - lo))`` clipped to K-1, with g the gamma-discounted return and lo/hi its
        extremes over the valid clips (``teachers.compute_relative_bins``; all 0 when hi
        == lo). "pool-rank": ``min(K c // V, K-1)`` with c the number of valid clips whose
        return is strictly lower (``teachers.compute_rank_bins``).
    """
    g = (rew[valid].astype(np.float64) * gamma ** np.arange(rew.shape[-1])).sum(-1)
    if g.size == 0:
        return np.zeros(0, int)
    if scale == "pool-rank":
        below = (g[None, :] < g[:, None]).sum(1)
        return np.minimum(num_bins * below // g.size, num_bins - 1)
    lo, hi = g.min(), g.max()
    if hi <= lo:
        return np.zeros(g.shape, int)
    return np.clip(np.floor(num_bins * (g - lo) / (hi - lo)), 0, num_bins - 1).astype(int)


def pool_summary(rew, obs, valid, gamma: float, num_bins: int, scale: str = "pool") -> dict:
    """One seed's pool: ``{"clips", "lo", "hi", "bins" [K], "absorbing_share",
    "live_steps_by_bin" [K] (None for an empty bin)}``.

    Args:
        rew: [P, L]; obs: [P, L, o] (NaN rows are absorbing steps); valid: [P] bool.
        scale: the teacher's relative scale (:func:`pool_bins`).
    """
    valid = np.asarray(valid, bool)
    rew = np.asarray(rew)
    g = (rew[valid].astype(np.float64) * gamma ** np.arange(rew.shape[-1])).sum(-1)
    bins = pool_bins(rew, valid, gamma, num_bins, scale)
    absorbing = np.isnan(np.asarray(obs)[valid]).any(-1)  # [V, L]
    live = (~absorbing).sum(-1)
    return {
        "clips": int(valid.sum()),
        "lo": float(g.min()) if g.size else 0.0,
        "hi": float(g.max()) if g.size else 0.0,
        "bins": np.bincount(bins, minlength=num_bins).tolist(),
        "absorbing_share": float(absorbing.any(-1).mean()) if g.size else 0.0,
        "live_steps_by_bin": [float(live[bins == k].mean()) if (bins == k).any() else None
                              for k in range(num_bins)],
    }


def rating_summary(value, valid, rounds, num_bins: int, round_groups=(0, 1, 10, 25)) -> dict:
    """One seed's labelled ratings: ``{"ratings", "bins" [K], "by_rounds": {"a-b": [K]}}``,
    rounds grouped as ``[0, 1), [1, 10), [10, 25), [25, inf)`` by default.

    Args:
        value: [Cr] float ratings (integer-valued bins); valid: [Cr] bool; rounds: [Cr] int.
    """
    valid = np.asarray(valid, bool)
    v = np.clip(np.round(np.asarray(value)[valid]), 0, num_bins - 1).astype(int)
    r = np.asarray(rounds)[valid]
    edges = list(round_groups) + [None]
    by = {}
    for a, b in zip(edges[:-1], edges[1:]):
        sel = (r >= a) & (True if b is None else r < b)
        by[f"{a}-{'' if b is None else b - 1}"] = np.bincount(v[sel], minlength=num_bins).tolist()
    return {"ratings": int(valid.sum()), "bins": np.bincount(v, minlength=num_bins).tolist(),
            "by_rounds": by}


def _flatten(tree, prefix=""):
    out = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
    else:
        out[prefix] = tree
    return out


def newest_checkpoint(run_dir: Path) -> Path:
    """``<run>/checkpoints/<largest step>/default``; FileNotFoundError naming the run."""
    root = run_dir / "checkpoints"
    steps = sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.is_dir() else []
    if not steps:
        raise FileNotFoundError(f"{run_dir}: no checkpoints (the summary needs the run's state)")
    return root / str(steps[-1]) / "default"


def summarize_run(run_dir: Path) -> dict:
    """Per-seed pool and rating summaries of a run directory's newest checkpoint."""
    import warnings

    import orbax.checkpoint as ocp

    cfg = json.loads((run_dir / "config.json").read_text())
    gamma, k = float(cfg["reward"]["gamma"]), int(cfg["reward"]["num_bins"])
    path = newest_checkpoint(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ckptr = ocp.PyTreeCheckpointer()
        st = _flatten(ckptr.restore(path.resolve()))
        ckptr.close()
    seeds = st["/pool/rew"].shape[0]
    out = {"run": str(run_dir), "checkpoint": str(path), "rating_scale": cfg["teacher"]["rating_scale"],
           "absorbing_clips": cfg["run"].get("absorbing_clips", False), "seeds": []}
    for s in range(seeds):
        rec = {"pool": pool_summary(st["/pool/rew"][s], st["/pool/obs"][s], st["/pool/valid"][s],
                                    gamma, k, out["rating_scale"])}
        if "/buffers/rating_value" in st:
            rec["ratings"] = rating_summary(st["/buffers/rating_value"][s],
                                            st["/buffers/rating_valid"][s],
                                            st["/buffers/rating_round"][s], k)
        out["seeds"].append(rec)
    return out


def _share_low(bins, n_low=2) -> float:
    total = sum(bins)
    return sum(bins[:n_low]) / total if total else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories (with checkpoints)")
    ap.add_argument("--json", type=Path, default=None, help="also write the summaries here")
    args = ap.parse_args(argv)
    results = []
    for run in args.runs:
        try:
            res = summarize_run(run)
        except (FileNotFoundError, KeyError) as e:
            print(f"rating_resolution: error: {e}", file=sys.stderr)
            return 2
        results.append(res)
        print(f"{run} ({res['rating_scale']} scale, absorbing clips {res['absorbing_clips']})")
        for i, rec in enumerate(res["seeds"]):
            p = rec["pool"]
            line = (f"  run {i}: pool {p['clips']} clips, range [{p['lo']:.1f}, {p['hi']:.1f}], "
                    f"with a fall {p['absorbing_share']:.2f}, bins {p['bins']} "
                    f"(lowest two {_share_low(p['bins']):.2f})")
            if "ratings" in rec and rec["ratings"]["ratings"]:
                r = rec["ratings"]
                line += f"; ratings {r['bins']} (lowest two {_share_low(r['bins']):.2f})"
            print(line)
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
