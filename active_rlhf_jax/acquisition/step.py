"""``acquire``: one pure, fixed-shape acquisition step (pairs and clips) for the pipeline.

Its settings are ``config.acquisition`` (:class:`EffectiveAcquisition`).
"""

from __future__ import annotations

from typing import Optional

import flax.struct
import jax
import jax.numpy as jnp

from active_rlhf_jax.acquisition import allocation as A
from active_rlhf_jax.acquisition import candidates as C
from active_rlhf_jax.acquisition import epig as E
from active_rlhf_jax.acquisition import selection as SEL
from active_rlhf_jax.acquisition.choice import Choice
from active_rlhf_jax.config.acquisition import (
    AcquisitionConfig,
    EffectiveAcquisition,
    check_epig_ratings,
    check_information_units,
)


@flax.struct.dataclass
class AcquisitionResult:
    """Queries chosen by :func:`acquire` (``k_max`` slots, masks mark the real ones).

    ``n_pref``/``n_eval`` count the real slots (the quota minus any shortfall of
    candidates); ``bald_*_mean`` are mean BALD (nats) over all candidates, whatever the
    method, for logging; ``a_pref``/``a_eval`` are the values the allocation compared.
    """

    pair_idx: jax.Array  # [k_max, 2] int32 clip indices, pair_idx[:, 0] < pair_idx[:, 1]
    pair_mask: jax.Array  # [k_max] bool
    pair_score: jax.Array  # [k_max]
    clip_idx: jax.Array  # [k_max] int32
    clip_mask: jax.Array  # [k_max] bool
    clip_score: jax.Array  # [k_max]
    n_pref: jax.Array  # [] int32
    n_eval: jax.Array  # [] int32
    bald_pref_mean: jax.Array  # [] nats
    bald_eval_mean: jax.Array  # [] nats
    a_pref: jax.Array  # []
    a_eval: jax.Array  # []
    adaptive_state: A.AdaptiveState


def _pair_slots(config, key, returns, valid, n, k_max, true_returns, lp, lpm, method):
    n_clips = returns.shape[1]
    kw = dict(method=method, labelled_pairs=lp, labelled_pairs_mask=lpm)
    if config.pair_mode == "reference":
        if true_returns is None:
            raise ValueError("pair_mode='reference' needs true_returns (its min-gap filter)")
        slots = config.reference_pool_factor * k_max
        cands, stats = C.reference_pair_candidates(
            key, returns, true_returns, valid, n, slots,
            attempts=config.reference_attempts_factor * slots, min_gap=config.min_gap,
            pool_factor=config.reference_pool_factor, **kw)
    elif n_clips <= config.dense_max_pool:
        matrix, _, stats = C.dense_pair_scores(returns, valid, key, block_size=config.block_size, **kw)
        if config.selection == "disjoint":
            return SEL.select_disjoint_matrix(matrix, n, k_max), stats
        return SEL.select_topk_matrix(matrix, k_max), stats
    elif config.selection == "topk":
        cands, stats = C.blocked_topk_pairs(returns, valid, key, k_max,
                                            block_size=config.block_size, **kw)
        found = cands.scores > C.NEG_INF
        return (jnp.where(found[:, None], cands.pairs, 0), cands.scores, found), stats
    else:
        cands, stats = C.blocked_row_candidates(returns, valid, key, config.row_candidates,
                                                block_size=config.block_size, **kw)
    live = cands.scores > C.NEG_INF
    if config.selection == "disjoint":
        return SEL.select_disjoint_pairs(cands.pairs, cands.scores, live, n_clips, n, k_max), stats
    idx, top, found = SEL.select_topk(cands.scores, live, k_max)
    return (jnp.where(found[:, None], cands.pairs[idx], 0), top, found), stats


def _split(rule: str, config, n, bald_pref_mean, bald_eval_mean, c_bald, clip_valid, state,
           p_score, p_found, c_score, c_found, n_pref_cum, n_eval_cum, slot_epig):
    """One allocation rule's split of ``n`` queries when both modalities are asked.
    ``slot_epig`` is ``(pair_epig [k], clip_epig [k])`` when a rule needs it, else None.
    -> ``(n_pref, n_eval, a_pref, a_eval, adaptive state)``."""
    a_pref, a_eval = bald_pref_mean, bald_eval_mean
    if rule == "fixed":
        n_pref, n_eval = A.fixed_allocation(n, config.pref_fraction, config.min_pref)
    elif rule == "target-fraction":
        n_pref, n_eval = A.target_fraction_allocation(n, config.pref_fraction, n_pref_cum,
                                                      n_eval_cum)
    elif rule == "reference-adaptive":
        if config.adaptive_normalisation == "reference":
            a_pref, a_eval, state = A.reference_adaptive_means(
                bald_pref_mean, c_bald, clip_valid, state, config.eval_percentile)
        n_pref, n_eval = A.reference_adaptive_allocation(n, a_pref, a_eval)
    elif rule == "epig":
        e_pair, e_clip = slot_epig
        n_pref, n_eval = E.epig_split(n, e_pair / config.cost_pref, p_found,
                                      e_clip / config.cost_eval, c_found)
        # logged: mean EPIG (nats) of the slots each kind offered
        a_pref = jnp.sum(e_pair) / jnp.maximum(jnp.sum(p_found), 1)
        a_eval = jnp.sum(e_clip) / jnp.maximum(jnp.sum(c_found), 1)
    else:  # information
        n_pref, n_eval = SEL.merge_by_value(p_score / config.cost_pref, p_found,
                                            c_score / config.cost_eval, c_found, n)
    return (n_pref.astype(jnp.int32), n_eval.astype(jnp.int32),
            jnp.asarray(a_pref, jnp.float32), jnp.asarray(a_eval, jnp.float32), state)


