"""Candidate pairs and clips, scored by broadcasting posterior samples of clip returns.

The per-clip cost (S forward passes per clip, done by the reward model) is paid once;
a pair's score only needs ``returns[:, i] - returns[:, j]``. Pairs are scored in
``block_size x block_size`` tiles of the pair matrix on or above its diagonal (``[S, B, B]``
floats at a time), so memory stays bounded for any pool size and the lower triangle costs
nothing. Three consumers of the tiles:

* :func:`dense_pair_scores` - the whole upper-triangular score matrix ``[N, N]`` (small
  pools; exact greedy / top-k selection run on it);
* :func:`blocked_topk_pairs` - exact running top-k over all pairs ``i < j`` (large pools,
  plain top-k selection);
* :func:`blocked_row_candidates` - each clip's ``m`` best partners (large pools,
  clip-disjoint selection runs on these ``N * m`` candidates).

Plus :func:`reference_pair_candidates`, the reference's random pool of ``100 * n`` pairs
(``reference_pool_factor * n``) with its min-gap filter on the TRUE returns (ground-truth
leakage, kept for comparison).

Invalid entries carry score ``-inf``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax.acquisition import scores as S
from active_rlhf_jax.acquisition.choice import Choice

NEG_INF = -jnp.inf


class PairStats(NamedTuple):
    """Running BALD statistics over the candidate pairs (for logging / allocation)."""

    bald_sum: jax.Array  # [] nats
    count: jax.Array  # [] number of candidate pairs (symmetric blocks count each twice)


class PairCandidates(NamedTuple):
    """A flat candidate list. ``scores`` is -inf where ``pairs`` is not a real candidate."""

    pairs: jax.Array  # [C, 2] int32, pairs[:, 0] < pairs[:, 1]
    scores: jax.Array  # [C]
    bald: jax.Array  # [C] nats


def pair_method_scores(method, diff, bald, key):
    """Acquisition score of pairs from ``diff [S, ...]`` and their BALD ``[...]``;
    ``method`` is a name or a :class:`~active_rlhf_jax.acquisition.choice.Choice`."""
    if isinstance(method, Choice):
        return method.pick([pair_method_scores(m, diff, bald, key) for m in method.options])
    if method == "bald":
        return bald
    if method == "variance":
        return jnp.var(diff, axis=0)
    if method == "entropy":
        return S.pair_predictive_entropy_from_diff(diff, axis=0)
    if method == "random":
        return jax.random.uniform(key, bald.shape)
    raise ValueError(f"unknown method {method!r}")


def _upper_tiles(nb):
    """Static (row block, column block) indices of the tiles on or above the diagonal."""
    bi, bj = np.triu_indices(nb)
    return jnp.asarray(bi, jnp.int32), jnp.asarray(bj, jnp.int32)


def _score_tile(returns_pad, n, valid_pad, bi, bj, block_size, method, key,
                labelled_pairs, labelled_pairs_mask):
    """Scores of the pairs (r0 + a, c0 + b) of one upper tile. -> ([B, B], [B, B], PairStats).

    Only tiles with bj >= bi are visited, so the lower triangle costs nothing.
    """
    s = returns_pad.shape[0]
    r0, c0 = bi * block_size, bj * block_size
    rows = jax.lax.dynamic_slice(returns_pad, (0, r0), (s, block_size))
    cols = jax.lax.dynamic_slice(returns_pad, (0, c0), (s, block_size))
    gi = r0 + jnp.arange(block_size)
    gj = c0 + jnp.arange(block_size)
    vr = jax.lax.dynamic_slice(valid_pad, (r0,), (block_size,))
    vc = jax.lax.dynamic_slice(valid_pad, (c0,), (block_size,))
    mask = vr[:, None] & vc[None, :] & (gj[None, :] > gi[:, None])
    if labelled_pairs is not None:
        a = jnp.minimum(labelled_pairs[:, 0], labelled_pairs[:, 1]) - r0
        b = jnp.maximum(labelled_pairs[:, 0], labelled_pairs[:, 1]) - c0
        inside = (labelled_pairs_mask.astype(bool) & (a >= 0) & (a < block_size)
                  & (b >= 0) & (b < block_size))
        a = jnp.where(inside, a, block_size)
        mask = mask.at[a, jnp.where(inside, b, 0)].set(False, mode="drop")
    diff = rows[:, :, None] - cols[:, None, :]  # [S, B, B]
    bald = S.preference_bald_from_diff(diff, axis=0)
    tile_key = jax.random.fold_in(jax.random.fold_in(key, bi), bj)
    score = jnp.where(mask, pair_method_scores(method, diff, bald, tile_key), NEG_INF)
    bald = jnp.where(mask, bald, 0.0)
    return score, bald, PairStats(jnp.sum(bald), jnp.sum(mask).astype(jnp.float32))


def _tiling(returns, valid, block_size):
    n = returns.shape[1]
    nb = -(-n // block_size)
    pad = nb * block_size - n
    returns_pad = jnp.pad(returns, ((0, 0), (0, pad)))
    valid_pad = jnp.pad(valid.astype(bool), (0, pad))
    return returns_pad, valid_pad, nb


def dense_pair_scores(returns, valid, key, *, method="bald", block_size=256,
                      labelled_pairs=None, labelled_pairs_mask=None):
    """Upper-triangular score matrix over all pairs of the pool.

    Scores ``block_size x block_size`` tiles on or above the diagonal (``[S, B, B]`` at a
    time) and assembles them.

    Args:
      returns: ``[S, N]`` posterior samples of clip returns.
      valid: ``[N]`` bool, clips that may appear in a pair (filled ring-buffer slots, and
        not excluded).
      key: PRNG key (used by ``method="random"`` only).
      method: "bald" | "variance" | "entropy" | "random" (static).
      block_size: static tile side.
      labelled_pairs: optional ``[P, 2]`` int pairs to exclude; ``labelled_pairs_mask``
        ``[P]`` marks the real rows.

    Returns:
      ``(scores [N, N], bald [N, N], PairStats)``; ``scores[i, j]`` is -inf unless i < j
      is a candidate; ``bald`` is 0 there.
    """
    n = returns.shape[1]
    block_size = min(block_size, n)
    returns_pad, valid_pad, nb = _tiling(returns, valid, block_size)
    ti, tj = _upper_tiles(nb)

    def one(t):
        return _score_tile(returns_pad, n, valid_pad, t[0], t[1], block_size, method, key,
                           labelled_pairs, labelled_pairs_mask)

    score, bald, stats = jax.lax.map(one, (ti, tj))
    full_s = jnp.full((nb, nb, block_size, block_size), NEG_INF).at[ti, tj].set(score)
    full_b = jnp.zeros((nb, nb, block_size, block_size)).at[ti, tj].set(bald)
    side = nb * block_size
    full_s = full_s.transpose(0, 2, 1, 3).reshape(side, side)[:n, :n]
    full_b = full_b.transpose(0, 2, 1, 3).reshape(side, side)[:n, :n]
    return full_s, full_b, PairStats(jnp.sum(stats.bald_sum), jnp.sum(stats.count))


def blocked_topk_pairs(returns, valid, key, k, *, method="bald", block_size=256,
                       labelled_pairs=None, labelled_pairs_mask=None):
    """Exact top-``k`` pairs ``i < j`` by score with a running top-k over upper tiles.

    Memory ``O(S * block_size^2 + k)``; time ``O(S * N^2 / 2)``.

    Returns:
      ``(PairCandidates with C = k sorted by descending score, PairStats)``.
    """
    n = returns.shape[1]
    block_size = min(block_size, n)
    returns_pad, valid_pad, nb = _tiling(returns, valid, block_size)
    ti, tj = _upper_tiles(nb)
    kb = min(k, block_size * block_size)

    def body(carry, t):
        top_s, top_b, top_i, top_j, stats = carry
        score, bald, st = _score_tile(returns_pad, n, valid_pad, t[0], t[1], block_size,
                                      method, key, labelled_pairs, labelled_pairs_mask)
        bs, bi = jax.lax.top_k(score.reshape(-1), kb)
        cand_s = jnp.concatenate([top_s, bs])
        cand_b = jnp.concatenate([top_b, bald.reshape(-1)[bi]])
        cand_i = jnp.concatenate([top_i, t[0] * block_size + bi // block_size])
        cand_j = jnp.concatenate([top_j, t[1] * block_size + bi % block_size])
        ms, mi = jax.lax.top_k(cand_s, k)
        stats = PairStats(stats.bald_sum + st.bald_sum, stats.count + st.count)
        return (ms, cand_b[mi], cand_i[mi], cand_j[mi], stats), None

    init = (jnp.full((k,), NEG_INF), jnp.zeros((k,)), jnp.zeros((k,), jnp.int32),
            jnp.zeros((k,), jnp.int32), PairStats(jnp.zeros(()), jnp.zeros(())))
    (ts, tb, ti_, tj_, stats), _ = jax.lax.scan(body, init, (ti, tj))
    found = ts > NEG_INF
    pairs = jnp.where(found[:, None], jnp.stack([ti_, tj_], axis=1), 0).astype(jnp.int32)
    return PairCandidates(pairs, ts, tb), stats


def _merge_best(cur_s, cur_j, new_s, new_j, m):
    """Row-wise top-m of the union of two candidate sets by m argmax passes (cheaper than
    lax.top_k on CPU for small m). ``[R, a], [R, a], [R, b], [R, b] -> [R, m], [R, m]``."""
    all_s = jnp.concatenate([cur_s, new_s], axis=1)
    all_j = jnp.concatenate([cur_j, new_j], axis=1)
    out_s, out_j = [], []
    for _ in range(m):
        k = jnp.argmax(all_s, axis=1)
        out_s.append(jnp.take_along_axis(all_s, k[:, None], axis=1)[:, 0])
        out_j.append(jnp.take_along_axis(all_j, k[:, None], axis=1)[:, 0])
        all_s = all_s.at[jnp.arange(all_s.shape[0]), k].set(NEG_INF)
    return jnp.stack(out_s, axis=1), jnp.stack(out_j, axis=1)


def blocked_row_candidates(returns, valid, key, m, *, method="bald", block_size=128,
                           labelled_pairs=None, labelled_pairs_mask=None):
    """Each clip's ``m`` best partners, for clip-disjoint selection on large pools.

    Visits each upper tile once and merges its rows into the best-m list of the row
    clips and its columns into that of the column clips, so every pair is scored once.
    A clip that dominates many pairs is in many clips' lists, so the greedy still finds
    it; every clip keeps ``m`` fallbacks once its favourites are taken.

    Returns:
      ``(PairCandidates with C = N_pad * m, pairs ordered i < j (a pair may appear twice;
      the greedy masks the copy), PairStats)``. ``bald`` holds the score, not BALD.
    """
    n = returns.shape[1]
    block_size = min(block_size, n)
    returns_pad, valid_pad, nb = _tiling(returns, valid, block_size)
    ti, tj = _upper_tiles(nb)
    side = nb * block_size
    m = min(m, n)
    base = jnp.arange(block_size)

    def body(carry, t):
        best_s, best_j, stats = carry
        score, _, st = _score_tile(returns_pad, n, valid_pad, t[0], t[1], block_size,
                                   method, key, labelled_pairs, labelled_pairs_mask)
        r0, c0 = t[0] * block_size, t[1] * block_size
        cols = jnp.broadcast_to((c0 + base)[None, :], score.shape)
        rows = jnp.broadcast_to((r0 + base)[:, None], score.shape)
        cs = jax.lax.dynamic_slice(best_s, (r0, 0), (block_size, m))
        cj = jax.lax.dynamic_slice(best_j, (r0, 0), (block_size, m))
        ns, nj = _merge_best(cs, cj, score, cols, m)
        best_s = jax.lax.dynamic_update_slice(best_s, ns, (r0, 0))
        best_j = jax.lax.dynamic_update_slice(best_j, nj, (r0, 0))
        cs = jax.lax.dynamic_slice(best_s, (c0, 0), (block_size, m))
        cj = jax.lax.dynamic_slice(best_j, (c0, 0), (block_size, m))
        ns, nj = _merge_best(cs, cj, score.T, rows.T, m)
        best_s = jax.lax.dynamic_update_slice(best_s, ns, (c0, 0))
        best_j = jax.lax.dynamic_update_slice(best_j, nj, (c0, 0))
        stats = PairStats(stats.bald_sum + st.bald_sum, stats.count + st.count)
        return (best_s, best_j, stats), None

    init = (jnp.full((side, m), NEG_INF), jnp.zeros((side, m), jnp.int32),
            PairStats(jnp.zeros(()), jnp.zeros(())))
    (best_s, best_j, stats), _ = jax.lax.scan(body, init, (ti, tj))
    own = jnp.broadcast_to(jnp.arange(side)[:, None], (side, m)).reshape(-1)
    other = best_j.reshape(-1)
    pairs = jnp.stack([jnp.minimum(own, other), jnp.maximum(own, other)], axis=1)
    found = best_s.reshape(-1) > NEG_INF
    pairs = jnp.where(found[:, None], pairs, 0).astype(jnp.int32)
    return PairCandidates(pairs, best_s.reshape(-1), best_s.reshape(-1)), stats


def reference_pair_candidates(key, returns, true_returns, valid, n, pool_slots, *,
                              attempts, min_gap=0.0, method="bald", pool_factor=100,
                              labelled_pairs=None, labelled_pairs_mask=None):
    """The reference's candidate pool (seed_spec §6.4), with fixed shapes.

    Draws ``attempts`` uniform pairs of distinct valid clips, keeps those with
    ``|true_R_i - true_R_j| >= min_gap`` (this reads the TRUE returns: ground truth
    leaks into which pairs can be asked), drops duplicates and the first
    ``pool_factor * n`` survivors (in draw order; the reference's 100 * n) form the pool.
    ``pool_slots`` (static, ``pool_factor * k_max``) bounds the pool; ``n`` may be traced.
    The reference stops after ``50 * pool`` draws; here the draw count is the static
    ``attempts``.

    Returns:
      ``(PairCandidates with C = pool_slots, PairStats)``.
    """
    key_i, key_j, key_score = jax.random.split(key, 3)
    n_valid = jnp.sum(valid)
    order = jnp.argsort(~valid, stable=True)  # valid clips first
    hi = jnp.maximum(n_valid, 1)
    a = order[jax.random.randint(key_i, (attempts,), 0, hi)]
    # second clip uniform among the other n_valid - 1 valid clips
    ub = jax.random.randint(key_j, (attempts,), 0, jnp.maximum(hi - 1, 1))
    pos_a = jnp.argsort(order)[a]
    b = order[jnp.where(ub >= pos_a, ub + 1, ub)]
    i = jnp.minimum(a, b).astype(jnp.int32)
    j = jnp.maximum(a, b).astype(jnp.int32)
    ok = (n_valid >= 2) & (i != j)
    ok &= jnp.abs(true_returns[i] - true_returns[j]) >= min_gap
    if labelled_pairs is not None:
        la = jnp.minimum(labelled_pairs[:, 0], labelled_pairs[:, 1])
        lb = jnp.maximum(labelled_pairs[:, 0], labelled_pairs[:, 1])
        seen = (i[:, None] == la[None]) & (j[:, None] == lb[None]) & labelled_pairs_mask[None].astype(bool)
        ok &= ~jnp.any(seen, axis=1)
    # deduplicate: sort by (i, j, draw), a draw equal to its predecessor is a duplicate
    draw = jnp.arange(attempts)
    si, sj, sd = jax.lax.sort((i, j, draw), num_keys=3)
    sok = ok[sd]
    # among sorted equal (i, j) runs, keep the first ok draw
    same = jnp.concatenate([jnp.array([False]), (si[1:] == si[:-1]) & (sj[1:] == sj[:-1])])
    run_id = jnp.cumsum(~same) - 1
    first_ok = jax.ops.segment_min(jnp.where(sok, jnp.arange(attempts), attempts), run_id,
                                   num_segments=attempts)
    keep_sorted = sok & (jnp.arange(attempts) == first_ok[run_id])
    keep = jnp.zeros((attempts,), bool).at[sd].set(keep_sorted)
    rank = jnp.cumsum(keep) - 1
    take = keep & (rank < jnp.minimum(pool_factor * n, pool_slots))
    slot = jnp.where(take, rank, pool_slots)
    pi = jnp.zeros((pool_slots,), jnp.int32).at[slot].set(i, mode="drop")
    pj = jnp.zeros((pool_slots,), jnp.int32).at[slot].set(j, mode="drop")
    live = jnp.zeros((pool_slots,), bool).at[slot].set(True, mode="drop")
    diff = returns[:, pi] - returns[:, pj]
    bald = S.preference_bald_from_diff(diff, axis=0)
    score = pair_method_scores(method, diff, bald, key_score)
    score = jnp.where(live, score, NEG_INF)
    bald = jnp.where(live, bald, 0.0)
    stats = PairStats(jnp.sum(bald), jnp.sum(live).astype(jnp.float32))
    return PairCandidates(jnp.stack([pi, pj], axis=1), score, bald), stats


def clip_scores(method, key, *, rating_likelihood, bin_probs=None, rating_mean=None,
                rating_var=None, num_nodes=32, block_size=128):
    """Acquisition score and BALD per clip for a rating query.

    Args:
      method: "bald" | "variance" | "entropy" | "random" (static), or a
        :class:`~active_rlhf_jax.acquisition.choice.Choice` among them.
      rating_likelihood: "ordinal" (reads ``bin_probs [S, N, K]``) or "gaussian" (reads
        ``rating_mean, rating_var [S, N]``), static.

    Returns:
      ``(score [N], bald [N])``; BALD in nats.
    """
    if isinstance(method, Choice):
        kw = dict(rating_likelihood=rating_likelihood, bin_probs=bin_probs,
                  rating_mean=rating_mean, rating_var=rating_var, num_nodes=num_nodes,
                  block_size=block_size)
        outs = [clip_scores(m, key, **kw) for m in method.options]
        return method.pick([o[0] for o in outs]), outs[0][1]
    if rating_likelihood == "ordinal":
        bald = S.ordinal_rating_bald(bin_probs)
        n = bin_probs.shape[1]
        if method == "variance":
            score = S.expected_bin_variance(bin_probs)
        elif method == "entropy":
            score = S.clip_predictive_entropy(bin_probs)
    elif rating_likelihood == "gaussian":
        bald = S.gaussian_rating_bald(rating_mean, rating_var, num_nodes, block_size)
        n = rating_mean.shape[1]
        if method == "variance":
            score = jnp.var(rating_mean, axis=0)
        elif method == "entropy":
            score = bald + jnp.mean(0.5 * jnp.log(2 * jnp.pi * jnp.e * rating_var), axis=0)
    else:
        raise ValueError(f"unknown rating_likelihood {rating_likelihood!r}")
    if method == "bald":
        score = bald
    elif method == "random":
        score = jax.random.uniform(key, (n,))
    return score, bald
