"""What a label of each kind is worth to the reward model on a frozen pool, without PPO.

The results matrix compares arms by the final return, whose seed-to-seed spread on
Walker2d and Hopper (PPO's own) is wider than any difference between label kinds. This
takes the clip pool of a finished run's newest checkpoint (clips of the trained policies,
with their true rewards), splits each seed's valid clips at random into halves, asks the
simulated teacher of the run's config for random queries over the first half (``pref:N``
random pairs, ``rating:N`` random clips, ``both:NP/NR`` both), fits the run's reward model
once from scratch on them (``reward.init_epochs`` with early stopping, exactly the
pipeline's ``fit``) and measures the fitted reward on the held-out half:

- ``clip_spearman``: Spearman of learned vs true (undiscounted) clip return, what
  ``reward_corr`` logs on the pool;
- ``top_spearman``: the same over the held-out clips in the top quarter of true return,
  the ranking among the best behaviour, which a policy near its peak has to climb;
- ``step_pearson``: Pearson of the learned vs true per-step reward over the held-out live
  steps (affine-invariant; a policy gradient reads per-step rewards, not clip sums).

Ratings come in ``--rounds`` labelling rounds as in the pipeline (label ``i`` of ``n`` in
round ``i * rounds // n``), so on a relative scale (``teacher.rating_scale=pool``) the
model fits one calibration per round from its few ratings, as it does online; the frozen
pool's range is the same in every round. Each (seed pool, key) is one unit; every arm
uses the same units, the same halves and, through the keys, the same query streams as
far as they go, so arms are compared paired. ``--set field=value`` overrides the run's
config for every arm (e.g. ``teacher.rating_scale=fixed``).

Nothing here touches the run's checkpoint; only ``config.json`` and
``checkpoints/<newest>/default`` are read.

Usage::

    python -m benchmarks.label_value RUN_DIR --arms pref:400,rating:400,both:184/216,pref:184 \\
        --keys 4 [--rounds 50] [--set teacher.rating_scale=fixed] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from active_rlhf_jax.analysis.stats import compute_mean_ci
from active_rlhf_jax.pipeline.masked_stats import masked_pearson, masked_spearman
from benchmarks._overrides import parse_overrides
from benchmarks.rating_resolution import newest_checkpoint

#: Folded into a unit's key for the train / held-out split of its pool.
SPLIT_SALT = 0x5350


def parse_arm(text: str) -> tuple[str, int, int]:
    """``pref:N`` | ``rating:N`` | ``both:NP/NR`` -> (name, pairs, ratings).

    Raises:
        ValueError: one line naming the arm.
    """
    kind, _, count = text.partition(":")
    try:
        if kind == "pref":
            return text, int(count), 0
        if kind == "rating":
            return text, 0, int(count)
        if kind == "both":
            p, _, r = count.partition("/")
            return text, int(p), int(r)
    except ValueError:
        pass
    raise ValueError(f"--arms: {text!r} is not pref:N, rating:N or both:NP/NR")


def make_unit(cfg, obs_size: int, act_size: int, n_pref: int, n_rating: int, rounds: int):
    """``unit(key, pool) -> metrics`` for one arm: label, fit, measure. Pure; jit/vmap it.

    ``pool`` is the checkpoint's per-seed pool dict (``obs [P, L, o]``, ``act``, ``rew
    [P, L]``, ``valid [P]``, ...), as :class:`ClipPool` fields.
    """
    import dataclasses

    import jax
    import jax.numpy as jnp

    from active_rlhf_jax.batches import Queries, absorbing_steps
    from active_rlhf_jax.pipeline.feedback import make_feedback_stages
    from active_rlhf_jax.pipeline.pool import ClipPool

    feedback = "both" if n_pref and n_rating else ("preference" if n_pref else "rating")
    run = dataclasses.replace(cfg.run, feedback=feedback, budget=n_pref + n_rating)
    c = dataclasses.replace(cfg, run=run)

    class _Env:  # the stages read only the sizes
        observation_size, action_size = obs_size, act_size

    fb = make_feedback_stages(c, _Env())
    k = max(n_pref, n_rating, 1)

    def unit(key, pool: dict):
        pool = ClipPool(**pool)
        key_split, key_q, key_label, key_store, key_init, key_fit = jax.random.split(key, 6)
        valid = pool.valid
        u = jax.random.uniform(jax.random.fold_in(key_split, SPLIT_SALT), valid.shape)
        train = valid & (u < 0.5)
        held = valid & ~train
        train_pool = pool.replace(valid=train)
        # random queries over the training half
        order = lambda kk: jnp.argsort(jnp.where(train, jax.random.uniform(kk, valid.shape), 2.0))
        ka, kb, kc = jax.random.split(key_q, 3)
        n_train = jnp.maximum(jnp.sum(train), 2)
        slots = jnp.arange(k)
        oa, ob = order(ka), order(kb)
        a = oa[slots % n_train]
        b = ob[slots % n_train]
        b = jnp.where(a == b, ob[(slots + 1) % n_train], b)
        pair_idx = jnp.stack([jnp.minimum(a, b), jnp.maximum(a, b)], axis=1).astype(jnp.int32)
        clip_idx = order(kc)[slots % n_train].astype(jnp.int32)
        queries = Queries(pair_idx=pair_idx, pair_mask=slots < n_pref,
                          clip_idx=clip_idx, clip_mask=slots < n_rating)
        kp, kr = jax.random.split(key_label)
        prefs, ratings = fb.label(kp, kr, train_pool, queries, jnp.int32(0))
        if ratings is not None:  # label i of n in round i * rounds // n, as online
            ratings = ratings.replace(
                round=(slots * rounds // max(n_rating, 1)).astype(jnp.int32))
        ksp, ksr = jax.random.split(key_store)
        buffers = fb.store(ksp, ksr, fb.init_buffers(), prefs, ratings)
        reward, fit_metrics = fb.fit(key_fit, fb.init_reward(key_init), buffers, initial=True)
        r_hat = fb.step_reward(reward, pool.obs, pool.act)  # [P, L]
        live = ~absorbing_steps(pool.obs)
        learned = jnp.sum(jnp.where(live, r_hat, 0.0), axis=-1)
        true = jnp.sum(pool.rew, axis=-1)
        q75 = jnp.nanquantile(jnp.where(held, true, jnp.nan), 0.75)
        top = held & (true >= q75)
        step_w = held[:, None] & live
        return {
            "clip_spearman": masked_spearman(learned, true, held),
            "top_spearman": masked_spearman(learned, true, top),
            "step_pearson": masked_pearson(r_hat.reshape(-1), pool.rew.reshape(-1),
                                           step_w.reshape(-1)),
            "labels_pref": jnp.sum(buffers.pref_valid),
            "labels_rating": jnp.sum(buffers.rating_valid),
            "fit_epochs": fit_metrics["rm_epochs"],
        }

    return unit


def t_ci(x) -> tuple[float, float, float]:
    """Mean and Student-t 95% CI of ``x`` (``analysis.stats.compute_mean_ci``)."""
    mean, lo, hi, _ = compute_mean_ci(np.asarray(x, np.float64))
    return float(mean), float(lo), float(hi)


def measure(run_dir: Path, arms: list, keys: int, rounds: int, overrides: dict,
            key: int = 0) -> dict:
    """Every arm on every (seed pool, key) unit of ``run_dir``'s newest checkpoint."""
    import warnings

    import jax
    import jax.numpy as jnp
    import orbax.checkpoint as ocp

    from active_rlhf_jax.config import replace
    from active_rlhf_jax.pipeline.runner import load_config

    cfg = load_config(run_dir)
    if overrides:
        cfg = replace(cfg, **overrides)
    path = newest_checkpoint(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = ocp.PyTreeCheckpointer().restore(path.resolve())
    pool = {f: jnp.asarray(state["pool"][f])
            for f in ("obs", "act", "rew", "valid", "in_pair", "rated", "ptr")}
    n_seeds = pool["valid"].shape[0]
    obs_size, act_size = pool["obs"].shape[-1], pool["act"].shape[-1]
    unit_keys = jax.random.split(jax.random.PRNGKey(key), keys)
    out = {"run": str(run_dir), "checkpoint": str(path), "env_id": cfg.env.env_id,
           "rating_scale": cfg.teacher.rating_scale, "overrides": overrides,
           "keys": keys, "key": key, "rounds": rounds,
           "valid_clips": [int(v) for v in np.asarray(pool["valid"]).sum(-1)], "arms": {}}
    for name, n_p, n_r in arms:
        t0 = time.perf_counter()
        unit = make_unit(cfg, obs_size, act_size, n_p, n_r, rounds)
        over_keys = jax.vmap(unit, in_axes=(0, None))
        over_seeds = jax.jit(jax.vmap(over_keys, in_axes=(None, 0)))
        res = jax.tree_util.tree_map(np.asarray, over_seeds(unit_keys, pool))  # [seeds, keys]
        out["arms"][name] = {k: v.reshape(-1).tolist() for k, v in res.items()}
        print(f"  {name}: {time.perf_counter() - t0:.0f} s, clip {np.mean(res['clip_spearman']):.3f} "
              f"top {np.mean(res['top_spearman']):.3f} step {np.mean(res['step_pearson']):.3f} "
              f"labels {np.mean(res['labels_pref']):.0f}/{np.mean(res['labels_rating']):.0f}",
              file=sys.stderr)
    out["units"] = n_seeds * keys
    return out


def table(out: dict, baseline: str | None) -> str:
    """Markdown: each arm's mean [95% CI] per metric, and paired differences against
    ``baseline`` (an arm name) on the same units."""
    metrics = ("clip_spearman", "top_spearman", "step_pearson")
    lines = [f"{out['env_id']} ({out['run']}; {out['units']} units)", "",
             "| arm | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
    fmt = lambda m, lo, hi: f"{m:.3f} [{lo:.3f}, {hi:.3f}]"
    for name, res in out["arms"].items():
        lines.append(f"| {name} | " + " | ".join(fmt(*t_ci(res[m])) for m in metrics) + " |")
    if baseline and baseline in out["arms"]:
        base = out["arms"][baseline]
        for name, res in out["arms"].items():
            if name == baseline:
                continue
            diffs = [fmt(*t_ci(np.subtract(res[m], base[m]))) for m in metrics]
            lines.append(f"| {name} - {baseline} | " + " | ".join(diffs) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run directories with checkpoints")
    ap.add_argument("--arms", default="pref:400,rating:400,both:200/200,pref:200")
    ap.add_argument("--keys", type=int, default=4, help="units per seed pool")
    ap.add_argument("--key", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=50, help="rating rounds (the pipeline: "
                    "one per iteration)")
    ap.add_argument("--baseline", default=None, help="arm the paired differences are "
                    "against (default: the first)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.set, ap.error)
    try:
        arms = [parse_arm(a.strip()) for a in args.arms.split(",") if a.strip()]
    except ValueError as e:
        ap.error(str(e))
    if not arms:
        ap.error("--arms: no arm given")
    results = []
    for run_dir in args.runs:
        print(f"{run_dir}:", file=sys.stderr)
        out = measure(run_dir, arms, args.keys, args.rounds, overrides, args.key)
        print(table(out, args.baseline or arms[0][0]))
        print()
        results.append(out)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