def acquire(config: AcquisitionConfig, key, returns, pool_valid, n, k_max: int, *,
            bin_probs=None, rating_mean=None, rating_var=None, true_returns=None,
            labelled_pairs=None, labelled_pairs_mask=None, pair_excluded_clips=None,
            rated_clips=None, n_pref_cum=0, n_eval_cum=0,
            adaptive_state: Optional[A.AdaptiveState] = None,
            method: Optional[Choice] = None,
            allocation: Optional[Choice] = None,
            feedback: Optional[Choice] = None) -> AcquisitionResult:
    """Choose this iteration's preference pairs and rating clips. Pure, fixed-shape.

    Args:
      config: static :class:`EffectiveAcquisition` (``config.effective_acquisition`` of a
        pipeline config; validate it on the host first). A plain
        :class:`AcquisitionConfig` acquires both modalities with ordinal ratings and no
        min gap (the :class:`EffectiveAcquisition` defaults).
      key: PRNG key (``key_acquire``).
      returns: ``[S, N]`` posterior samples of clip returns (``ClipPosterior.returns``).
      pool_valid: ``[N]`` bool, filled ring-buffer slots.
      n: traced int, queries this iteration (clipped to ``k_max``).
      k_max: static slot count of each output.
      bin_probs: ``[S, N, K]`` (rating_likelihood "ordinal").
      rating_mean, rating_var: ``[S, N]`` (rating_likelihood "gaussian").
      true_returns: ``[N]`` true undiscounted returns (pair_mode "reference" only).
      labelled_pairs: ``[P, 2]`` int pairs already asked; ``labelled_pairs_mask [P]``.
      pair_excluded_clips: ``[N]`` bool, clips no pair may use (e.g. already in a pair).
      rated_clips: ``[N]`` bool, clips already rated (not offered for rating again).
        The three exclusions apply only with ``config.exclude_labelled``.
      n_pref_cum, n_eval_cum: queries of each modality so far ("target-fraction").
      adaptive_state: carried :class:`AdaptiveState` ("reference-adaptive").
      method, allocation: a :class:`~active_rlhf_jax.acquisition.choice.Choice` that
        replaces ``config.method`` / ``config.allocation`` (a sweep's cells that differ
        only in them share one program). Each cell's config is validated on its own, so
        allocation information, which compares the scores of pairs and clips, still sees
        BALD only. Allocation epig values the selected slots by their EPIG about
        ``config.epig_targets`` random pool pairs (``acquisition/epig.py``; ordinal
        ratings only). ``config``'s traced fields (``pref_fraction``, ``cost_pref``,
        ``cost_eval``, ``eval_percentile``) may be tracers.
      feedback: a Choice among ``"preference"``, ``"rating"`` and ``"both"`` (the
        ``run.feedback`` of the cells sharing a program); ``config`` must then acquire
        both modalities. A preference run gets ``n`` pairs and no clip, a rating run
        ``n`` clips and no pair, as a run with that kind compiled in (the same slots,
        split values and adaptive state); the allocation rule splits only the ``both``
        runs' queries. The unit checks of ``config``'s method and allocation are skipped:
        they belong to each cell, validated on its own.

    Returns:
      :class:`AcquisitionResult`.
    """
    config = EffectiveAcquisition.of(config)
    has_eval = config.rating_likelihood != "none"
    if feedback is not None:
        if not (has_eval and config.pairs):
            raise ValueError("a feedback Choice needs a config that acquires both modalities")
    else:
        check_information_units(config.method, config.allocation, has_eval and config.pairs)
        check_epig_ratings(config.allocation, config.rating_likelihood,
                           has_eval and config.pairs)
    method = config.method if method is None else method
    n_clips = returns.shape[1]
    n = jnp.minimum(jnp.asarray(n, jnp.int32), k_max)
    state = adaptive_state if adaptive_state is not None else A.AdaptiveState.create()
    key_pairs, key_clips = jax.random.split(key)
    pool_valid = pool_valid.astype(bool)
    excl = config.exclude_labelled
    pair_valid = pool_valid
    if excl and pair_excluded_clips is not None:
        pair_valid = pair_valid & ~pair_excluded_clips.astype(bool)
    lp, lpm = (labelled_pairs, labelled_pairs_mask) if excl else (None, None)
    if lp is not None and lpm is None:
        lpm = jnp.ones((lp.shape[0],), bool)

    (p_idx, p_score, p_found), stats = _pair_slots(
        config, key_pairs, returns, pair_valid, n, k_max, true_returns, lp, lpm, method)
    bald_pref_mean = stats.bald_sum / jnp.maximum(stats.count, 1.0)

    if has_eval:
        c_score_all, c_bald = C.clip_scores(
            method, key_clips, rating_likelihood=config.rating_likelihood,
            bin_probs=bin_probs, rating_mean=rating_mean, rating_var=rating_var,
            num_nodes=config.quadrature_nodes, block_size=config.clip_block_size)
        clip_valid = pool_valid
        if excl and rated_clips is not None:
            clip_valid = clip_valid & ~rated_clips.astype(bool)
        c_idx, c_score, c_found = SEL.select_topk(c_score_all, clip_valid, k_max)
        bald_eval_mean = jnp.sum(jnp.where(clip_valid, c_bald, 0.0)) / jnp.maximum(
            jnp.sum(clip_valid), 1)
    else:
        c_idx = jnp.zeros((k_max,), jnp.int32)
        c_score = jnp.full((k_max,), C.NEG_INF)
        c_found = jnp.zeros((k_max,), bool)
        clip_valid = jnp.zeros((n_clips,), bool)
        c_bald = jnp.zeros((n_clips,))
        bald_eval_mean = jnp.zeros(())

    a_pref, a_eval = bald_pref_mean, bald_eval_mean
    zero = jnp.zeros((), jnp.int32)
    # What a single-kind run's program computes: a preference run has no clip scores
    # (a_eval 0); a rating run scores the pairs for logging only.
    only_pairs = (n, zero, a_pref, jnp.zeros((), jnp.float32), state)
    only_clips = (zero, n, a_pref, a_eval, state)
    kinds = feedback.options if feedback is not None else ()
    if not has_eval:
        n_pref, n_eval, a_pref, a_eval, state = only_pairs
    elif not config.pairs:  # ratings only: the pairs above are scored for logging only
        n_pref, n_eval, a_pref, a_eval, state = only_clips
    elif feedback is not None and "both" not in kinds:
        n_pref, n_eval, a_pref, a_eval, state = feedback.pick(
            [only_pairs if k == "preference" else only_clips for k in kinds])
    else:
        rule = config.allocation if allocation is None else allocation
        rules = rule.options if isinstance(rule, Choice) else (rule,)
        slot_epig = None
        if "epig" in rules:
            slot_epig = E.slot_epig(key, returns, bin_probs, pool_valid, p_idx, p_found,
                                    c_idx, c_found, config.epig_targets)

        def split(rule):
            return _split(rule, config, n, bald_pref_mean, bald_eval_mean, c_bald, clip_valid,
                          state, p_score, p_found, c_score, c_found, n_pref_cum, n_eval_cum,
                          slot_epig)

        if isinstance(rule, Choice):
            both = rule.pick([split(r) for r in rule.options])
        else:
            both = split(rule)
        if feedback is not None:
            both = feedback.pick([only_pairs if k == "preference" else
                                  only_clips if k == "rating" else both for k in kinds])
        n_pref, n_eval, a_pref, a_eval, state = both

    slots = jnp.arange(k_max)
    pair_mask = p_found & (slots < n_pref)
    clip_mask = c_found & (slots < n_eval)
    return AcquisitionResult(
        pair_idx=jnp.where(pair_mask[:, None], p_idx, 0).astype(jnp.int32),
        pair_mask=pair_mask,
        pair_score=jnp.where(pair_mask, p_score, 0.0),
        clip_idx=jnp.where(clip_mask, c_idx, 0).astype(jnp.int32),
        clip_mask=clip_mask,
        clip_score=jnp.where(clip_mask, c_score, 0.0),
        n_pref=jnp.sum(pair_mask).astype(jnp.int32),
        n_eval=jnp.sum(clip_mask).astype(jnp.int32),
        bald_pref_mean=bald_pref_mean,
        bald_eval_mean=bald_eval_mean,
        a_pref=jnp.asarray(a_pref, jnp.float32),
        a_eval=jnp.asarray(a_eval, jnp.float32),
        adaptive_state=state,
    )
