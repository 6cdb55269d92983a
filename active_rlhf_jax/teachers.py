"""Simulated teachers: preference and rating labels from the TRUE per-step rewards.

Pure functions of a key and the true rewards ``[N, L]``; they never see the learned
model. A skipped query (``valid = False``) or a tie (label 0.5) still costs budget: the
caller counts queries, the buffers store only valid labels.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax.compat import CompatConfig
from active_rlhf_jax.config_utils import (
    ConfigError,
    check_choice,
    check_finite,
    check_in_range,
    check_nonnegative,
    check_positive,
    check_positive_int,
)


@dataclasses.dataclass(frozen=True)
class TeacherConfig:
    """Simulated-teacher settings.

    Attributes:
        pref_model: "deterministic" (the higher return wins) or "bradley_terry"
            (``P(a) = sigmoid(beta (R_a - R_b))`` on undiscounted true returns).
        beta: Bradley-Terry rationality (reference PREF_BETA = 1).
        mistake_prob: B-Pref "mistake" teacher: flip a decided label with this probability.
        myopic_gamma: B-Pref "myopic" teacher: step t of L weighs ``gamma**(L-1-t)`` in the
            preference returns (1 = not myopic).
        skip_threshold: B-Pref "skip" teacher: invalid when both returns are below it
            (None = never skip).
        equal_threshold: B-Pref "equal" teacher: label 0.5 when ``|R_a - R_b|`` is below it.
        min_gap: reference gap filter (only with ``compat.min_gap_filter``): pairs with
            undiscounted gap below it are dropped (invalid).
        rating_noise_std: sigma of the zero-mean Gaussian rating noise, in rating units
            (0 = noiseless).
        rating_beta: reference EVAL_BETA; biased noise std is ``10 * rating_beta``
            (only with ``compat.biased_rating_noise``).
        rating_range: (lo, hi) the discounted return is clipped to before binning.
        num_bins: rating bins K (ratings 0..K-1).
        gamma: discount of the rating return (reference 0.99, hard-coded there).
    """

    pref_model: str = "deterministic"
    beta: float = 1.0
    mistake_prob: float = 0.0
    myopic_gamma: float = 1.0
    skip_threshold: float | None = None
    equal_threshold: float = 0.0
    min_gap: float | None = None
    rating_noise_std: float = 1.0
    rating_beta: float = 1.0
    rating_range: tuple[float, float] = (0.0, 10.0)
    num_bins: int = 10
    gamma: float = 0.99

    def validate(self) -> None:
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
        if len(self.rating_range) != 2 or not float(self.rating_range[0]) < float(self.rating_range[1]):
            raise ConfigError("rating_range", f"must be (lo, hi) with lo < hi, got {self.rating_range!r}")
        check_positive_int("num_bins", self.num_bins)
        check_in_range("gamma", self.gamma, 0.0, 1.0)


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
    if cfg.mistake_prob > 0:
        flip = jax.random.bernoulli(k_mistake, cfg.mistake_prob, diff.shape)
        label = jnp.where(flip, 1.0 - label, label)
    if cfg.equal_threshold > 0:
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


def label_ratings(key: jax.Array, rew: jax.Array, cfg: TeacherConfig,
                  compat: CompatConfig = CompatConfig()) -> tuple[jax.Array, jax.Array]:
    """Rating labels for single clips.

    The discounted true return is clipped to ``rating_range`` and binned into 0..K-1.
    Default noise: ``round(clip(bin + N(0, sigma^2), 0, K-1))``. Under
    ``compat.biased_rating_noise`` (reference bug): ``bin + eps`` with ``eps ~ N(0, (10
    beta)^2)`` truncated to [1, 10], not rounded (labels in [1, K + 9]).

    Args:
        key: teacher key.
        rew: [N, L] true per-step rewards.

    Returns:
        (rating [N] float, valid [N] bool (all True)).
    """
    g = compute_discounted_return(rew, cfg.gamma)
    bins = compute_rating_bins(g, cfg.rating_range, cfg.num_bins).astype(jnp.float32)
    if compat.biased_rating_noise:
        sigma = 10.0 * cfg.rating_beta
        eps = sigma * jax.random.truncated_normal(key, 1.0 / sigma, 10.0 / sigma, g.shape)
        rating = bins + eps
    elif cfg.rating_noise_std > 0:
        noisy = bins + cfg.rating_noise_std * jax.random.normal(key, g.shape)
        rating = jnp.round(jnp.clip(noisy, 0.0, cfg.num_bins - 1.0))
    else:
        rating = bins
    return rating, jnp.ones(g.shape, bool)
