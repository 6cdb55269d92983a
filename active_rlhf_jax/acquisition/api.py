"""``acquire``: one pure, fixed-shape acquisition step (pairs and clips) for the pipeline."""

from __future__ import annotations

import dataclasses
from typing import Optional

import flax.struct
import jax
import jax.numpy as jnp

from active_rlhf_jax.acquisition import allocation as A
from active_rlhf_jax.acquisition import candidates as C
from active_rlhf_jax.acquisition import selection as SEL
from active_rlhf_jax.config_utils import (
    ConfigError,
    check_choice,
    check_in_range,
    check_nonnegative,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
)

METHODS = ("bald", "random", "variance", "entropy")
ALLOCATIONS = ("information", "fixed", "reference-adaptive", "target-fraction")
SELECTIONS = ("disjoint", "topk")
PAIR_MODES = ("all", "reference")
RATING_LIKELIHOODS = ("ordinal", "gaussian", "none")
ADAPTIVE_NORMS = ("reference", "nats")


@dataclasses.dataclass(frozen=True)
class AcquisitionConfig:
    """Acquisition settings. All fields are static (the config is closed over by jit).

    Attributes:
      method: score of a candidate: "bald" (nats), "random", "variance" (pairs:
        Var_s(R_a - R_b); clips: variance of the rating mean / expected bin), "entropy"
        (predictive entropy).
      allocation: "information" (rank pairs and clips together by score / cost, take the
        best n), "fixed" (pref_fraction with min_pref), "reference-adaptive" (seed_spec
        §7), "target-fraction" (cumulative share of preferences -> pref_fraction).
      pref_fraction: preference share for "fixed" and "target-fraction".
      min_pref: lower bound on pairs for "fixed" (reference: 2), clamped to n.
      cost_pref, cost_eval: labelling cost per query, divides scores for "information".
      selection: "disjoint" (greedy batch, no clip in two chosen pairs) or "topk".
      pair_mode: "all" (every pair i < j of the valid pool) or "reference" (random pool of
        100 * n pairs with the min-gap filter on TRUE returns; leaks ground truth).
      exclude_labelled: drop already-labelled pairs / rated clips given to ``acquire``.
      rating_likelihood: "ordinal" (bin_probs), "gaussian" (rating_mean/var) or "none"
        (preferences only).
      block_size: rows of the pair matrix scored at once ([S, block_size, N] floats).
      dense_max_pool: pools up to this size materialise the [N, N] score matrix (exact
        selection); larger pools use blocked running top-k (topk, exact) or each clip's
        row_candidates best partners (disjoint, approximate).
      row_candidates: partners kept per clip for disjoint selection on large pools.
      quadrature_nodes: Gauss–Hermite nodes per component (Gaussian rating BALD).
      clip_block_size: clips per block for the Gaussian rating BALD.
      min_gap: reference pair mode: min |true return difference| of a candidate pair.
      reference_pool_factor: the reference pool holds the first factor * n candidate pairs
        (reference: 100) in factor * k_max static slots.
      reference_attempts_factor: draws = attempts_factor * factor * k_max.
      adaptive_normalisation: "reference" (a_p in bits, a_e over running P99) or "nats".
      eval_percentile: percentile of the reference's running normaliser (99).
    """

    method: str = "bald"
    allocation: str = "information"
    pref_fraction: float = 0.5
    min_pref: int = 2
    cost_pref: float = 1.0
    cost_eval: float = 1.0
    selection: str = "disjoint"
    pair_mode: str = "all"
    exclude_labelled: bool = True
    rating_likelihood: str = "ordinal"
    block_size: int = 128
    dense_max_pool: int = 4096
    row_candidates: int = 4
    quadrature_nodes: int = 32
    clip_block_size: int = 128
    min_gap: float = 0.0
    reference_pool_factor: int = 100
    reference_attempts_factor: int = 4
    adaptive_normalisation: str = "reference"
    eval_percentile: float = 99.0

    def validate(self) -> "AcquisitionConfig":
        check_choice("method", self.method, METHODS)
        check_choice("allocation", self.allocation, ALLOCATIONS)
        check_in_range("pref_fraction", self.pref_fraction, 0.0, 1.0)
        check_nonnegative_int("min_pref", self.min_pref)
        check_positive("cost_pref", self.cost_pref)
        check_positive("cost_eval", self.cost_eval)
        check_choice("selection", self.selection, SELECTIONS)
        check_choice("pair_mode", self.pair_mode, PAIR_MODES)
        if not isinstance(self.exclude_labelled, bool):
            raise ConfigError("exclude_labelled", f"must be a bool, got {self.exclude_labelled!r}")
        check_choice("rating_likelihood", self.rating_likelihood, RATING_LIKELIHOODS)
        check_positive_int("block_size", self.block_size)
        check_nonnegative_int("dense_max_pool", self.dense_max_pool)
        check_positive_int("row_candidates", self.row_candidates)
        check_positive_int("quadrature_nodes", self.quadrature_nodes)
        check_positive_int("clip_block_size", self.clip_block_size)
        check_nonnegative("min_gap", self.min_gap)
        check_positive_int("reference_pool_factor", self.reference_pool_factor)
        check_positive_int("reference_attempts_factor", self.reference_attempts_factor)
        check_choice("adaptive_normalisation", self.adaptive_normalisation, ADAPTIVE_NORMS)
        check_in_range("eval_percentile", self.eval_percentile, 0.0, 100.0)
        # The units check (check_information_units) needs to know whether both modalities
        # are acquired: acquire() makes it, and the pipeline's Config.validate (run.feedback).
        return self


