"""The simulated teacher (``--teacher.*``): how true returns become labels.

The rating scale is held here once: ``rating_range`` (which the teacher alone reads); the
number of bins and the rating discount are the reward model's (``reward.num_bins``,
``reward.gamma``) and the labelling functions take them from there, so the model always
explains the labels it is given.
"""

from __future__ import annotations

import dataclasses

from active_rlhf_jax.config.base import (
    check_choice,
    check_finite,
    check_in_range,
    check_nonnegative,
    check_positive,
    check_range_pair,
    option,
)


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
    """Simulated-teacher settings."""

    pref_model: str = option(
        "deterministic", help="deterministic (the higher return wins) or bradley_terry "
        "(P(a) = sigmoid(beta (R_a - R_b)) on undiscounted true returns).")
    beta: float = option(1.0, traced=True,
                         help="Bradley-Terry rationality (reference PREF_BETA = 1).")
    mistake_prob: float = option(0.0, traced=True, help="B-Pref mistake teacher: flip a "
                                 "decided label with this probability.")
    myopic_gamma: float = option(
        1.0, traced=True, help="B-Pref myopic teacher: step t of L weighs gamma**(L-1-t) in "
        "the preference returns (1 = not myopic).")
    skip_threshold: float | None = option(
        None, help="B-Pref skip teacher: a pair is invalid when both returns are below it "
        "(null = never skip).")
    equal_threshold: float = option(
        0.0, traced=True, help="B-Pref equal teacher: label 0.5 when |R_a - R_b| is below it.")
    min_gap: float | None = option(
        None, help="the reference's minimum undiscounted true-return gap of a pair (null = "
        "none): with compat.min_gap_filter the teacher drops pairs below it and the initial "
        "random pairs are redrawn until they pass it; acquisition.pair_mode=reference "
        "builds its candidate pool from pairs above it (null: 0).")
    rating_noise_std: float = option(
        1.0, traced=True, help="sigma of the zero-mean Gaussian rating noise, in rating "
        "units (0 = noiseless).")
    rating_beta: float = option(
        1.0, traced=True, help="reference EVAL_BETA: the biased noise std is 10 x rating_beta "
        "(only with compat.biased_rating_noise).")
    rating_range: tuple[float, float] = option(
        (0.0, 10.0), help="(lo, hi) the discounted clip return is clipped to before it is cut "
        "into reward.num_bins equal bins (rating_scale=fixed).")
    rating_scale: str = option(
        "fixed", help="fixed (the clip's discounted return on rating_range's bins) or pool "
        "(a relative scale: each labelling round's bins span the lowest to the highest "
        "discounted true return of the clips in the pool then, and the reward model learns "
        "one affine calibration of its rating target per round; ordinal likelihood only) "
        "or pool-rank (relative too, but each round's bins are the pool's K quantile "
        "ranges, so every bin holds a K-th of the pool's clips however skewed their "
        "returns are).")

    def validate(self) -> TeacherConfig:
        check_choice("pref_model", self.pref_model, {"deterministic", "bradley_terry"})
        check_positive("beta", self.beta)
        check_in_range("mistake_prob", self.mistake_prob, 0.0, 0.5)
        check_in_range("myopic_gamma", self.myopic_gamma, 0.0, 1.0)
        if self.skip_threshold is not None:
            check_finite("skip_threshold", self.skip_threshold)
        check_nonnegative("equal_threshold", self.equal_threshold)
        if self.min_gap is not None:
            check_nonnegative("min_gap", self.min_gap)
        check_nonnegative("rating_noise_std", self.rating_noise_std)
        check_positive("rating_beta", self.rating_beta)
        check_range_pair("rating_range", self.rating_range)
        check_choice("rating_scale", self.rating_scale, {"fixed", "pool", "pool-rank"})
        return self
