"""Statistics over seeds: mean with a Student-t 95% CI, and rliable's aggregate metrics.

Confidence interval of a mean over seeds (used everywhere in plots and tables)::

    mean ± t_{0.975, n-1} · s / sqrt(n),    s = sample std (ddof = 1)

We use the t quantile rather than the reference project's 1.96 because experiments have
few seeds (3-10): with n = 5 the t quantile is 2.776, and 1.96 would make the interval
about 30% too narrow. With fewer than two finite values the interval is undefined and
reported as NaN (drawn as no band, printed as ``n/a``). NaNs (metrics logged as
``null``, or seeds that stopped early) are ignored per point.

Aggregates across runs follow Agarwal et al. (2021) as computed by the ``rliable``
package: the interquartile mean (IQM) with percentile stratified-bootstrap 95% CIs and
performance profiles (fraction of runs with a score above a threshold tau).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
from scipy import stats as sps

CI_LEVEL = 0.95
DEFAULT_BOOTSTRAP_REPS = 2000
DEFAULT_BOOTSTRAP_SEED = 0


def compute_mean_ci(
    values: np.ndarray, axis: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean and Student-t 95% CI along ``axis``, ignoring NaNs.

    Args:
        values: e.g. ``[n_seeds, n_points]`` (any shape; NaN marks a missing value).
        axis: the seed axis.

    Returns:
        ``(mean, lo, hi, n)`` each with ``axis`` removed; ``lo``/``hi`` are NaN where fewer
        than two finite values exist, ``mean`` is NaN where none exist.
    """
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    n = finite.sum(axis=axis)
    safe_n = np.maximum(n, 1)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    mean = np.where(n > 0, total / safe_n, np.nan)
    dev = np.where(finite, x - np.expand_dims(mean, axis), 0.0)
    var = (dev**2).sum(axis=axis) / np.maximum(n - 1, 1)
    tq = sps.t.ppf(0.5 + CI_LEVEL / 2, np.maximum(n - 1, 1))
    half = np.where(n >= 2, tq * np.sqrt(var) / np.sqrt(safe_n), np.nan)
    return mean, mean - half, mean + half, n


#: Fewer seeds than this: figures draw each seed instead of a band or whisker (an
#: interval from two values says little: a t-interval with 2 seeds is 12.7 standard
#: errors wide and swamps every curve).
MIN_SEEDS_FOR_BAND = 3


def compute_mean_bootstrap_ci(
    values: np.ndarray,
    reps: int = DEFAULT_BOOTSTRAP_REPS,
    seed: int = DEFAULT_BOOTSTRAP_SEED,
    value_range: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and its percentile-bootstrap 95% CI, for bounded quantities.

    Seeds are the resampled units: one index matrix ``[reps, S]`` (``S`` draws with
    replacement, ``numpy.random.default_rng(seed)``) is applied to every column, and the
    CI is the 2.5 / 97.5 percentiles of the resampled means (NaN-ignoring). A mean of
    resampled values lies between their minimum and maximum, so the interval never
    leaves the range of the data, hence never the quantity's range (Spearman in
    [-1, 1], BALD >= 0, a count in [0, its maximum]); it is clipped to ``value_range``
    on top, against rounding. Student-t intervals, symmetric by construction, left it.

    Args:
        values: ``[S, P]`` (seeds x points), NaN = missing.
        reps, seed: bootstrap resamples and their RNG seed.
        value_range: (lo, hi) the quantity cannot leave.

    Returns:
        ``(mean, lo, hi, n)`` each ``[P]``; ``lo``/``hi`` NaN where fewer than
        :data:`MIN_SEEDS_FOR_BAND` finite values exist.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    finite = np.isfinite(x)
    n = finite.sum(axis=0)
    with np.errstate(all="ignore"):
        mean = np.where(n > 0, np.where(finite, x, 0.0).sum(axis=0) / np.maximum(n, 1), np.nan)
    lo = np.full(x.shape[1], np.nan)
    hi = np.full(x.shape[1], np.nan)
    band = n >= MIN_SEEDS_FOR_BAND
    if band.any() and reps > 0:
        idx = np.random.default_rng(seed).integers(0, x.shape[0], size=(reps, x.shape[0]))
        sample = x[idx][:, :, band]  # [reps, S, P']
        ok = np.isfinite(sample)
        cnt = ok.sum(axis=1)
        with np.errstate(all="ignore"):
            means = np.where(cnt > 0, np.where(ok, sample, 0.0).sum(axis=1) / cnt, np.nan)
        lo[band] = np.nanpercentile(means, 100 * (1 - CI_LEVEL) / 2, axis=0)
        hi[band] = np.nanpercentile(means, 100 * (1 + CI_LEVEL) / 2, axis=0)
    lo = np.where(np.isfinite(lo), np.clip(lo, *value_range), np.nan)
    hi = np.where(np.isfinite(hi), np.clip(hi, *value_range), np.nan)
    return mean, lo, hi, n


