"""Fixed-shape batch selection: static ``k_max`` slots, a traced count, validity masks.

Every selector returns ``(idx, scores, found)`` with ``k_max`` slots in selection order
(descending score); ``found[t]`` says slot ``t`` holds a real candidate. Callers mask the
slots beyond the traced count they want (``arange(k_max) < n``); the selectors here
already stop early at ``n`` where that saves work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

NEG_INF = -jnp.inf


def select_topk(scores, valid, k_max: int):
    """Plain top-k of a flat candidate list.

    Args:
      scores: ``[C]`` candidate scores.
      valid: ``[C]`` bool; invalid candidates are never returned.
      k_max: static number of slots (may exceed C; extra slots are not found).

    Returns:
      ``(idx [k_max] int32, scores [k_max], found [k_max] bool)``.
    """
    masked = jnp.where(valid, scores, NEG_INF)
    c = masked.shape[0]
    if k_max > c:
        masked = jnp.concatenate([masked, jnp.full((k_max - c,), NEG_INF, masked.dtype)])
    top, idx = jax.lax.top_k(masked, k_max)
    found = top > NEG_INF
    return jnp.where(found, idx, 0).astype(jnp.int32), jnp.where(found, top, NEG_INF), found


def select_topk_matrix(score_matrix, k_max: int):
    """Plain top-k over a ``[N, N]`` pair score matrix (-inf = not a candidate).

    Returns:
      ``(pairs [k_max, 2] int32, scores [k_max], found [k_max])``.
    """
    n = score_matrix.shape[1]
    idx, top, found = select_topk(score_matrix.reshape(-1), jnp.ones(score_matrix.size, bool), k_max)
    pairs = jnp.stack([idx // n, idx % n], axis=1).astype(jnp.int32)
    return jnp.where(found[:, None], pairs, 0), top, found


def select_disjoint_pairs(pairs, scores, valid, num_clips: int, n, k_max: int):
    """Clip-disjoint greedy batch from a flat candidate list.

    ``n`` rounds (traced, <= k_max): take the best remaining pair, then mask every
    candidate that shares a clip with it. Each round is O(C).

    Args:
      pairs: ``[C, 2]`` int clip indices.
      scores: ``[C]``; valid: ``[C]`` bool.
      num_clips: static pool size N.
      n: traced number of rounds wanted.
      k_max: static number of slots.

    Returns:
      ``(slot_pairs [k_max, 2], slot_scores [k_max], found [k_max])``.
    """
    masked0 = jnp.where(valid, scores, NEG_INF)

    def cond(c):
        t, _, _, _, _, done = c
        return (t < jnp.minimum(n, k_max)) & ~done

    def body(c):
        t, used, out_p, out_s, found, _ = c
        live = ~(used[pairs[:, 0]] | used[pairs[:, 1]])
        cur = jnp.where(live, masked0, NEG_INF)
        best = jnp.argmax(cur)
        s = cur[best]
        ok = s > NEG_INF
        p = pairs[best]
        used = jnp.where(ok, used.at[p].set(True), used)
        out_p = out_p.at[t].set(jnp.where(ok, p, 0))
        out_s = out_s.at[t].set(s)
        found = found.at[t].set(ok)
        return t + 1, used, out_p, out_s, found, ~ok

    init = (jnp.zeros((), jnp.int32), jnp.zeros((num_clips,), bool),
            jnp.zeros((k_max, 2), jnp.int32), jnp.full((k_max,), NEG_INF),
            jnp.zeros((k_max,), bool), jnp.zeros((), bool))
    _, _, out_p, out_s, found, _ = jax.lax.while_loop(cond, body, init)
    return out_p, out_s, found


#: Largest partner list per row (``2 k_max - 1``) for which :func:`select_disjoint_matrix`
#: keeps lists; beyond it (a budget spent in very few iterations) it runs the lazy greedy.
MAX_PARTNER_LIST = 63


def select_disjoint_matrix(score_matrix, n, k_max: int):
    """Exact clip-disjoint greedy on an upper-triangular ``[N, N]`` score matrix: ``n``
    times, take the best remaining entry (ties: lowest row, then lowest column) and retire
    both its clips.

    Each row keeps its best ``m = 2 k_max - 1`` partners (one ``top_k``; ties keep the
    lower column first). Before the ``t``-th take at most ``2 t <= m - 1`` clips are used,
    so a live row's best unused partner is always in its list, and each of the ``k_max``
    steps costs ``O(N m)``. The lazy greedy that this replaced needed one loop step per
    stale row, thousands per call when a few uncertain clips top every row's BALD (and,
    under ``vmap``, every run of a batch waits for the longest). Beyond
    :data:`MAX_PARTNER_LIST` the lazy greedy still runs.

    Returns:
      ``(pairs [k_max, 2], scores [k_max], found [k_max])``.
    """
    n_clips = score_matrix.shape[0]
    m = 2 * k_max - 1
    if m > MAX_PARTNER_LIST:
        return _select_disjoint_lazy(score_matrix, n, k_max)
    m = min(m, n_clips)
    top_s, top_j = jax.lax.top_k(score_matrix, m)  # [N, m], descending
    top_j = top_j.astype(jnp.int32)
    target = jnp.minimum(n, k_max)
    rows = jnp.arange(n_clips)

    def step(t, c):
        used, out_p, out_s, found = c
        avail = ~used[top_j] & (top_s > NEG_INF)  # [N, m]
        first = jnp.argmax(avail, axis=1)
        best = jnp.where(avail.any(axis=1) & ~used, top_s[rows, first], NEG_INF)
        r = jnp.argmax(best).astype(jnp.int32)
        col = top_j[r, first[r]]
        v = best[r]
        take = (t < target) & (v > NEG_INF)
        used = jnp.where(take, used.at[r].set(True).at[col].set(True), used)
        out_p = out_p.at[t].set(jnp.where(take, jnp.stack([r, col]), 0))
        out_s = out_s.at[t].set(jnp.where(take, v, NEG_INF))
        return used, out_p, out_s, found.at[t].set(take)

    init = (jnp.zeros((n_clips,), bool), jnp.zeros((k_max, 2), jnp.int32),
            jnp.full((k_max,), NEG_INF), jnp.zeros((k_max,), bool))
    _, out_p, out_s, found = jax.lax.fori_loop(0, k_max, step, init)
    return out_p, out_s, found


def _select_disjoint_lazy(score_matrix, n, k_max: int):
    """:func:`select_disjoint_matrix` for long partner lists.

    Lazy greedy: ``rowmax`` holds an upper bound of each row's best remaining entry
    (entries only ever get masked, never raised). Pop the best row; if its clip is used,
    retire the row; if its stored partner is used, recompute the row (O(N)); otherwise
    the entry is the true global maximum: take it. Same result as ``n`` full argmax
    passes over N^2 entries, at O(N) per step.

    Returns:
      ``(pairs [k_max, 2], scores [k_max], found [k_max])``.
    """
    n_clips = score_matrix.shape[0]
    rowmax0 = jnp.max(score_matrix, axis=1)
    rowarg0 = jnp.argmax(score_matrix, axis=1).astype(jnp.int32)
    target = jnp.minimum(n, k_max)

    def cond(c):
        t, _, rowmax, *_ = c
        return (t < target) & (jnp.max(rowmax) > NEG_INF)

    def body(c):
        t, used, rowmax, rowarg, out_p, out_s, found = c
        r = jnp.argmax(rowmax).astype(jnp.int32)
        col = rowarg[r]
        v = rowmax[r]
        row_dead = used[r]
        stale = ~row_dead & used[col]
        take = ~row_dead & ~stale
        row = jnp.where(used, NEG_INF, score_matrix[r])
        new_max = jnp.where(row_dead, NEG_INF, jnp.where(stale, jnp.max(row), NEG_INF))
        new_arg = jnp.where(stale, jnp.argmax(row).astype(jnp.int32), col)
        rowmax = rowmax.at[r].set(new_max)
        rowarg = rowarg.at[r].set(new_arg)
        # taking (r, col): col's own row is dead too
        rowmax = jnp.where(take, rowmax.at[col].set(NEG_INF), rowmax)
        used = jnp.where(take, used.at[r].set(True).at[col].set(True), used)
        out_p = jnp.where(take, out_p.at[t].set(jnp.stack([r, col])), out_p)
        out_s = jnp.where(take, out_s.at[t].set(v), out_s)
        found = jnp.where(take, found.at[t].set(True), found)
        return t + take.astype(jnp.int32), used, rowmax, rowarg, out_p, out_s, found

    init = (jnp.zeros((), jnp.int32), jnp.zeros((n_clips,), bool), rowmax0, rowarg0,
            jnp.zeros((k_max, 2), jnp.int32), jnp.full((k_max,), NEG_INF),
            jnp.zeros((k_max,), bool))
    _, _, _, _, out_p, out_s, found = jax.lax.while_loop(cond, body, init)
    return out_p, out_s, found


def merge_by_value(pair_values, pair_found, clip_values, clip_found, n):
    """Joint ranking of two descending slot lists: how many of the best ``n`` items of the
    union come from each list. Ties go to pairs. Both lists must be sorted descending
    (selection order); the result is a prefix of each.

    Args:
      pair_values, clip_values: ``[k_max]`` value per slot (score / cost).
      pair_found, clip_found: ``[k_max]`` bool.
      n: traced total.

    Returns:
      ``(n_pref, n_eval)`` int32 with n_pref + n_eval <= n.
    """
    k = pair_values.shape[0]
    vals = jnp.concatenate([jnp.where(pair_found, pair_values, NEG_INF),
                            jnp.where(clip_found, clip_values, NEG_INF)])
    is_pair = jnp.concatenate([jnp.ones((k,), bool), jnp.zeros((clip_values.shape[0],), bool)])
    # stable sort descending: pairs come first in the concatenation, so ties go to pairs
    order = jnp.argsort(-vals, stable=True)
    live = (jnp.arange(vals.shape[0]) < n) & (vals[order] > NEG_INF)
    n_pref = jnp.sum(live & is_pair[order]).astype(jnp.int32)
    n_eval = jnp.sum(live & ~is_pair[order]).astype(jnp.int32)
    return n_pref, n_eval
