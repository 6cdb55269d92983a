"""Reward-model configuration."""

from __future__ import annotations

import dataclasses

from active_rlhf_jax.config_utils import (
    ConfigError,
    check_choice,
    check_in_range,
    check_nonnegative,
    check_positive,
    check_positive_int,
)


@dataclasses.dataclass(frozen=True)
class RewardModelConfig:
    """Reward model, likelihoods and trainer settings.

    Shape/trace-fixing (static): ``hidden``, ``probabilistic``, ``posterior``,
    ``ensemble_size``, ``num_posterior_samples``, ``rating_likelihood``, ``num_bins``,
    ``batch_size``. Scalars are plain floats.

    Attributes:
        hidden: hidden layer widths (LeakyReLU(0.01) + dropout after each).
        dropout: dropout probability (reference: 0.1; 0.4 for BALD runs; Hopper 0).
        probabilistic: add the softplus per-step variance head (Gaussian rating likelihood
            only: the ordinal likelihood has no per-step variance to train, so no head is
            built there; see ``has_variance_head``).
        posterior: "mc_dropout" (one network, samples are dropout masks) or "ensemble"
            (``ensemble_size`` bootstrap members, samples are members).
        ensemble_size: members M of the ensemble posterior.
        num_posterior_samples: default S for MC-dropout posteriors.
        rating_likelihood: "ordinal" (cumulative link with learned cut points and scale)
            or "gaussian" (reference GaussianNLL).
        ordinal_cuts: "free" (default: K-1 learned cut points and a learned scale; K link
            parameters) or "uniform" (equally spaced cut points, a learned first cut and
            one learned width, scale 1, matching the teacher's equal-width bins and putting
            the rating noise on the Bradley-Terry return scale; 2 link parameters). Uniform
            is better on the reward toy problem, not on the probe pipeline (docs/reward_model.md).
        num_bins: rating bins K (ratings are 0..K-1).
        rating_range: (lo, hi) of the clipped discounted return the teacher bins.
        gamma: discount of the rating target return.
        lr, weight_decay: Adam with coupled L2 (torch ``Adam(weight_decay=...)``).
        batch_size: minibatch size (items of either modality).
        reg_weight: lambda of the reference's unsquared return-norm regulariser.
        rating_weight: weight of the rating loss in the unified objective.
        modality_weighting: "per_item" (default; the joint likelihood: every label weighs
            the same, so the loss is (sum preference NLL + rating_weight x sum rating NLL)
            / labels) or "per_modality" (mean preference NLL + rating_weight x mean rating
            NLL: each modality weighs the same whatever its label count, so 18 preferences
            next to 102 ratings weigh as much as the ratings; on the reward toy that costs
            0.015 Spearman, docs/reward_model.md).
        init_epochs, init_patience, refit_epochs, refit_patience: early-stopping budgets.
        warmup_epochs: early stopping in the first ``fit`` that trains a fresh train state
            (``num_steps == 0``) ignores its first ``warmup_epochs`` epochs: their params are
            never restored and the patience counter starts after them (the last epoch is
            always a candidate). With a few dozen labels an epoch is one Adam step and the
            validation set a handful of labels, which often rank the barely trained network
            best: without it, toy fits restored epochs 0-33 (Spearman down to 0.17 where the
            same fit reaches 0.86; docs/reward_model.md). Refits start from trained params
            and are not affected. 0 = the reference.
    """

    hidden: tuple[int, ...] = (64, 64)
    dropout: float = 0.1
    probabilistic: bool = True
    posterior: str = "mc_dropout"
    ensemble_size: int = 5
    num_posterior_samples: int = 20
    rating_likelihood: str = "ordinal"
    ordinal_cuts: str = "free"
    num_bins: int = 10
    rating_range: tuple[float, float] = (0.0, 10.0)
    gamma: float = 0.99
    lr: float = 1e-3
    weight_decay: float = 1e-3
    batch_size: int = 64
    reg_weight: float = 1e-5
    rating_weight: float = 1.0
    modality_weighting: str = "per_item"
    init_epochs: int = 100
    init_patience: int = 10
    refit_epochs: int = 50
    refit_patience: int = 7
    warmup_epochs: int = 50

    @property
    def num_members(self) -> int:
        """Leading parameter axis size (1 for MC dropout: no axis)."""
        return self.ensemble_size if self.posterior == "ensemble" else 1

    @property
    def has_variance_head(self) -> bool:
        """Whether the network has the per-step variance head (probabilistic Gaussian)."""
        return self.probabilistic and self.rating_likelihood == "gaussian"

    def validate(self) -> None:
        if not isinstance(self.hidden, tuple) or not self.hidden:
            raise ConfigError("hidden", f"must be a non-empty tuple of ints, got {self.hidden!r}")
        for i, h in enumerate(self.hidden):
            check_positive_int(f"hidden[{i}]", h)
        check_in_range("dropout", self.dropout, 0.0, 0.95)
        if not isinstance(self.probabilistic, bool):
            raise ConfigError("probabilistic", "must be a bool")
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
        if len(self.rating_range) != 2 or not float(self.rating_range[0]) < float(self.rating_range[1]):
            raise ConfigError("rating_range", f"must be (lo, hi) with lo < hi, got {self.rating_range!r}")
        check_in_range("gamma", self.gamma, 0.0, 1.0)
        check_positive("lr", self.lr)
        check_nonnegative("weight_decay", self.weight_decay)
        check_positive_int("batch_size", self.batch_size)
        check_nonnegative("reg_weight", self.reg_weight)
        check_nonnegative("rating_weight", self.rating_weight)
        check_choice("modality_weighting", self.modality_weighting, {"per_modality", "per_item"})
        for name in ("init_epochs", "init_patience", "refit_epochs", "refit_patience"):
            check_positive_int(name, getattr(self, name))
        if not isinstance(self.warmup_epochs, int) or self.warmup_epochs < 0:
            raise ConfigError("warmup_epochs", f"must be a non-negative int, got {self.warmup_epochs!r}")