def check_information_units(method: str, allocation: str, both_modalities: bool) -> None:
    """The ``information`` allocation ranks pair and clip scores against each other, which
    means something only in a common unit: BALD in nats. Pair variance (return units^2)
    against rating variance (bins^2), or a binary predictive entropy against a 10-bin or a
    differential one, would split the queries by an arbitrary scale.

    Raises:
        ConfigError naming ``method`` when both modalities are acquired under
        ``information`` with a score other than "bald".
    """
    if both_modalities and allocation == "information" and method != "bald":
        raise ConfigError(
            "method",
            f"{method!r} scores of pairs and clips are not in a common unit (nats); "
            "allocation='information' compares them, so use method='bald' or another allocation",
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


def _pair_slots(config, key, returns, valid, n, k_max, true_returns, lp, lpm):
    n_clips = returns.shape[1]
    kw = dict(method=config.method, labelled_pairs=lp, labelled_pairs_mask=lpm)
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


def acquire(config: AcquisitionConfig, key, returns, pool_valid, n, k_max: int, *,
            bin_probs=None, rating_mean=None, rating_var=None, true_returns=None,
            labelled_pairs=None, labelled_pairs_mask=None, pair_excluded_clips=None,
            rated_clips=None, n_pref_cum=0, n_eval_cum=0,
            adaptive_state: Optional[A.AdaptiveState] = None) -> AcquisitionResult:
    """Choose this iteration's preference pairs and rating clips. Pure, fixed-shape.

    Args:
      config: static :class:`AcquisitionConfig` (validate it on the host first).
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

    Returns:
      :class:`AcquisitionResult`.
    """
    check_information_units(config.method, config.allocation, config.rating_likelihood != "none")
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
        config, key_pairs, returns, pair_valid, n, k_max, true_returns, lp, lpm)
    bald_pref_mean = stats.bald_sum / jnp.maximum(stats.count, 1.0)

    has_eval = config.rating_likelihood != "none"
    if has_eval:
        c_score_all, c_bald = C.clip_scores(
            config.method, key_clips, rating_likelihood=config.rating_likelihood,
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
    if not has_eval:
        n_pref, n_eval = n, jnp.zeros((), jnp.int32)
    elif config.allocation == "fixed":
        n_pref, n_eval = A.fixed_allocation(n, config.pref_fraction, config.min_pref)
    elif config.allocation == "target-fraction":
        n_pref, n_eval = A.target_fraction_allocation(n, config.pref_fraction, n_pref_cum, n_eval_cum)
    elif config.allocation == "reference-adaptive":
        if config.adaptive_normalisation == "reference":
            a_pref, a_eval, state = A.reference_adaptive_means(
                bald_pref_mean, c_bald, clip_valid, state, config.eval_percentile)
        n_pref, n_eval = A.reference_adaptive_allocation(n, a_pref, a_eval)
    else:  # information
        n_pref, n_eval = SEL.merge_by_value(p_score / config.cost_pref, p_found,
                                            c_score / config.cost_eval, c_found, n)

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