@contextlib.contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    """Seed NumPy's global RNG for a block and restore it afterwards.

    rliable 1.2.0 draws its bootstrap indices with ``np.random.choice`` (the global RNG):
    ``StratifiedBootstrap.update_indices`` ignores ``random_state``, and
    ``create_performance_profile`` has no such argument. Seeding the global RNG around
    the call is the only way to make its CIs reproducible; the caller's state is restored.
    """
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


def _scores_2d(scores: np.ndarray) -> np.ndarray:
    """``[n_runs]`` or ``[n_runs, n_tasks]`` -> finite ``[n_runs', n_tasks]``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim == 1:
        s = s[:, None]
    return s[np.all(np.isfinite(s), axis=1)]


def compute_iqm_ci(
    scores: np.ndarray,
    reps: int = DEFAULT_BOOTSTRAP_REPS,
    seed: int = DEFAULT_BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """IQM and its stratified-bootstrap 95% CI, as ``rliable`` computes them.

    Args:
        scores: ``[n_seeds]`` or ``[n_seeds, n_tasks]`` final scores of one method.
        reps: bootstrap replications.
        seed: seed of NumPy's global RNG during the call (re-seeded per call, so each run's
            CI does not depend on the other runs); see :func:`_seeded_global_numpy`.

    Returns:
        ``(iqm, lo, hi)``; NaN when no finite scores exist (CI NaN below two seeds).
    """
    from rliable import library as rly
    from rliable import metrics

    s = _scores_2d(scores)
    if s.shape[0] == 0:
        return float("nan"), float("nan"), float("nan")
    point = float(metrics.aggregate_iqm(s))
    if s.shape[0] < 2:
        return point, float("nan"), float("nan")
    with _seeded_global_numpy(seed):
        est, ci = rly.get_interval_estimates(
            {"m": s},
            lambda x: np.array([metrics.aggregate_iqm(x)]),
            reps=reps,
            confidence_interval_size=CI_LEVEL,
        )
    return float(est["m"][0]), float(ci["m"][0, 0]), float(ci["m"][1, 0])


def compute_performance_profile(
    score_dict: dict[str, np.ndarray],
    taus: np.ndarray,
    reps: int = DEFAULT_BOOTSTRAP_REPS,
    seed: int = DEFAULT_BOOTSTRAP_SEED,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Run-score distributions (performance profiles) with 95% bootstrap bands (rliable).

    Args:
        score_dict: label -> ``[n_seeds]`` or ``[n_seeds, n_tasks]`` final scores.
        taus: thresholds ``[K]``.

    Returns:
        label -> ``(fraction [K], lo [K], hi [K])``: fraction of runs with score > tau.
    """
    from rliable import library as rly

    out = {}
    for label, scores in score_dict.items():
        s = _scores_2d(scores)
        if s.shape[0] == 0:
            nan = np.full(len(taus), np.nan)
            out[label] = (nan, nan, nan)
            continue
        with _seeded_global_numpy(seed):
            prof, cis = rly.create_performance_profile(
                {label: s},
                np.asarray(taus, np.float64),
                reps=reps,
                confidence_interval_size=CI_LEVEL,
            )
        out[label] = (np.asarray(prof[label]), np.asarray(cis[label][0]), np.asarray(cis[label][1]))
    return out
