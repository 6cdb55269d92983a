"""Simulated teachers: preference and rating labels from the TRUE per-step rewards.

Pure functions of a key and the true rewards ``[N, L]``; they never see the learned
model. A skipped query (``valid = False``) or a tie (label 0.5) still costs budget: the
caller counts queries, the buffers store only valid labels.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax.config import CompatConfig, ConfigError, TeacherConfig


def compute_discounted_return(rew: jax.Array, gamma: float) -> jax.Array:
    """[..., L] -> [...] ``sum_t gamma**t r_t``."""
    w = jnp.asarray(gamma, jnp.float32) ** jnp.arange(rew.shape[-1], dtype=jnp.float32)
    return jnp.sum(rew * w, axis=-1)


def label_preferences(key: jax.Array, rew_a: jax.Array, rew_b: jax.Array, cfg: TeacherConfig,
                      compat: CompatConfig = CompatConfig()) -> tuple[jax.Array, jax.Array]:
    """Preference labels for clip pairs.

    Args:
        key: teacher key.
        rew_a, rew_b: [N, L] true per-step rewards of the two clips.
        cfg: teacher config; compat: ``min_gap_filter``.

    Returns:
        (label [N] float: 1 = a preferred, 0 = b, 0.5 = equal; valid [N] bool).
    """
    length = rew_a.shape[-1]
    w = jnp.asarray(cfg.myopic_gamma, jnp.float32) ** jnp.arange(length - 1, -1, -1, dtype=jnp.float32)
    ra, rb = jnp.sum(rew_a * w, -1), jnp.sum(rew_b * w, -1)
    diff = ra - rb
    k_bt, k_mistake = jax.random.split(key)
    if cfg.pref_model == "bradley_terry":
        u = jax.random.uniform(k_bt, diff.shape)
        label = (u < jax.nn.sigmoid(cfg.beta * diff)).astype(jnp.float32)
    else:
        label = jnp.where(diff > 0, 1.0, jnp.where(diff < 0, 0.0, 0.5))
    # No Python branch on the traced fields (mistake_prob, equal_threshold), so they may be
    # tracers: p = 0 flips nothing (u < 0 never holds) and |diff| < 0 never holds, so the
    # labels of the default teacher are bitwise those of an unconditional skip.
    flip = jax.random.bernoulli(k_mistake, cfg.mistake_prob, diff.shape)
    label = jnp.where(flip, 1.0 - label, label)
    label = jnp.where(jnp.abs(diff) < cfg.equal_threshold, 0.5, label)
    valid = jnp.ones(diff.shape, bool)
    if cfg.skip_threshold is not None:
        valid = valid & (jnp.maximum(ra, rb) >= cfg.skip_threshold)
    if compat.min_gap_filter:
        if cfg.min_gap is None:
            raise ConfigError("teacher.min_gap", "must be set when compat.min_gap_filter is on")
        gap = jnp.abs(jnp.sum(rew_a, -1) - jnp.sum(rew_b, -1))  # undiscounted, as reference
        valid = valid & (gap >= cfg.min_gap)
    return label, valid


def rating_edges_f32(rating_range, num_bins: int) -> np.ndarray:
    """Interior bin edges as the smallest float32 >= each float64 edge.

    ``x >= e64`` for a float32 ``x`` holds exactly when ``x >= edges_f32`` does, so binning
    in float32 matches ``np.digitize(x, np.linspace(lo, hi, K + 1)[1:-1])`` bit for bit.
    """
    e64 = np.linspace(float(rating_range[0]), float(rating_range[1]), num_bins + 1)[1:-1]
    e32 = e64.astype(np.float32)
    below = e32.astype(np.float64) < e64
    e32[below] = np.nextafter(e32[below], np.float32(np.inf))
    return e32


def compute_rating_bins(ret: jax.Array, rating_range, num_bins: int) -> jax.Array:
    """Clip to the range and bin: [...] -> [...] int32 in 0..K-1 (== numpy.digitize)."""
    lo, hi = np.float32(rating_range[0]), np.float32(rating_range[1])
    gc = jnp.clip(ret, lo, hi)
    edges = jnp.asarray(rating_edges_f32(rating_range, num_bins))
    return jnp.sum(gc[..., None] >= edges, axis=-1).astype(jnp.int32)


def compute_relative_bins(ret: jax.Array, lo: jax.Array, hi: jax.Array,
                          num_bins: int) -> jax.Array:
    """K equal bins over a traced range: ``clip(floor(K (ret - lo) / (hi - lo)), 0, K-1)``.

    Args:
        ret: [...] returns; lo, hi: [] the range (``hi <= lo``: every return in bin 0).

    Returns:
        [...] int32 in 0..K-1 (``ret = hi`` is the top bin).
    """
    width = hi - lo
    pos = jnp.where(width > 0, (ret - lo) / jnp.where(width > 0, width, 1.0), 0.0)
    return jnp.clip(jnp.floor(pos * num_bins), 0, num_bins - 1).astype(jnp.int32)


def pool_rating_range(rew: jax.Array, valid: jax.Array, gamma: float):
    """The relative scale of ``rating_scale="pool"``: the lowest and highest
    ``gamma``-discounted true return of the valid clips.

    Args:
        rew: [P, L] true per-step rewards; valid: [P] bool.

    Returns:
        (lo [], hi []) (both 0 for an empty pool).
    """
    g = compute_discounted_return(rew, gamma)
    lo = jnp.min(jnp.where(valid, g, jnp.inf))
    hi = jnp.max(jnp.where(valid, g, -jnp.inf))
    any_valid = jnp.any(valid)
    return jnp.where(any_valid, lo, 0.0), jnp.where(any_valid, hi, 0.0)


class PoolRanks(NamedTuple):
    """The relative scale of ``rating_scale="pool-rank"``: the pool's discounted true
    clip returns ``[P]`` and which clips are valid ``[P]`` bool."""

    returns: jax.Array
    valid: jax.Array


def pool_rank_scale(rew: jax.Array, valid: jax.Array, gamma: float) -> PoolRanks:
    """``rating_scale="pool-rank"``: the pool's ``gamma``-discounted true returns.

    Args:
        rew: [P, L] true per-step rewards; valid: [P] bool.
    """
    return PoolRanks(compute_discounted_return(rew, gamma), valid)


def compute_rank_bins(ret: jax.Array, ranks: PoolRanks, num_bins: int) -> jax.Array:
    """K equal bins of the pool's empirical CDF: ``min(K c // n, K-1)`` with ``c`` the
    number of valid pool clips whose return is strictly below ``ret`` and ``n`` the number
    of valid clips (integer arithmetic, so exact). A clip of the pool is in bin
    ``floor(K rank / n)``: with ``n >= K`` each bin holds ``n / K`` of the pool's clips
    (tied returns share the lowest of their bins). Every return is in bin 0 when the pool
    is empty.

    Args:
        ret: [N] returns to rate; ranks: the pool (:func:`pool_rank_scale`).

    Returns:
        [N] int32 in 0..K-1.
    """
    below = jnp.sum(ranks.valid[None, :] & (ranks.returns[None, :] < ret[:, None]), axis=1)
    n = jnp.maximum(jnp.sum(ranks.valid), 1)
    return jnp.minimum((num_bins * below) // n, num_bins - 1).astype(jnp.int32)


def label_ratings(key: jax.Array, rew: jax.Array, cfg: TeacherConfig,
                  compat: CompatConfig = CompatConfig(), *, num_bins: int,
                  gamma: float, scale=None) -> tuple[jax.Array, jax.Array]:
    """Rating labels for single clips.

    The ``gamma``-discounted true return is clipped to ``cfg.rating_range`` and binned
    into 0..K-1 (``num_bins`` = K); with ``scale = (lo, hi)`` (``rating_scale="pool"``) the
    K equal bins span that range instead (:func:`compute_relative_bins`); with ``scale`` a
    :class:`PoolRanks` (``rating_scale="pool-rank"``) the bins are the pool's K quantile
    ranges (:func:`compute_rank_bins`). K and gamma are the reward model's
    (``reward.num_bins``, ``reward.gamma``): the model explains what the teacher rates.
    Default noise: ``round(clip(bin + N(0, sigma^2), 0, K-1))``. Under
    ``compat.biased_rating_noise`` (reference bug): ``bin + eps`` with ``eps ~ N(0, (10
    beta)^2)`` truncated to [1, 10], not rounded (labels in [1, K + 9]).

    Args:
        key: teacher key.
        rew: [N, L] true per-step rewards.
        num_bins, gamma: the rating scale's bins K and discount.
        scale: None (``cfg.rating_range``), traced ``(lo [], hi [])`` or :class:`PoolRanks`.

    Returns:
        (rating [N] float, valid [N] bool (all True)).
    """
    g = compute_discounted_return(rew, gamma)
    if scale is None:
        bins = compute_rating_bins(g, cfg.rating_range, num_bins)
    elif isinstance(scale, PoolRanks):
        bins = compute_rank_bins(g, scale, num_bins)
    else:
        bins = compute_relative_bins(g, scale[0], scale[1], num_bins)
    bins = bins.astype(jnp.float32)
    if compat.biased_rating_noise:
        sigma = 10.0 * cfg.rating_beta
        eps = sigma * jax.random.truncated_normal(key, 1.0 / sigma, 10.0 / sigma, g.shape)
        rating = bins + eps
    else:
        # Unbranched on the traced rating_noise_std: sigma = 0 adds exactly 0 to an integer
        # bin already inside [0, K-1], so clip and round give the bin back bitwise.
        noisy = bins + cfg.rating_noise_std * jax.random.normal(key, g.shape)
        rating = jnp.round(jnp.clip(noisy, 0.0, num_bins - 1.0))
    return rating, jnp.ones(g.shape, bool)
