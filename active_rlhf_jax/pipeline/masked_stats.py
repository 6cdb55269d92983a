"""Small masked statistics used for metrics inside jit."""

from __future__ import annotations

import jax.numpy as jnp


def masked_ranks(x, mask):
    """Ranks 0..n-1 of the valid entries of ``x [N]`` (invalid entries rank last)."""
    big = jnp.where(mask, x, jnp.inf)
    return jnp.argsort(jnp.argsort(big)).astype(jnp.float32)


def masked_pearson(x, y, mask):
    """Pearson correlation over the entries where ``mask [N]`` is True (NaN if < 2)."""
    m = mask.astype(jnp.float32)
    n = jnp.sum(m)
    mx = jnp.sum(x * m) / jnp.maximum(n, 1)
    my = jnp.sum(y * m) / jnp.maximum(n, 1)
    dx, dy = (x - mx) * m, (y - my) * m
    cov = jnp.sum(dx * dy)
    den = jnp.sqrt(jnp.sum(dx * dx) * jnp.sum(dy * dy))
    return jnp.where((n >= 2) & (den > 0), cov / jnp.where(den > 0, den, 1.0), jnp.nan)


def masked_spearman(x, y, mask):
    """Spearman rank correlation over the valid entries of ``x, y [N]`` (no tie correction).

    NaN when a valid entry of ``x`` or ``y`` is not finite: ranks would sort NaNs to the end
    in index order on both sides, and all-NaN inputs would read as a perfect 1.0.
    """
    finite = jnp.all(jnp.where(mask, jnp.isfinite(x) & jnp.isfinite(y), True))
    r = masked_pearson(masked_ranks(x, mask), masked_ranks(y, mask), mask)
    return jnp.where(finite, r, jnp.nan)


def masked_line_fit(x, y, mask):
    """Least-squares ``y = slope x + intercept`` over the entries where ``mask`` is True.

    Args:
      x, y, mask: ``[N]`` (any equal shapes; flattened).

    Returns:
      ``(slope, intercept)`` floats; NaN when fewer than 2 entries or ``x`` is constant.
    """
    m = mask.astype(jnp.float32).ravel()
    x, y = x.ravel(), y.ravel()
    n = jnp.sum(m)
    mx = jnp.sum(x * m) / jnp.maximum(n, 1)
    my = jnp.sum(y * m) / jnp.maximum(n, 1)
    dx = (x - mx) * m
    sxx = jnp.sum(dx * dx)
    ok = (n >= 2) & (sxx > 0)
    slope = jnp.where(ok, jnp.sum(dx * (y - my) * m) / jnp.where(sxx > 0, sxx, 1.0), jnp.nan)
    return slope, jnp.where(ok, my - slope * mx, jnp.nan)
