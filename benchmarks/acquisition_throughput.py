"""Acquisition throughput on this machine (issue #6). Run: python benchmarks/acquisition_throughput.py

Measures, in one process so the ratios share the machine's load:
  * per-clip sampling: S = 20 dropout masks of a stand-in 64-64 MLP on [N, L=50, 23];
  * all-pairs scoring from those samples (candidate pairs / s) against pool size;
  * two per-pair baselines doing S forward passes per pair (2 clips each): a Python loop
    over pairs (the reference's approach, a few pairs, extrapolated) and jit(vmap) over
    pairs;
  * full ``acquire`` time at the reference's pool sizes (1,000 .. 51,000 clips).
Prints a markdown table. Use --quick for a smaller sweep.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from active_rlhf_jax import acquisition as acq  # noqa: E402
from active_rlhf_jax.acquisition import scores as sc  # noqa: E402

S, L, D, H, P_DROP = 20, 50, 23, 64, 0.4


def init_mlp(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, (D, H)) / np.sqrt(D), "b1": jnp.zeros(H),
        "w2": jax.random.normal(k2, (H, H)) / np.sqrt(H), "b2": jnp.zeros(H),
        "w3": jax.random.normal(k3, (H, 1)) / np.sqrt(H), "b3": jnp.zeros(1),
    }


def make_masks(key):
    k1, k2 = jax.random.split(key)
    keep = 1.0 - P_DROP
    return (jax.random.bernoulli(k1, keep, (S, H)) / keep, jax.random.bernoulli(k2, keep, (S, H)) / keep)


def clip_return(params, m1, m2, x):
    """One posterior sample (masks m1, m2) of the return of clips x [..., L, D]."""
    h = jax.nn.relu(x @ params["w1"] + params["b1"]) * m1
    h = jax.nn.relu(h @ params["w2"] + params["b2"]) * m2
    return jnp.sum((h @ params["w3"] + params["b3"])[..., 0], axis=-1)


@jax.jit
def sample_returns(params, masks, x):
    """[N, L, D] -> [S, N] (all clips, S masks)."""
    return jax.vmap(lambda a, b: clip_return(params, a, b, x))(*masks)


def pair_bald_forward(params, masks, xa, xb):
    """One pair, S forward passes of each clip: [L, D], [L, D] -> []."""
    ra = jax.vmap(lambda a, b: clip_return(params, a, b, xa))(*masks)
    rb = jax.vmap(lambda a, b: clip_return(params, a, b, xb))(*masks)
    return sc.preference_bald(ra[:, None], rb[:, None])[0]


def timeit(fn, *args, reps=3):
    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--loop-pairs", type=int, default=20)
    args = ap.parse_args()
    key = jax.random.PRNGKey(0)
    params = init_mlp(key)
    masks = make_masks(jax.random.PRNGKey(1))
    print(f"devices: {jax.devices()}; cpu cores: {os.cpu_count()}")

    # ---- baselines at a 2,000-clip pool -------------------------------------------
    n0 = 2000
    x = jax.random.normal(key, (n0, L, D))
    t_sample = timeit(sample_returns, params, masks, x)
    returns = sample_returns(params, masks, x)
    valid = jnp.ones(n0, bool)
    score_all = jax.jit(lambda r: acq.dense_pair_scores(r, valid, key)[2].bald_sum)
    t_pairs = timeit(score_all, returns)
    n_pairs = n0 * (n0 - 1) // 2
    ours_per_pair = (t_sample + t_pairs) / n_pairs

    fwd = jax.jit(lambda m1, m2, xc: clip_return(params, m1, m2, xc))
    fwd(masks[0][0], masks[1][0], x[0]).block_until_ready()
    t = time.perf_counter()
    for p in range(args.loop_pairs):  # reference: per pair, T passes on each clip
        a, b = x[2 * p], x[2 * p + 1]
        ra = [float(fwd(masks[0][s], masks[1][s], a)) for s in range(S)]
        rb = [float(fwd(masks[0][s], masks[1][s], b)) for s in range(S)]
        d = np.array(ra) - np.array(rb)
        pbar = np.mean(1 / (1 + np.exp(-d)))
        _ = pbar
    loop_per_pair = (time.perf_counter() - t) / args.loop_pairs

    n_vm = 2000
    ia = jnp.arange(n_vm) % n0
    ib = (jnp.arange(n_vm) * 7 + 1) % n0
    vm = jax.jit(jax.vmap(lambda i, j: pair_bald_forward(params, masks, x[i], x[j])))
    vmap_per_pair = timeit(vm, ia, ib, reps=2) / n_vm

    print("\n### Per-pair cost at a 2,000-clip pool (S=20, 64-64 MLP, L=50, obs+act=23)\n")
    print("| implementation | per pair | pairs/s | ours is faster by |")
    print("|---|---|---|---|")
    for name, v in [("Python loop over pairs, 2x20 jitted forwards each (reference style)", loop_per_pair),
                    ("jit(vmap) over pairs, 2x20 forwards each", vmap_per_pair),
                    ("ours: 20 passes per clip + all pairs by broadcasting", ours_per_pair)]:
        print(f"| {name} | {v * 1e6:.3g} us | {1 / v:.3g} | {v / ours_per_pair:.3g}x |")
    print(f"\nours split: sampling {n0} clips {t_sample * 1e3:.1f} ms; scoring {n_pairs:,} pairs "
          f"{t_pairs * 1e3:.1f} ms ({n_pairs / t_pairs:.3g} pairs/s)")

    # ---- scoring throughput against pool size -------------------------------------
    sizes = [500, 1000, 2000, 4000] if args.quick else [500, 1000, 2000, 4000, 8000]
    print("\n### All-pairs BALD scoring vs pool size (returns [20, N] given)\n")
    print("| clips | pairs | sampling ms | dense matrix ms | pairs/s | blocked top-250 ms | pairs/s |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        xn = jax.random.normal(key, (n, L, D))
        ts = timeit(sample_returns, params, masks, xn, reps=2)
        r = sample_returns(params, masks, xn)
        v = jnp.ones(n, bool)
        npairs = n * (n - 1) // 2
        td = timeit(jax.jit(lambda r, v=v: acq.dense_pair_scores(r, v, key)[2].bald_sum), r, reps=2) if n <= 4096 else float("nan")
        tb = timeit(jax.jit(lambda r, v=v: acq.blocked_topk_pairs(r, v, key, 250)[0].scores), r, reps=2)
        print(f"| {n} | {npairs:,} | {ts * 1e3:.1f} | {td * 1e3:.1f} | {npairs / td:.3g} | {tb * 1e3:.1f} | {npairs / tb:.3g} |")

    # ---- acquire at the reference's pool sizes ------------------------------------
    pools = [1000, 2000, 51000] if args.quick else [1000, 2000, 4000, 11000, 51000]
    k_max, n_q = 250, 250
    print(f"\n### acquire(): n = k_max = {k_max}, ordinal bins K=10 (posterior given)\n")
    print("| clips | pair_mode=all, disjoint ms | pair_mode=reference (100n pool) ms | clip scoring share ms |")
    print("|---|---|---|---|")
    for n in pools:
        r = jax.random.normal(key, (S, n)) * 2.0
        bp = jax.nn.softmax(jax.random.normal(key, (S, n, 10)), -1)
        v = jnp.ones(n, bool)
        tr = r[0]
        out = []
        for cfg in (acq.AcquisitionConfig(), acq.AcquisitionConfig(pair_mode="reference", selection="topk", allocation="reference-adaptive")):
            if cfg.pair_mode == "all" and n > 11000:
                out.append(float("nan"))
                continue
            f = jax.jit(lambda k, r, bp, cfg=cfg, v=v, tr=tr: acq.acquire(cfg, k, r, v, n_q, k_max, bin_probs=bp, true_returns=tr))
            out.append(timeit(f, key, r, bp, reps=1))
        tc = timeit(jax.jit(lambda bp: acq.categorical_bald(bp)), bp, reps=2)
        print(f"| {n} | {out[0] * 1e3:.0f} | {out[1] * 1e3:.0f} | {tc * 1e3:.1f} |")


if __name__ == "__main__":
    main()
