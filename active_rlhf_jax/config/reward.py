"""The reward model, its likelihoods and its trainer (``--reward.*``).

``num_bins`` and ``gamma`` define what a rating is for both sides: the teacher cuts the
``gamma``-discounted clip return into ``num_bins`` bins (``teacher.rating_range``) and the
model's rating likelihood has ``num_bins`` classes of the same discounted return.
"""

from __future__ import annotations

import dataclasses

from active_rlhf_jax.config.base import (
    ConfigError,
    check_bool,
    check_choice,
    check_in_range,
    check_nonnegative,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_sizes,
    option,
)


@dataclasses.dataclass(frozen=True)
class RewardModelConfig:
    """Reward model, likelihoods and trainer settings."""

    hidden: tuple[int, ...] = option((64, 64), help="hidden layer widths (LeakyReLU(0.01) "
                                     "+ dropout after each).")
    dropout: float = option(0.1, help="dropout probability (reference: 0.1; 0.4 for BALD "
                            "runs; Hopper 0).")
    probabilistic: bool = option(
        True, help="add the softplus per-step variance head (Gaussian rating likelihood "
        "only: the ordinal likelihood has no per-step variance to train, so no head is "
        "built there).")
    posterior: str = option(
        "mc_dropout", help="mc_dropout (one network, samples are dropout masks) or ensemble "
        "(ensemble_size bootstrap members, samples are members).")
    ensemble_size: int = option(5, help="members M of the ensemble posterior.")
    num_posterior_samples: int = option(20, help="posterior samples S of the MC-dropout "
                                        "posterior.")
    rating_likelihood: str = option(
        "ordinal", help="ordinal (cumulative link with learned cut points and scale) or "
        "gaussian (the reference's GaussianNLL); acquisition scores ratings under it.")
    ordinal_cuts: str = option(
        "free", help="free (K-1 learned cut points and a learned scale) or uniform (equally "
        "spaced cut points: a learned first cut and one learned width, scale 1, matching "
        "the teacher's equal-width bins).")
    num_bins: int = option(10, help="rating levels K: the teacher rates 0..K-1 and the "
                           "ordinal likelihood has K classes.")
    gamma: float = option(0.99, traced=True, help="discount of a clip's rating return: the "
                          "teacher bins sum_t gamma^t r_t and the model's rating likelihood "
                          "explains the same sum.")
    lr: float = option(1e-3, traced=True, help="Adam learning rate.")
    weight_decay: float = option(1e-3, traced=True, help="coupled L2 weight decay (torch "
                                 "Adam(weight_decay=...)).")
    batch_size: int = option(64, help="minibatch size (items of either modality).")
    reg_weight: float = option(1e-5, traced=True, help="lambda of the reference's unsquared "
                               "return-norm regulariser.")
    rating_weight: float = option(1.0, traced=True, help="weight of the rating loss in the "
                                  "unified objective.")
    modality_weighting: str = option(
        "per_item", help="per_item (the joint likelihood: every label weighs the same) or "
        "per_modality (mean preference NLL + rating_weight x mean rating NLL: each modality "
        "weighs the same whatever its label count).")
    round_smoothing: float = option(
        0.0, help="relative rating scale: weight of a random-walk prior on the per-round "
        "calibration, round_smoothing x the summed squared change of round_shift and "
        "round_log_gain from each round to the next, added to every training minibatch's "
        "loss (0: each round calibrated on its own ratings alone, as before).")
    init_epochs: int = option(100, help="epoch budget of the first fit.")
    init_patience: int = option(10, help="early-stopping patience of the first fit.")
    refit_epochs: int = option(50, help="epoch budget of each refit.")
    refit_patience: int = option(7, help="early-stopping patience of each refit.")
    warmup_epochs: int = option(
        50, help="early stopping in the first fit of a fresh model ignores its first "
        "warmup_epochs epochs (never restored; patience counts after them), so a barely "
        "trained network is not kept because a handful of validation labels ranks it best; "
        "refits are not affected; 0 = the reference.")

    @property
    def num_members(self) -> int:
        """Leading parameter axis size (1 for MC dropout: no axis)."""
        return self.ensemble_size if self.posterior == "ensemble" else 1

    @property
    def has_variance_head(self) -> bool:
        """Whether the network has the per-step variance head (probabilistic Gaussian)."""
        return self.probabilistic and self.rating_likelihood == "gaussian"

    def validate(self) -> RewardModelConfig:
        check_sizes("hidden", self.hidden)
        check_in_range("dropout", self.dropout, 0.0, 0.95)
        check_bool("probabilistic", self.probabilistic)
        check_choice("posterior", self.posterior, {"mc_dropout", "ensemble"})
        check_positive_int("ensemble_size", self.ensemble_size)
        if self.posterior == "ensemble" and self.ensemble_size < 2:
            raise ConfigError("ensemble_size", "an ensemble posterior needs at least 2 members")
        check_positive_int("num_posterior_samples", self.num_posterior_samples)
        check_choice("rating_likelihood", self.rating_likelihood, {"ordinal", "gaussian"})
        check_choice("ordinal_cuts", self.ordinal_cuts, {"free", "uniform"})
        check_positive_int("num_bins", self.num_bins)
        if self.num_bins < 2:
            raise ConfigError("num_bins", "must be at least 2")
        check_in_range("gamma", self.gamma, 0.0, 1.0)
        check_positive("lr", self.lr)
        check_nonnegative("weight_decay", self.weight_decay)
        check_positive_int("batch_size", self.batch_size)
        check_nonnegative("reg_weight", self.reg_weight)
        check_nonnegative("rating_weight", self.rating_weight)
        check_choice("modality_weighting", self.modality_weighting, {"per_modality", "per_item"})
        check_nonnegative("round_smoothing", self.round_smoothing)
        for name in ("init_epochs", "init_patience", "refit_epochs", "refit_patience"):
            check_positive_int(name, getattr(self, name))
        check_nonnegative_int("warmup_epochs", self.warmup_epochs)
        return self
