"""Active query selection: BALD scores, candidate pairs/clips, batch selection, allocation.

Everything is pure and fixed-shape so it runs inside the jitted RLHF iteration. See
``docs/acquisition.md``.
"""

from active_rlhf_jax.acquisition.allocation import (
    AdaptiveState,
    fixed_allocation,
    reference_adaptive_allocation,
    reference_adaptive_means,
    target_fraction_allocation,
)
from active_rlhf_jax.acquisition.candidates import (
    PairCandidates,
    PairStats,
    blocked_row_candidates,
    blocked_topk_pairs,
    clip_scores,
    dense_pair_scores,
    reference_pair_candidates,
)
from active_rlhf_jax.acquisition.scores import (
    categorical_bald,
    clip_predictive_entropy,
    expected_bin_variance,
    gaussian_mixture_entropy,
    gaussian_rating_bald,
    ordinal_rating_bald,
    pair_predictive_entropy,
    predictive_entropy,
    preference_bald,
    random_scores,
    return_difference_variance,
)
from active_rlhf_jax.acquisition.selection import (
    merge_by_value,
    select_disjoint_matrix,
    select_disjoint_pairs,
    select_topk,
    select_topk_matrix,
)
from active_rlhf_jax.acquisition.step import AcquisitionResult, acquire

__all__ = [name for name in dir() if not name.startswith("_")]
