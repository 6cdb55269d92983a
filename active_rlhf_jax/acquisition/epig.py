"""Expected predictive information gain (EPIG) about the pool's pairwise ranking.

BALD measures what a label says about the reward model's parameters, in nats of the
label: up to ln 2 for a preference, up to ln 10 for a 10-bin rating. Splitting a budget
between the two kinds by BALD per cost (allocation ``information``) therefore compares
nats of different questions, and on HalfCheetah it bought ratings 7 to 1 and ended behind
the fixed split (docs/results.md). EPIG (Bickford Smith et al., 2023) measures every query
in one unit: the mutual information between its label ``y`` and the preference ``y*``
between two clips drawn from the pool, averaged over such target pairs,

    EPIG(q) = E_{(c, d) ~ pool} I(y_q ; y*_{cd}),

which is what the learned reward is for: PPO needs the ranking of the clips its policy
makes. Under the posterior samples (an equal-weight mixture over ``S`` samples ``s``),
``p(y, y*) = mean_s p_s(y) p_s(y*)`` and the mutual information is
``KL(p(y, y*) || p(y) p(y*))``, here computed from the covariance
``p(y, y*) - p(y) p(y*) = mean_s (p_s(y) - p(y)) (p_s(y*) - p(y*))`` so that small values
keep their relative precision in float32. Since ``y`` and ``y*`` depend on each other only
through the sample, EPIG <= BALD of the same query (data processing).

Shapes: ``S`` posterior samples, ``Q`` queries, ``M`` target pairs, ``A`` outcomes of a
query (2 for a preference, ``K`` rating bins for a rating), 2 outcomes of a target.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from active_rlhf_jax.acquisition.scores import _bernoulli_pq, _kl_terms

#: Folded into the acquisition key for the target pairs, so that drawing them leaves every
#: other stream of ``acquire`` (and so every other allocation rule) unchanged.
TARGET_KEY_SALT = 0x45504947  # "EPIG"


def pair_outcome_probs(returns, pairs):
    """Per-sample Bradley-Terry outcome probabilities of pairs.

    Args:
      returns: ``[S, N]`` posterior samples of clip returns.
      pairs: ``[P, 2]`` int clip indices.

    Returns:
      ``[S, P, 2]``: ``[..., 0]`` = P(first clip preferred) = sigmoid(R_a - R_b),
      ``[..., 1]`` its complement, each to full relative precision.
    """
    p, q = _bernoulli_pq(returns[:, pairs[:, 0]] - returns[:, pairs[:, 1]])
    return jnp.stack([p, q], axis=-1)


def draw_target_pairs(key, valid, num_targets: int):
    """``num_targets`` pairs of distinct valid pool clips, each clip uniform over the valid
    ones (with replacement across pairs).

    Args:
      key: PRNG key.
      valid: ``[N]`` bool, the filled pool slots.
      num_targets: static M.

    Returns:
      ``(pairs [M, 2] int32, mask [M] bool)``; a pair is masked when both ends are the
      same clip (and all are when fewer than 2 clips are valid).
    """
    valid = valid.astype(bool)
    n_valid = jnp.sum(valid)
    ranks = jax.random.randint(key, (num_targets, 2), 0, jnp.maximum(n_valid, 1))
    # rank r -> the index of the (r+1)-th valid slot
    pairs = jnp.searchsorted(jnp.cumsum(valid), ranks, side="right").astype(jnp.int32)
    pairs = jnp.minimum(pairs, valid.shape[0] - 1)
    mask = (pairs[:, 0] != pairs[:, 1]) & (n_valid >= 2)
    return pairs, mask


def mutual_information(query_probs, target_probs):
    """I(y_q ; y*_m) under the equal-weight mixture over samples, for every query x target.

    Args:
      query_probs: ``[S, Q, A]`` per-sample outcome probabilities of each query.
      target_probs: ``[S, M, B]`` per-sample outcome probabilities of each target.

    Returns:
      ``[Q, M]`` nats, >= 0.
    """
    s = query_probs.shape[0]
    pq = jnp.mean(query_probs, axis=0)  # [Q, A]
    pt = jnp.mean(target_probs, axis=0)  # [M, B]
    joint = jnp.einsum("sqa,smb->qmab", query_probs, target_probs) / s
    cov = jnp.einsum("sqa,smb->qmab", query_probs - pq, target_probs - pt) / s
    indep = pq[:, None, :, None] * pt[None, :, None, :]
    mi = jnp.sum(_kl_terms(joint, indep, cov), axis=(2, 3))
    return jnp.maximum(mi, 0.0)


def epig(query_probs, target_probs, target_mask):
    """Mean of :func:`mutual_information` over the unmasked targets: ``[Q]`` nats."""
    mi = mutual_information(query_probs, target_probs)
    w = target_mask.astype(mi.dtype)
    return jnp.sum(mi * w[None, :], axis=1) / jnp.maximum(jnp.sum(w), 1.0)


def epig_split(n, pair_values, pair_found, clip_values, clip_found):
    """Split ``n`` queries to maximise the summed value of what is bought.

    The pair and clip slots come in their selection order (the method's ranking, e.g.
    BALD); buying ``m`` pairs buys the first ``m`` pair slots and ``n - m`` clip slots.
    The split maximises ``sum(pair_values[:m]) + sum(clip_values[:n - m])`` over the
    ``m`` both lists can supply; ties go to pairs (the larger ``m``). When neither
    split is feasible (fewer found slots than ``n`` in all), every found slot of pairs
    is taken, then clips up to ``n``.

    Args:
      n: traced int, queries to buy (<= the slot count).
      pair_values, clip_values: ``[k]`` value per slot (EPIG / cost).
      pair_found, clip_found: ``[k]`` bool.

    Returns:
      ``(n_pref, n_eval)`` int32.
    """
    n = jnp.asarray(n, jnp.int32)
    k_p, k_c = pair_values.shape[0], clip_values.shape[0]
    zero = jnp.zeros((1,), pair_values.dtype)
    cum_p = jnp.concatenate([zero, jnp.cumsum(jnp.where(pair_found, pair_values, 0.0))])
    cum_c = jnp.concatenate([zero, jnp.cumsum(jnp.where(clip_found, clip_values, 0.0))])
    have_p = jnp.sum(pair_found).astype(jnp.int32)
    have_c = jnp.sum(clip_found).astype(jnp.int32)
    m = jnp.arange(k_p + 1, dtype=jnp.int32)
    rest = n - m
    feasible = (m <= n) & (m <= have_p) & (rest <= have_c)
    total = cum_p + cum_c[jnp.clip(rest, 0, k_c)]
    score = jnp.where(feasible, total, -jnp.inf)
    best = (k_p - jnp.argmax(score[::-1])).astype(jnp.int32)  # last maximum: ties to pairs
    fallback = jnp.minimum(n, have_p)
    n_pref = jnp.where(jnp.any(feasible), best, fallback)
    n_eval = jnp.minimum(n - n_pref, have_c)
    return n_pref, n_eval.astype(jnp.int32)


def slot_epig(key, returns, bin_probs, valid, pair_idx, pair_found, clip_idx, clip_found,
              num_targets: int):
    """EPIG of each selected pair slot and clip slot about ``num_targets`` target pairs.

    Args:
      key: PRNG key (the acquisition key; the targets use it folded with a salt).
      returns: ``[S, N]``; bin_probs: ``[S, N, K]`` ordinal rating-bin probabilities.
      valid: ``[N]`` bool pool slots the targets are drawn from.
      pair_idx: ``[k, 2]``; clip_idx: ``[k]``; *_found: ``[k]`` bool.

    Returns:
      ``(pair_epig [k], clip_epig [k])`` nats, 0 on slots not found.
    """
    targets, t_mask = draw_target_pairs(jax.random.fold_in(key, TARGET_KEY_SALT), valid,
                                        num_targets)
    t_probs = pair_outcome_probs(returns, targets)
    e_pair = epig(pair_outcome_probs(returns, pair_idx), t_probs, t_mask)
    e_clip = epig(bin_probs[:, clip_idx, :], t_probs, t_mask)
    return jnp.where(pair_found, e_pair, 0.0), jnp.where(clip_found, e_clip, 0.0)
