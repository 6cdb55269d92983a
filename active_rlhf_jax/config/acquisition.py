"""Acquisition (``--acquisition.*``): how each iteration's queries are chosen.

:class:`AcquisitionConfig` holds the user's choices. ``acquire`` also needs three facts
that other sections hold (the rating likelihood, which modalities are asked, the min gap
of the reference pair pool); :class:`EffectiveAcquisition` adds them, and
``config.effective_acquisition(config)`` builds it from an experiment config. Every field
is static: the config is closed over by jit.
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
    option,
)

METHODS = ("bald", "random", "variance", "entropy")
# Appended, never reordered: a sweep's allocation choice is an index into this tuple.
ALLOCATIONS = ("information", "fixed", "reference-adaptive", "target-fraction", "epig")
SELECTIONS = ("disjoint", "topk")
PAIR_MODES = ("all", "reference")
RATING_LIKELIHOODS = ("ordinal", "gaussian", "none")
ADAPTIVE_NORMS = ("reference", "nats")


@dataclasses.dataclass(frozen=True)
class AcquisitionConfig:
    """Acquisition settings."""

    method: str = option(
        "bald", help="score of a candidate: bald (nats), random, variance (pairs: "
        "Var_s(R_a - R_b); clips: variance of the rating mean / expected bin), entropy "
        "(predictive entropy).")
    allocation: str = option(
        "information", help="split of each iteration's queries between pairs and clips "
        "(run.feedback=both only; a single-modality run asks every query of its modality): "
        "information (rank pairs and clips together by score / cost, take the best n), "
        "fixed (pref_fraction with min_pref), reference-adaptive (the reference's BALD-mean "
        "split), target-fraction (cumulative share of preferences -> pref_fraction), epig "
        "(buy the split of the selected pairs and clips with the most expected information "
        "about the pool's pairwise ranking per cost; ordinal ratings).")
    pref_fraction: float = option(0.5, traced=True, help="preference share of the queries "
                                  "for allocation fixed and target-fraction.")
    min_pref: int = option(2, help="lower bound on pairs for allocation fixed (reference: "
                           "2), clamped to n.")
    cost_pref: float = option(1.0, traced=True, help="labelling cost of a preference; "
                              "divides pair scores for allocation information.")
    cost_eval: float = option(1.0, traced=True, help="labelling cost of a rating; divides "
                              "clip scores for allocation information.")
    epig_targets: int = option(1024, help="random pool pairs whose preferences allocation "
                               "epig measures information about, drawn each iteration.")
    selection: str = option("disjoint", help="disjoint (greedy batch, no clip in two chosen "
                            "pairs) or topk.")
    pair_mode: str = option(
        "all", help="all (every pair i < j of the valid pool) or reference (random pool of "
        "100 x n pairs with the teacher.min_gap filter on TRUE returns; leaks ground truth).")
    exclude_labelled: bool = option(True, help="drop already-labelled pairs and already-rated "
                                    "clips from the candidates.")
    block_size: int = option(128, help="rows of the pair matrix scored at once "
                             "([S, block_size, N] floats).")
    dense_max_pool: int = option(
        4096, help="pools up to this size materialise the [N, N] score matrix (exact "
        "selection); larger pools use blocked running top-k (topk, exact) or each clip's "
        "row_candidates best partners (disjoint, approximate).")
    row_candidates: int = option(4, help="partners kept per clip for disjoint selection on "
                                 "large pools.")
    quadrature_nodes: int = option(32, help="Gauss-Hermite nodes per component (Gaussian "
                                   "rating BALD).")
    clip_block_size: int = option(128, help="clips per block for the Gaussian rating BALD.")
    reference_pool_factor: int = option(
        100, help="the reference pair pool holds the first factor x n candidate pairs "
        "(reference: 100) in factor x k_max static slots.")
    reference_attempts_factor: int = option(4, help="draws of the reference pair pool = "
                                            "attempts_factor x pool slots.")
    adaptive_normalisation: str = option(
        "reference", help="reference-adaptive split: reference (pair BALD in bits, clip BALD "
        "over its running 99th percentile) or nats.")
    eval_percentile: float = option(99.0, traced=True, help="percentile of the reference's "
                                    "running clip-BALD normaliser.")

    def validate(self) -> AcquisitionConfig:
        check_choice("method", self.method, METHODS)
        check_choice("allocation", self.allocation, ALLOCATIONS)
        check_in_range("pref_fraction", self.pref_fraction, 0.0, 1.0)
        check_nonnegative_int("min_pref", self.min_pref)
        check_positive("cost_pref", self.cost_pref)
        check_positive("cost_eval", self.cost_eval)
        check_positive_int("epig_targets", self.epig_targets)
        check_choice("selection", self.selection, SELECTIONS)
        check_choice("pair_mode", self.pair_mode, PAIR_MODES)
        check_bool("exclude_labelled", self.exclude_labelled)
        check_positive_int("block_size", self.block_size)
        check_nonnegative_int("dense_max_pool", self.dense_max_pool)
        check_positive_int("row_candidates", self.row_candidates)
        check_positive_int("quadrature_nodes", self.quadrature_nodes)
        check_positive_int("clip_block_size", self.clip_block_size)
        check_positive_int("reference_pool_factor", self.reference_pool_factor)
        check_positive_int("reference_attempts_factor", self.reference_attempts_factor)
        check_choice("adaptive_normalisation", self.adaptive_normalisation, ADAPTIVE_NORMS)
        check_in_range("eval_percentile", self.eval_percentile, 0.0, 100.0)
        # The units check (check_information_units) needs to know whether both modalities
        # are acquired: acquire() makes it, and the experiment's Config.validate.
        return self


@dataclasses.dataclass(frozen=True)
class EffectiveAcquisition(AcquisitionConfig):
    """What ``acquire`` reads: the user's settings plus three facts held elsewhere.

    The defaults (ordinal ratings, pairs asked, no gap) make a plain
    :class:`AcquisitionConfig` acquire both modalities, as standalone callers expect.
    """

    rating_likelihood: str = option(
        "ordinal", help="from reward.rating_likelihood; none when no clip is rated "
        "(run.feedback=preference).")
    pairs: bool = option(True, help="whether pairs are asked; False (run.feedback=rating) "
                         "gives every query to clips.")
    min_gap: float = option(0.0, help="from teacher.min_gap (null: 0): the reference pair "
                            "pool's minimum true-return gap.")

    @classmethod
    def of(cls, config: AcquisitionConfig) -> EffectiveAcquisition:
        """``config`` itself when it is effective already, else with the defaults."""
        if isinstance(config, cls):
            return config
        return cls(**{f.name: getattr(config, f.name) for f in dataclasses.fields(config)})

    def validate(self) -> EffectiveAcquisition:
        super().validate()
        check_choice("rating_likelihood", self.rating_likelihood, RATING_LIKELIHOODS)
        check_bool("pairs", self.pairs)
        check_nonnegative("min_gap", self.min_gap)
        if not self.pairs and self.rating_likelihood == "none":
            raise ConfigError("pairs", "no modality is acquired (pairs=False and "
                              "rating_likelihood='none')")
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


def check_epig_ratings(allocation: str, rating_likelihood: str, both_modalities: bool) -> None:
    """Allocation ``epig`` needs a rating's outcome distribution per posterior sample as
    bin probabilities (ordinal ratings); the Gaussian likelihood's continuous rating
    would need a quadrature of the mutual information that is not implemented.

    Raises:
        ConfigError naming ``allocation`` when both modalities are acquired under
        ``epig`` with a rating likelihood other than "ordinal".
    """
    if both_modalities and allocation == "epig" and rating_likelihood != "ordinal":
        raise ConfigError(
            "allocation",
            f"epig needs reward.rating_likelihood='ordinal' (got {rating_likelihood!r}): "
            "it measures a rating's information from its bin probabilities",
        )
