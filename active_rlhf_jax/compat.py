"""Reference-compatibility switches (the ``compat`` config group), all off by default.

Each flag re-creates one behaviour of the reference PyTorch code (``seed_spec.md`` §19)
that we deliberately do differently by default. They exist so that results can be
compared like for like with the reference, not because they are recommended.
"""

from __future__ import annotations

import dataclasses

from active_rlhf_jax.config_utils import ConfigError


@dataclasses.dataclass(frozen=True)
class CompatConfig:
    """Reference behaviours (all False = our defaults).

    Attributes:
        pref_only_unified: the unified reward model trains (and validates) on preferences
            only; rating items are ignored (reference bug §5.4 / §19.1.1). With the
            Gaussian likelihood the variance head then gets no gradient and the clip BALD
            reads it untrained, as the reference's does.
        undiscounted_rating_target: the rating likelihood reads the undiscounted summed
            return instead of the discounted one (reference target mismatch §19.1.4).
        keep_last_weights: early stopping keeps the last epoch's weights instead of
            restoring the best validation weights (§5.2).
        reference_val_split: ``int(0.2 n)`` of each added batch goes to validation
            (so it never grows for batches of fewer than 5), instead of one in every five
            labels of each modality (§4).
        elementwise_dropout: MC-dropout posterior samples use independent masks per clip
            and per time step instead of one mask per sample (§19.1.11).
        biased_rating_noise: noisy ratings add N(0, (10 beta)^2) noise truncated to
            [1, 10] (labels in [1, 19]) instead of zero-mean noise clipped to the bins (§3.2).
        min_gap_filter: the preference teacher drops pairs whose undiscounted true
            return gap is below ``TeacherConfig.min_gap`` (§3.1), and the initial random
            pairs are redrawn until they pass it (``sample_random_preferences``, §6.5).
        budget_counts_train_only: the pacing charges only training labels against the
            budget (validation labels are free, so 2-8% more labels are bought, §19.1.8).
    """

    pref_only_unified: bool = False
    undiscounted_rating_target: bool = False
    keep_last_weights: bool = False
    reference_val_split: bool = False
    elementwise_dropout: bool = False
    biased_rating_noise: bool = False
    min_gap_filter: bool = False
    budget_counts_train_only: bool = False

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), bool):
                raise ConfigError(f.name, f"must be a bool, got {getattr(self, f.name)!r}")


def check_compat(compat: CompatConfig, rating_likelihood: str | None = None,
                 teacher_min_gap: float | None = None) -> None:
    """Cross-group checks that no single config can make on its own.

    Args:
        compat: the compat group.
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
