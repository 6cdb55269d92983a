"""Reference-compatibility switches (``--compat.*``), all off by default.

Each switch re-creates one behaviour of the reference PyTorch code that we deliberately do
differently by default. They exist so that results can be compared like for like with the
reference, not because they are recommended.
"""

from __future__ import annotations

import dataclasses

from active_rlhf_jax.config.base import ConfigError, check_bool, option


@dataclasses.dataclass(frozen=True)
class CompatConfig:
    """Reference behaviours (all False = our defaults)."""

    pref_only_unified: bool = option(
        False, help="the unified reward model trains (and validates) on preferences only; "
        "rating items are ignored (reference bug). With the Gaussian likelihood the variance "
        "head then gets no gradient and the clip BALD reads it untrained, as the "
        "reference's does.")
    undiscounted_rating_target: bool = option(
        False, help="the rating likelihood reads the undiscounted summed return instead of "
        "the discounted one (the reference's target mismatch).")
    keep_last_weights: bool = option(
        False, help="early stopping keeps the last epoch's weights instead of restoring the "
        "best validation weights.")
    reference_val_split: bool = option(
        False, help="int(0.2 n) of each added batch goes to validation (so it never grows "
        "for batches of fewer than 5), instead of one in every five labels of each modality.")
    elementwise_dropout: bool = option(
        False, help="MC-dropout posterior samples use independent masks per clip and per "
        "time step instead of one mask per sample.")
    biased_rating_noise: bool = option(
        False, help="noisy ratings add N(0, (10 beta)^2) noise truncated to [1, 10] (labels "
        "in [1, 19]) instead of zero-mean noise clipped to the bins.")
    min_gap_filter: bool = option(
        False, help="the preference teacher drops pairs whose undiscounted true return gap "
        "is below teacher.min_gap, and the initial random pairs are redrawn until they "
        "pass it.")
    budget_counts_train_only: bool = option(
        False, help="the pacing charges only training labels against the budget (validation "
        "labels are free, so 2-8% more labels are bought).")

    def validate(self) -> CompatConfig:
        for f in dataclasses.fields(self):
            check_bool(f.name, getattr(self, f.name))
        return self


def check_compat(compat: CompatConfig, rating_likelihood: str | None = None,
                 teacher_min_gap: float | None = None) -> None:
    """Cross-section checks that no single section can make on its own.

    Args:
        compat: the compat section.
        rating_likelihood: the reward model's rating likelihood ("ordinal"|"gaussian").
        teacher_min_gap: the teacher's ``min_gap`` (None when unset).

    Raises:
        ConfigError: biased rating noise (labels in [1, 19], not bins) combined with the
            ordinal likelihood, or the min-gap filter without a ``min_gap``.
    """
    compat.validate()
    if compat.biased_rating_noise and rating_likelihood == "ordinal":
        raise ConfigError(
            "compat.biased_rating_noise",
            "biased noisy ratings lie in [1, 19], outside the ordinal likelihood's bins; "
            "use reward.rating_likelihood='gaussian'",
        )
    if compat.min_gap_filter and teacher_min_gap is None:
        raise ConfigError("teacher.min_gap", "must be set when compat.min_gap_filter is on")
