"""Splitting ``n`` queries of one iteration between preferences and ratings.

All rules are pure and traceable (``n`` and the cumulative counts may be traced) and
return ``(n_pref, n_eval)`` int32 with ``n_pref + n_eval == n``. The ``information`` rule
lives in :func:`active_rlhf_jax.acquisition.selection.merge_by_value` because it needs the
selected candidates themselves.
"""

from __future__ import annotations

import math

import flax.struct
import jax.numpy as jnp

LN2 = math.log(2.0)


@flax.struct.dataclass
class AdaptiveState:
    """Carried state of the reference-compatible adaptive split.

    ``eval_bald_high`` is the reference's running maximum of the P99 of raw clip BALD
    (``_eval_bald_high``, initialised to 1e-8, never decreases; seed_spec §6.3).
    """

    eval_bald_high: jnp.ndarray

    @classmethod
    def create(cls):
        return cls(eval_bald_high=jnp.asarray(1e-8, jnp.float32))


def fixed_allocation(n, pref_fraction=0.5, min_pref=2):
    """Fixed quota: ``n_pref = clip(max(min_pref, floor(f * n)), 0, n)``.

    The reference (f = 0.5, min_pref = 2) computes ``max(2, floor(n / 2))`` without the
    clamp, so n = 1 asks for 2 pairs (seed_spec §7, §19.1 #9); here n = 1 gives 1 pair,
    n = 0 gives nothing. n = 3 -> (2, 1) as in the reference. ``floor`` gets a 1e-4
    tolerance so f * n that is an integer in decimal (0.3 * 10) but just below it in
    float32 is not rounded down.
    """
    n = jnp.asarray(n, jnp.int32)
    base = jnp.floor(pref_fraction * n.astype(jnp.float32) + 1e-4).astype(jnp.int32)
    n_pref = jnp.clip(jnp.maximum(base, min_pref), 0, n)
    return n_pref, n - n_pref


def reference_adaptive_allocation(n, a_p, a_e):
    """The reference's proportional split (seed_spec §7), in its order of cases:

    * a_p <= 0 and a_e <= 0: n_pref = floor(n / 2);
    * a_e <= 0: n_pref = n;
    * a_p <= 0: n_pref = 0;
    * else n_pref = round(n * a_p / (a_p + a_e)), rounding halves to even like Python's
      ``round`` (jnp.round does the same);

    then clamp to [0, n]. Memoryless: no smoothing and no minimum per modality.
    """
    n = jnp.asarray(n, jnp.int32)
    a_p = jnp.asarray(a_p, jnp.float32)
    a_e = jnp.asarray(a_e, jnp.float32)
    denom = jnp.where(a_p + a_e > 0, a_p + a_e, 1.0)
    prop = jnp.round(n.astype(jnp.float32) * a_p / denom).astype(jnp.int32)
    n_pref = jnp.where(
        (a_p <= 0) & (a_e <= 0), n // 2,
        jnp.where(a_e <= 0, n, jnp.where(a_p <= 0, 0, prop)))
    n_pref = jnp.clip(n_pref, 0, n)
    return n_pref, n - n_pref


def reference_adaptive_means(pair_bald_mean_nats, clip_bald, clip_valid, state,
                             percentile=99.0):
    """The reference's two averages: ``a_p`` = mean pair BALD in bits over the candidate
    pool; ``a_e`` = mean over scored clips of clip BALD / h, with
    ``h = max(h, P_percentile(clip BALD over scored clips))`` carried in ``state``.

    Args:
      pair_bald_mean_nats: ``[]`` mean pair BALD (nats) over the candidates, 0 if none.
      clip_bald: ``[N]`` clip BALD (nats). clip_valid: ``[N]`` bool, the scored clips.
      state: :class:`AdaptiveState`.

    Returns:
      ``(a_p, a_e, new_state)``.
    """
    a_p = pair_bald_mean_nats / LN2
    any_clip = jnp.any(clip_valid)
    p99 = jnp.nanpercentile(jnp.where(clip_valid, clip_bald, jnp.nan), percentile)
    high = jnp.where(any_clip, jnp.maximum(state.eval_bald_high, p99), state.eval_bald_high)
    count = jnp.maximum(jnp.sum(clip_valid), 1)
    a_e = jnp.sum(jnp.where(clip_valid, clip_bald / high, 0.0)) / count
    return a_p, a_e, state.replace(eval_bald_high=high)


def target_fraction_allocation(n, fraction, n_pref_cum, n_eval_cum):
    """Steer the cumulative share of preferences towards ``fraction``:
    ``n_pref = clip(round(f * (N_cum + n) - P_cum), 0, n)`` with ``N_cum`` all queries
    so far and ``P_cum`` the preference queries so far (round half to even).
    """
    n = jnp.asarray(n, jnp.int32)
    total = (jnp.asarray(n_pref_cum) + jnp.asarray(n_eval_cum) + n).astype(jnp.float32)
    want = jnp.round(fraction * total - jnp.asarray(n_pref_cum, jnp.float32)).astype(jnp.int32)
    n_pref = jnp.clip(want, 0, n)
    return n_pref, n - n_pref
