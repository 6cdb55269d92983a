"""Clip-level posterior quantities shared by the trainer and acquisition.

Per-step outputs ``mu, var [..., L]`` of the network become clip returns, the rating
target and rating-bin probabilities. The rating likelihood reads the *discounted* summed
mean (``compat.undiscounted_rating_target``: the undiscounted one), the preference
likelihood the undiscounted sum, so both modalities constrain the same per-step reward.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from active_rlhf_jax.config import CompatConfig, RewardModelConfig
from active_rlhf_jax.reward import likelihoods as lik

# Rating variance of a model without a variance head: N(G, 1/2) has NLL (G - y)^2 + const,
# the reference's MSE loss.
NON_PROBABILISTIC_VAR = 0.5


@struct.dataclass
class ClipPosterior:
    """Posterior samples (s) of clip (n) quantities. See docs/CONTRACTS.md.

    Attributes:
        returns: [S, N] summed per-step mean reward (the Bradley-Terry utility).
        variances: [S, N] summed per-step variance of the variance head, or None where
            the model has none (``RewardModelConfig.has_variance_head``: the ordinal
            likelihood and non-probabilistic models build no head, so nothing untrained
            is reported). Under ``compat.pref_only_unified`` the head exists but, as in the
            reference, is never trained (seed_spec §19.1 #1).
        disc_returns: [S, N] discounted (gamma) summed mean.
        bin_probs: [S, N, K] rating-bin probabilities under the configured likelihood.
        rating_mean: [S, N] gaussian: the likelihood's mean (rating-target return);
            ordinal: mean bin index under ``bin_probs``.
        rating_var: [S, N] gaussian: the likelihood's variance; ordinal: bin variance.
    """

    returns: jax.Array
    variances: jax.Array
    disc_returns: jax.Array
    bin_probs: jax.Array
    rating_mean: jax.Array
    rating_var: jax.Array


def rating_weights(length: int, gamma: float, undiscounted: bool) -> jax.Array:
    """[L] per-step weights of the rating target: ``gamma**t`` or ones."""
    if undiscounted:
        return jnp.ones((length,), jnp.float32)
    return jnp.asarray(gamma, jnp.float32) ** jnp.arange(length, dtype=jnp.float32)


def compute_rating_target(mu: jax.Array, var: jax.Array, cfg: RewardModelConfig,
                          compat: CompatConfig) -> tuple[jax.Array, jax.Array]:
    """Rating-target return and its variance.

    Args:
        mu, var: [..., L] per-step mean and variance.

    Returns:
        (G [...], V [...]): ``G = sum_t w_t mu_t``, ``V = sum_t w_t^2 var_t`` (independent
        steps; equals the reference's ``sum_t var_t`` under the undiscounted compat flag);
        without a variance head V = 1/2, the Gaussian whose NLL is the reference's MSE
        ``(G - y)^2`` up to a constant (see :func:`compute_rating_nll`).
    """
    w = rating_weights(mu.shape[-1], cfg.gamma, compat.undiscounted_rating_target)
    g = jnp.sum(mu * w, axis=-1)
    v = (jnp.sum(var * w**2, axis=-1) if cfg.has_variance_head
         else jnp.full_like(g, NON_PROBABILISTIC_VAR))
    return g, v


def ordinal_link(params: dict, cfg: RewardModelConfig) -> tuple[jax.Array, jax.Array]:
    """Scale and cut points of the ordinal link: ``P(y <= k) = sigmoid(c_k - scale G)``.

    ``ordinal_cuts="free"`` (default): K-1 free cut points and a learned scale
    ``exp(log_scale)``. ``"uniform"``: equal-width cut points (learned first cut and one
    learned width) and scale 1, so the rating noise unit is the Bradley-Terry unit and the
    learned width is the link's scale (bins per unit of return).

    Args:
        params: one member's variables (``RewardNet``'s ``{"params": {...}}``).

    Returns:
        (scale [], cuts [K-1]).
    """
    p = params["params"]
    cuts = lik.compute_cutpoints(p["cut_first"], p["cut_incr_raw"], cfg.num_bins)
    if cfg.ordinal_cuts == "uniform":
        return jnp.ones((), jnp.float32), cuts
    return lik.compute_link_scale(p["log_scale"]), cuts


def calibrate_rounds(params: dict, z: jax.Array, rounds) -> jax.Array:
    """Per-round affine calibration of the ordinal link's input (relative rating scale).

    Under a relative ``teacher.rating_scale`` ("pool", "pool-rank") each labelling round r
    rates on its own bins, so the model learns ``z_r = exp(s g_r) z + s b_r`` (``g =
    round_log_gain``, ``b = round_shift``, both [R] and 0 at init, ``s =
    LINK_PARAM_SCALE``) with shared cut points. On "pool" a round's bins are an affine map
    of another's, so this calibration is exact; on "pool-rank" they follow the pool's
    quantiles, which an affine map only approximates from round to round.

    Args:
        params: one member's variables; without ``round_shift`` (a fixed scale) ``z`` is
            returned as is.
        z: [...] scaled rating targets; rounds: [...] int32 round of each, or None.

    Returns:
        [...] calibrated z.
    """
    p = params["params"]
    if rounds is None or "round_shift" not in p:
        return z
    gain = jnp.exp(lik.LINK_PARAM_SCALE * p["round_log_gain"][rounds])
    return gain * z + lik.LINK_PARAM_SCALE * p["round_shift"][rounds]


def compute_rating_nll(params: dict, mu: jax.Array, var: jax.Array, rating: jax.Array,
                       cfg: RewardModelConfig, compat: CompatConfig,
                       rounds: jax.Array | None = None) -> jax.Array:
    """Per-clip rating NLL under the configured likelihood.

    Args:
        params: one member's variables (read by the ordinal likelihood only: ``cut_first``,
            ``cut_incr_raw``, and ``log_scale`` for free cut points, under ``"params"``).
        mu, var: [B, L]; rating: [B] float labels.
        rounds: [B] int32 labelling rounds (relative rating scale: :func:`calibrate_rounds`).

    Returns:
        [B] negative log-likelihoods (Gaussian without a variance head: squared errors).
    """
    g, v = compute_rating_target(mu, var, cfg, compat)
    if cfg.rating_likelihood == "gaussian":
        if not cfg.has_variance_head:
            # The reference's non-probabilistic loss, MSE(G, y) = (G - y)^2 per item (not
            # the half of it a unit-variance Gaussian NLL would give).
            return (g - rating) ** 2
        return lik.compute_gaussian_rating_nll(g, v, rating)
    scale, cuts = ordinal_link(params, cfg)
    return lik.compute_ordinal_nll(calibrate_rounds(params, scale * g, rounds), cuts, rating)


def compute_clip_posterior(params: dict, mu: jax.Array, var: jax.Array,
                           cfg: RewardModelConfig, compat: CompatConfig,
                           rating_round: jax.Array | None = None) -> ClipPosterior:
    """One posterior sample's clip quantities.

    Args:
        params: that sample's member params (likelihood parameters).
        mu, var: [N, L] per-step outputs under that sample.
        rating_round: [] int32 round whose calibration the rating-bin probabilities use
            (relative rating scale), or None.

    Returns:
        ClipPosterior with fields of shape [N] / [N, K] (vmapped to [S, ...] by callers).
    """
    w_disc = rating_weights(mu.shape[-1], cfg.gamma, False)
    g, v = compute_rating_target(mu, var, cfg, compat)
    k = cfg.num_bins
    if cfg.rating_likelihood == "gaussian":
        probs = lik.compute_gaussian_bin_probs(g, v, k)
        r_mean, r_var = g, jnp.maximum(v, lik.VAR_FLOOR)
    else:
        scale, cuts = ordinal_link(params, cfg)
        z = calibrate_rounds(params, scale * g, rating_round)
        probs = jnp.exp(lik.compute_ordinal_log_probs(z, cuts))
        bins = jnp.arange(k, dtype=jnp.float32)
        r_mean = probs @ bins
        r_var = jnp.maximum(probs @ bins**2 - r_mean**2, 0.0)
    return ClipPosterior(
        returns=jnp.sum(mu, -1),
        variances=jnp.sum(var, -1) if cfg.has_variance_head else None,
        disc_returns=jnp.sum(mu * w_disc, -1),
        bin_probs=probs,
        rating_mean=r_mean,
        rating_var=r_var,
    )
