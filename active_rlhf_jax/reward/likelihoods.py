"""Feedback likelihoods: Bradley-Terry preferences, ordinal and Gaussian ratings.

All functions are elementwise over leading batch dimensions and numerically stable at
extreme inputs (no overflow for huge return gaps, finite gradients everywhere).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# Minimum gap between consecutive ordinal cut points (keeps them strictly ordered).
CUT_GAP_EPS = 1e-4
# The link parameters (cut points, log scale) are stored divided by this factor, so Adam
# moves them this many times faster than network weights: with few labels an epoch is a
# single step, and a link that moves at 1e-3 per step cannot follow the network's return
# scale (which the preference loss keeps changing), so the two modalities would fight.
LINK_PARAM_SCALE = 10.0
# Gaussian rating variance floor (torch GaussianNLLLoss eps).
VAR_FLOOR = 1e-6


def compute_preference_nll(ret_a: jax.Array, ret_b: jax.Array, label: jax.Array) -> jax.Array:
    """Bradley-Terry negative log-likelihood per pair.

    P(a preferred) = sigmoid(R_a - R_b); ``label`` is 1 (a preferred), 0 (b) or 0.5 (tie).

    Args:
        ret_a, ret_b: [...] summed predicted returns of the two clips.
        label: [...] in [0, 1].

    Returns:
        [...] ``-(y log s(d) + (1-y) log s(-d))`` with ``d = R_a - R_b`` (BCE with logits).
    """
    d = ret_a - ret_b
    return -(label * jax.nn.log_sigmoid(d) + (1.0 - label) * jax.nn.log_sigmoid(-d))


def compute_return_norm_reg(ret: jax.Array, mask: jax.Array) -> jax.Array:
    """Unsquared L2 norm of the batch vector of valid returns (reference regulariser).

    Args:
        ret: [B] predicted clip returns; mask: [B] bool/float validity.

    Returns:
        [] ``sqrt(sum_i mask_i ret_i^2)`` with a zero (not NaN) gradient at 0.
    """
    sq = jnp.sum(jnp.where(mask, ret, 0.0) ** 2)
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def compute_cutpoints(cut_first: jax.Array, cut_incr_raw: jax.Array, num_bins: int) -> jax.Array:
    """Ordered cut points ``c_0 < c_1 < ... < c_{K-2}`` from unconstrained params.

    Args:
        cut_first: [] first cut point.
        cut_incr_raw: [K-2] raw increments (free cut points), or [1]: one increment shared
            by every gap (uniform cut points, the teacher's equal-width bins).
        num_bins: K.

    Returns:
        [K-1] ``c_0 = s first, c_k = c_{k-1} + softplus(s raw_k) + eps`` with
        ``s = LINK_PARAM_SCALE``.
    """
    first = LINK_PARAM_SCALE * cut_first
    incr = jax.nn.softplus(LINK_PARAM_SCALE * cut_incr_raw) + CUT_GAP_EPS
    incr = jnp.broadcast_to(incr, (num_bins - 2,))
    return jnp.concatenate([first[None], first + jnp.cumsum(incr)])


def init_cut_params(num_bins: int, uniform: bool = False) -> tuple[jax.Array, jax.Array]:
    """Unit-spaced cut points centred on 0, stored: (cut_first [], cut_incr_raw [K-2] or [1]).

    ``uniform`` keeps a single shared increment (shape [1]) instead of K-2 free ones.
    """
    first = -(num_bins - 2) / 2.0
    raw = np.log(np.expm1(1.0 - CUT_GAP_EPS))  # softplus(raw) + eps = 1
    n = 1 if uniform else num_bins - 2
    return (jnp.asarray(first / LINK_PARAM_SCALE, jnp.float32),
            jnp.full((n,), raw / LINK_PARAM_SCALE, jnp.float32))


def compute_link_scale(log_scale: jax.Array) -> jax.Array:
    """Positive scale of the ordinal link from its stored parameter: exp(s log_scale)."""
    return jnp.exp(LINK_PARAM_SCALE * log_scale)


def compute_ordinal_log_probs(z: jax.Array, cuts: jax.Array) -> jax.Array:
    """Cumulative-logit bin log-probabilities.

    ``P(y <= k) = sigmoid(c_k - z)``, so ``P(y = k) = s(c_k - z) - s(c_{k-1} - z)``.
    The middle bins use ``log(s(a) - s(b)) = log s(a) + log s(-b) + log(-expm1(b - a))``,
    which is stable for any ``z`` because ``b - a = c_{k-1} - c_k`` does not depend on it.

    Args:
        z: [...] scaled rating-target returns; cuts: [K-1] ordered cut points.

    Returns:
        [..., K] log-probabilities (logsumexp = 0 up to rounding).
    """
    zc = cuts - z[..., None]  # [..., K-1]
    first = jax.nn.log_sigmoid(zc[..., :1])
    last = jax.nn.log_sigmoid(-zc[..., -1:])
    a, b = zc[..., 1:], zc[..., :-1]
    mid = jax.nn.log_sigmoid(a) + jax.nn.log_sigmoid(-b) + jnp.log(-jnp.expm1(b - a))
    return jnp.concatenate([first, mid, last], axis=-1)


def rating_to_bin(rating: jax.Array, num_bins: int) -> jax.Array:
    """Float rating -> int32 bin index in 0..K-1 (rounded, clipped)."""
    return jnp.clip(jnp.round(rating), 0, num_bins - 1).astype(jnp.int32)


def compute_ordinal_nll(z: jax.Array, cuts: jax.Array, rating: jax.Array) -> jax.Array:
    """Ordinal NLL ``-log P(y = rating)``: z [...], cuts [K-1], rating [...] -> [...]."""
    logp = compute_ordinal_log_probs(z, cuts)
    k = rating_to_bin(rating, cuts.shape[-1] + 1)
    return -jnp.take_along_axis(logp, k[..., None], axis=-1)[..., 0]


def compute_gaussian_rating_nll(mean: jax.Array, var: jax.Array, rating: jax.Array) -> jax.Array:
    """Reference GaussianNLLLoss (full=False): ``0.5 [log V + (M - y)^2 / V]``, V >= 1e-6.

    Args:
        mean, var, rating: [...] predicted return, its variance, and the rating label.

    Returns:
        [...] per-item NLL (no 0.5 log 2 pi constant).
    """
    v = jnp.maximum(var, VAR_FLOOR)
    return 0.5 * (jnp.log(v) + (mean - rating) ** 2 / v)


def compute_gaussian_bin_probs(mean: jax.Array, var: jax.Array, num_bins: int) -> jax.Array:
    """Bin probabilities of N(mean, var) over unit bins centred on 0..K-1 (open ends).

    Args:
        mean, var: [...].

    Returns:
        [..., K] with ``P(k) = Phi(k + 1/2) - Phi(k - 1/2)``, first/last bins open-ended.
    """
    sd = jnp.sqrt(jnp.maximum(var, VAR_FLOOR))
    edges = jnp.arange(num_bins - 1, dtype=jnp.float32) + 0.5  # [K-1]
    cdf = jax.scipy.stats.norm.cdf((edges - mean[..., None]) / sd[..., None])
    lower = jnp.concatenate([jnp.zeros_like(cdf[..., :1]), cdf], axis=-1)
    upper = jnp.concatenate([cdf, jnp.ones_like(cdf[..., :1])], axis=-1)
    return jnp.maximum(upper - lower, 0.0)
