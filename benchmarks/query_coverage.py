"""Where a run's labelled clips lie against its policy's own clips at the end of training.

The Walker2d-v5 results (docs/results.md) left a hypothesis unmeasured: BALD's queries
concentrate where the posterior samples disagree, so the clips the reward model is fitted
on may cover the final policy's states less evenly than random queries do, even while the
model ranks that policy's clips better. This reads each run's newest checkpoint and
measures, per seed:

- ``coverage``: over the steps of the pool's newest ``--recent`` clips (the policy's own
  recent behaviour; the pool is a ring, so these are the last iterations' clips), the mean
  Euclidean distance to the nearest labelled step, observations standardised per
  dimension by the std of those recent steps pooled over every run given for that seed
  row (one scale per seed, so runs of one seed are compared on one ruler). Larger: the
  labels lie further from where the policy now goes;
- ``coverage_p90``: the 90th percentile of the same distances (the policy's worst-covered
  tenth);
- ``label_speed`` and ``recent_speed``: the mean of observation ``--speed-index`` (Walker2d
  and Hopper: 8 and 5, the torso's forward velocity; HalfCheetah: 8) over the labelled
  steps and over the recent pool steps: what kind of motion the labels price;
- ``step_corr``: the Pearson correlation of the learned per-step reward (as PPO reads it,
  the run's shift included) with the true one over the recent pool's steps;
- ``common_rank``: the Spearman correlation of the learned with the true clip return (sums
  over a clip's live steps) over the union of every given run's recent clips of that seed
  row: each run's reward model ranked on the same clips, where ``reward_corr`` ranks each
  run's own pool, drawn from its own policy.

With two or more runs it also prints each run's paired difference against the first, per
seed row, with a Student-t 95 % CI: the runs must hold the same seeds (an arm of a sweep
and another arm of it, or of a sweep on the same seeds).

Nothing is trained; only ``config.json`` and ``checkpoints/<newest>/default`` are read,
so the runs must still have their checkpoints (they are not committed).

Usage::

    python -m benchmarks.query_coverage runs/walker/pref-random+X runs/walker/pref-bald+X \\
        [--recent 1000 --speed-index 8 --json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from benchmarks.rating_resolution import newest_checkpoint

#: Observation index of the torso's forward velocity (qvel[0] after qpos[1:]).
SPEED_INDEX = {"Walker2d-v5": 8, "Walker2d-v4": 8, "Hopper-v5": 5, "Hopper-v4": 5,
               "HalfCheetah-v5": 8, "HalfCheetah-v4": 8}


def recent_slots(ptr: int, valid: np.ndarray, recent: int) -> np.ndarray:
    """Indices of the newest ``recent`` valid clips of a ring pool written up to ``ptr``.

    Args:
        ptr: the ring's next write slot; valid: ``[P]`` bool.

    Returns:
        ``[min(recent, valid.sum())]`` slot indices, newest first.
    """
    cap = valid.shape[0]
    order = (ptr - 1 - np.arange(cap)) % cap  # newest first
    order = order[valid[order]]
    return order[:recent]


def nearest_distances(queries: np.ndarray, refs: np.ndarray, block: int = 4096) -> np.ndarray:
    """Euclidean distance from each query row to its nearest reference row.

    Args:
        queries: ``[Q, d]``; refs: ``[R, d]`` (R >= 1).

    Returns:
        ``[Q]`` float64.
    """
    q = np.asarray(queries, np.float64)
    r = np.asarray(refs, np.float64)
    r2 = np.sum(r * r, axis=1)
    out = np.empty(q.shape[0])
    for i in range(0, q.shape[0], block):
        x = q[i:i + block]
        d2 = np.sum(x * x, axis=1)[:, None] + r2[None, :] - 2.0 * x @ r.T
        out[i:i + block] = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
    return out


def load_run(run_dir: Path) -> dict:
    """The pieces of a run's newest checkpoint this script reads (numpy, seed-major)."""
    import orbax.checkpoint as ocp

    from active_rlhf_jax.pipeline.runner import load_config

    cfg = load_config(run_dir)
    path = newest_checkpoint(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ckptr = ocp.PyTreeCheckpointer()
        state = ckptr.restore(path.resolve())
        ckptr.close()
    from active_rlhf_jax.reward.model import make_reward_model

    pool, buf = state["pool"], state["buffers"]
    obs_size, act_size = np.asarray(pool["obs"]).shape[-1], np.asarray(pool["act"]).shape[-1]
    model = make_reward_model(cfg.reward, obs_size, act_size, cfg.compat,
                              num_rounds=cfg.rating_rounds, absorbing=cfg.run.absorbing_clips)
    return {"cfg": cfg, "model": model, "checkpoint": str(path),
            "params": state["reward"]["params"],
            "pool": {k: np.asarray(pool[k]) for k in ("obs", "act", "rew", "valid", "ptr")},
            "pref": {k: np.asarray(buf[k]) for k in ("pref_obs_a", "pref_obs_b", "pref_valid")},
            "rating": {k: np.asarray(buf[k]) for k in ("rating_obs", "rating_valid")}}


def labelled_steps(run: dict, s: int) -> np.ndarray:
    """``[n, o]`` observations of every labelled step of seed row ``s`` (both modalities)."""
    p, r = run["pref"], run["rating"]
    v = p["pref_valid"][s].astype(bool)
    parts = [p["pref_obs_a"][s][v], p["pref_obs_b"][s][v]]
    rv = r["rating_valid"][s].astype(bool)
    parts.append(r["rating_obs"][s][rv])
    obs = np.concatenate([x.reshape(-1, x.shape[-1]) for x in parts])
    return obs[np.all(np.isfinite(obs), axis=1)]  # absorbing steps are NaN-marked


def learned_step_rewards(run: dict, s: int, obs: np.ndarray, act: np.ndarray):
    """``(r_hat [C, L], live [C, L] bool)``: seed row ``s``'s learned per-step reward of
    clips ``obs [C, L, o]``, ``act [C, L, a]`` (without the run's constant shift, which no
    correlation sees), and which steps are live (not absorbing)."""
    import jax
    import jax.numpy as jnp

    from active_rlhf_jax.batches import absorbing_steps

    model = run["model"]
    member = jax.tree_util.tree_map(lambda x: jnp.asarray(x[s]), run["params"])
    o, a = jnp.asarray(obs), jnp.asarray(act)
    return (np.asarray(model.step_reward(member, o, a), np.float64),
            ~np.asarray(absorbing_steps(o)))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def measure(runs: list[dict], recent_clips: int, speed_index: int) -> list[list[dict]]:
    """Per run, per seed row: the figures of the module docstring."""
    seeds = runs[0]["pool"]["valid"].shape[0]
    out = [[] for _ in runs]
    for s in range(seeds):
        recent = []  # per run: (obs [C, L, o], act [C, L, a], rew [C, L]) of its recent clips
        for run in runs:
            pool = run["pool"]
            slots = recent_slots(int(pool["ptr"][s]), pool["valid"][s].astype(bool),
                                 recent_clips)
            recent.append(tuple(pool[k][s][slots] for k in ("obs", "act", "rew")))
        steps = [o.reshape(-1, o.shape[-1]) for o, _, _ in recent]
        steps = [x[np.all(np.isfinite(x), axis=1)] for x in steps]
        scale = np.concatenate(steps).std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        union = tuple(np.concatenate([r[k] for r in recent]) for k in range(3))
        for i, run in enumerate(runs):
            lab = labelled_steps(run, s)
            d = nearest_distances(steps[i] / scale, lab / scale)
            r_hat, live = learned_step_rewards(run, s, recent[i][0], recent[i][1])
            u_hat, u_live = learned_step_rewards(run, s, union[0], union[1])
            out[i].append({
                "coverage": float(d.mean()), "coverage_p90": float(np.quantile(d, 0.9)),
                "label_speed": float(lab[:, speed_index].mean()),
                "recent_speed": float(steps[i][:, speed_index].mean()),
                "labelled_steps": int(lab.shape[0]), "recent_steps": int(steps[i].shape[0]),
                "step_corr": float(np.corrcoef(recent[i][2][live], r_hat[live])[0, 1]),
                "common_rank": _spearman(np.where(u_live, u_hat, 0.0).sum(axis=1),
                                         np.where(u_live, union[2], 0.0).sum(axis=1)),
                "common_clips": int(union[0].shape[0])})
    return out


def _fmt_ci(values: np.ndarray) -> str:
    from active_rlhf_jax.analysis.stats import compute_mean_ci

    m, lo, hi, _ = compute_mean_ci(np.asarray(values, np.float64))
    return f"{float(m):+.3f} [{float(lo):+.3f}, {float(hi):+.3f}]"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories (with checkpoints)")
    p.add_argument("--recent", type=int, default=1000, help="newest pool clips read as the "
                   "policy's own (default 1000: the last five iterations of the results "
                   "presets' 200 clips each)")
    p.add_argument("--speed-index", type=int, default=None,
                   help="observation index of forward speed (default: by env id)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    a = p.parse_args(argv)
    if a.recent < 1:
        print("query_coverage: --recent must be >= 1", file=sys.stderr)
        return 2
    try:
        runs = [load_run(r) for r in a.runs]
    except (FileNotFoundError, KeyError) as e:
        print(f"query_coverage: {e}", file=sys.stderr)
        return 2
    env_ids = {r["cfg"].env.env_id for r in runs}
    seeds = {(r["cfg"].seed, r["cfg"].seeds) for r in runs}
    if len(seeds) != 1:
        print(f"query_coverage: runs: different seeds (first seed, count) {sorted(seeds)}; "
              "paired figures need the same seeds", file=sys.stderr)
        return 2
    if len(env_ids) != 1:
        print(f"query_coverage: runs: mixed env ids {sorted(env_ids)}", file=sys.stderr)
        return 2
    env_id = env_ids.pop()
    speed = a.speed_index if a.speed_index is not None else SPEED_INDEX.get(env_id)
    if speed is None:
        print(f"query_coverage: --speed-index: no default for {env_id}; give one",
              file=sys.stderr)
        return 2
    res = measure(runs, a.recent, speed)
    keys = ("coverage", "coverage_p90", "label_speed", "recent_speed", "step_corr",
            "common_rank")
    for run, rows in zip(a.runs, res, strict=True):
        print(f"{run.name}:")
        for k in keys:
            vals = [x[k] for x in rows]
            print(f"  {k:13s} {_fmt_ci(vals)}  per seed {', '.join(f'{v:.3f}' for v in vals)}")
    for run, rows in zip(a.runs[1:], res[1:], strict=True):
        print(f"{run.name} - {a.runs[0].name}, paired per seed row:")
        for k in keys:
            diff = [x[k] - y[k] for x, y in zip(rows, res[0], strict=True)]
            print(f"  {k:13s} {_fmt_ci(diff)}")
    if a.json:
        a.json.write_text(json.dumps([{"run": str(r), "seeds": rows}
                                      for r, rows in zip(a.runs, res, strict=True)], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
