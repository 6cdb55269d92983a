"""Allocation ``epig``: EPIG about the pool's pairwise ranking (acquisition/epig.py)."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.acquisition import epig as E
from active_rlhf_jax.acquisition import scores as SC
from active_rlhf_jax.acquisition.step import acquire
from active_rlhf_jax.config import ConfigError
from active_rlhf_jax.config.acquisition import ALLOCATIONS, AcquisitionConfig, EffectiveAcquisition


def _mi_oracle(q, t):
    """float64 I(y_q; y*) from the enumerated joint: q [S, Q, A], t [S, M, B] -> [Q, M]."""
    q = np.asarray(q, np.float64)
    t = np.asarray(t, np.float64)
    joint = np.einsum("sqa,smb->qmab", q, t) / q.shape[0]
    indep = q.mean(0)[:, None, :, None] * t.mean(0)[None, :, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(joint > 0, joint * np.log(joint / indep), 0.0)
    return terms.sum(axis=(2, 3))


def _simplex(rng, shape, scale=1.0):
    x = rng.normal(size=shape) * scale
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_mutual_information_hand_cases():
    # two samples; the query and the target agree sample by sample: I = H = ln 2
    q = jnp.array([[[1.0, 0.0]], [[0.0, 1.0]]])  # [S=2, Q=1, A=2]
    np.testing.assert_allclose(float(E.mutual_information(q, q)[0, 0]), math.log(2), rtol=1e-6)
    # the target does not depend on the sample: nothing to learn about it
    t = jnp.array([[[0.3, 0.7]], [[0.3, 0.7]]])
    assert float(E.mutual_information(q, t)[0, 0]) == 0.0
    # query certain given the sample (0/1), target 0.9 / 0.1 per sample:
    # p(y=0, y*=0) = 0.45, (0, 1) 0.05, (1, 0) 0.05, (1, 1) 0.45: I = ln 2 - H_b(0.1)
    t = jnp.array([[[0.9, 0.1]], [[0.1, 0.9]]])
    want = math.log(2) + 0.1 * math.log(0.1) + 0.9 * math.log(0.9)
    np.testing.assert_allclose(float(E.mutual_information(q, t)[0, 0]), want, rtol=1e-5)


def test_mutual_information_matches_a_float64_oracle_and_is_bounded_by_bald():
    rng = np.random.default_rng(0)
    s = 16
    q_pairs = _simplex(rng, (s, 12, 2), 2.0)
    q_clips = _simplex(rng, (s, 12, 10), 1.5)
    t = _simplex(rng, (s, 40, 2), 3.0)
    for q in (q_pairs, q_clips):
        got = np.asarray(E.mutual_information(jnp.float32(q), jnp.float32(t)))
        want = _mi_oracle(q, t)
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-7)
        # data processing: y and y* meet only through the sample, so I(y; y*) <= BALD(y)
        bald = np.asarray(SC.categorical_bald(jnp.float32(q)))
        assert np.all(got <= bald[:, None] + 1e-6)
        assert got.max() > 1e-3  # not a vacuous bound


def test_small_information_keeps_its_relative_precision():
    """Near-agreeing samples (I ~ 1e-8): the covariance form keeps the digits that
    p log(p / p_a p_b) summed naively in float32 would lose."""
    rng = np.random.default_rng(1)
    base_q = _simplex(rng, (1, 6, 2))
    base_t = _simplex(rng, (1, 9, 2))
    eps = 1e-4
    dq = rng.normal(size=(8, 6, 1)) * eps
    dt = rng.normal(size=(8, 9, 1)) * eps
    q = base_q + np.concatenate([dq, -dq], -1)
    t = base_t + np.concatenate([dt, -dt], -1)
    got = np.asarray(E.mutual_information(jnp.float32(q), jnp.float32(t)))
    want = _mi_oracle(q, t)
    assert want.max() < 1e-7
    np.testing.assert_allclose(got, want, rtol=0.05, atol=1e-11)


def test_epig_averages_over_unmasked_targets():
    rng = np.random.default_rng(2)
    q = jnp.float32(_simplex(rng, (8, 3, 2), 2.0))
    t = jnp.float32(_simplex(rng, (8, 5, 2), 2.0))
    mask = jnp.array([True, False, True, True, False])
    mi = np.asarray(E.mutual_information(q, t))
    np.testing.assert_allclose(np.asarray(E.epig(q, t, mask)), mi[:, [0, 2, 3]].mean(1), rtol=1e-6)


def test_target_pairs_are_distinct_valid_clips_drawn_uniformly():
    valid = jnp.zeros(50, bool).at[jnp.array([3, 7, 11, 20, 49])].set(True)
    pairs, mask = E.draw_target_pairs(jax.random.PRNGKey(0), valid, 20_000)
    pairs, mask = np.asarray(pairs), np.asarray(mask)
    assert set(np.unique(pairs)) == {3, 7, 11, 20, 49}
    np.testing.assert_array_equal(mask, pairs[:, 0] != pairs[:, 1])
    # each end uniform over the 5 valid clips: 8,000 draws of each clip of 40,000,
    # binomial sd 80, so +-400 is a 5-sigma band
    counts = np.bincount(pairs.ravel(), minlength=50)[[3, 7, 11, 20, 49]]
    assert np.all(np.abs(counts - 8_000) < 400), counts
    # the same clip at both ends 1 time in 5
    assert abs((~mask).mean() - 0.2) < 0.02
    _, none = E.draw_target_pairs(jax.random.PRNGKey(0), jnp.zeros(50, bool).at[4].set(True), 8)
    assert not np.any(np.asarray(none))


@pytest.mark.parametrize("case, want", [
    # pairs 0.5, 0.4, 0.1; clips 0.45, 0.2, 0.15; n = 3: best = 2 pairs + 1 clip (1.35)
    ((3, [0.5, 0.4, 0.1], [0.45, 0.2, 0.15]), (2, 1)),
    # n = 2: 0.5 + 0.45 (1 + 1) beats 0.9 (2 + 0) and 0.65 (0 + 2)
    ((2, [0.5, 0.4, 0.1], [0.45, 0.2, 0.15]), (1, 1)),
    # n = 2 with equal lists: one of each (1.0) beats two of either (0.8)
    ((2, [0.5, 0.3, 0.0], [0.5, 0.3, 0.0]), (1, 1)),
    # n = 1, a tie (0.5 against 0.5) goes to pairs
    ((1, [0.5, 0.2, 0.0], [0.5, 0.1, 0.0]), (1, 0)),
    ((0, [0.5, 0.4, 0.1], [0.45, 0.2, 0.15]), (0, 0)),
])
def test_epig_split_hand_cases(case, want):
    n, pv, cv = case
    found = jnp.ones(3, bool)
    got = E.epig_split(n, jnp.float32(pv), found, jnp.float32(cv), found)
    assert (int(got[0]), int(got[1])) == want


def test_epig_split_respects_what_each_list_can_supply():
    pv = jnp.float32([0.9, 0.8, 0.7, 0.6])
    cv = jnp.float32([0.1, 0.1, 0.1, 0.1])
    two = jnp.array([True, True, False, False])
    # pairs are worth more, but only 2 were found: 2 + 2
    assert tuple(map(int, E.epig_split(4, pv, two, cv, jnp.ones(4, bool)))) == (2, 2)
    # n = 4, 2 pairs and 1 clip found: infeasible, so everything found is bought
    one = jnp.array([True, False, False, False])
    assert tuple(map(int, E.epig_split(4, pv, two, cv, one))) == (2, 1)
    # an exhaustive check against brute force over random values
    rng = np.random.default_rng(3)
    for _ in range(50):
        pv, cv = rng.uniform(size=6), rng.uniform(size=6)
        hp, hc, n = rng.integers(0, 7), rng.integers(0, 7), rng.integers(0, 7)
        pf, cf = np.arange(6) < hp, np.arange(6) < hc
        best = max(((pv[:m].sum() + cv[:n - m].sum(), m) for m in range(n + 1)
                    if m <= hp and n - m <= hc), default=None)
        got = tuple(map(int, E.epig_split(n, jnp.float32(pv), jnp.array(pf),
                                          jnp.float32(cv), jnp.array(cf))))
        if best is None:
            assert got == (min(n, hp), min(n - min(n, hp), hc))
        else:
            tied = [m for m in range(n + 1) if m <= hp and n - m <= hc
                    and abs(pv[:m].sum() + cv[:n - m].sum() - best[0]) < 1e-5]
            assert got == (max(tied), n - max(tied))


def _posterior(seed, s=12, n=60, k=10):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    returns = 2.0 * jax.random.normal(k1, (s, n)) + jnp.linspace(-3, 3, n)
    bin_probs = jax.nn.softmax(1.5 * jax.random.normal(k2, (s, n, k)), axis=-1)
    return returns, bin_probs, jnp.ones(n, bool).at[-5:].set(False)


def test_acquire_with_epig_buys_the_split_its_slots_are_worth():
    returns, bin_probs, valid = _posterior(0)
    cfg = AcquisitionConfig(allocation="epig", epig_targets=256, cost_eval=1.5).validate()
    key = jax.random.PRNGKey(5)
    out = acquire(cfg, key, returns, valid, 6, 8, bin_probs=bin_probs)
    # the same slots and values, recomputed from the module's parts
    info = acquire(dataclasses.replace(cfg, allocation="information"), key, returns, valid, 8, 8,
                   bin_probs=bin_probs)
    e_pair, e_clip = E.slot_epig(key, returns, bin_probs, valid, info.pair_idx, info.pair_mask,
                                 info.clip_idx, info.clip_mask, 256)
    want = E.epig_split(6, e_pair, info.pair_mask, e_clip / 1.5, info.clip_mask)
    assert (int(out.n_pref), int(out.n_eval)) == tuple(map(int, want))
    assert int(out.n_pref) + int(out.n_eval) == 6
    np.testing.assert_array_equal(np.asarray(out.pair_idx)[:int(out.n_pref)],
                                  np.asarray(info.pair_idx)[:int(out.n_pref)])
    np.testing.assert_array_equal(np.asarray(out.clip_idx)[:int(out.n_eval)],
                                  np.asarray(info.clip_idx)[:int(out.n_eval)])
    # logged: the mean EPIG of each kind's offered slots; positive and below their BALD
    assert 0 < float(out.a_pref) <= float(jnp.max(info.pair_score)) + 1e-6
    assert 0 < float(out.a_eval) <= float(jnp.max(info.clip_score)) + 1e-6


def test_an_allocation_choice_with_epig_equals_epig_compiled_in():
    from active_rlhf_jax.acquisition.choice import Choice

    returns, bin_probs, valid = _posterior(1)
    key = jax.random.PRNGKey(2)
    options = ("fixed", "epig")
    for rule in options:
        want = acquire(AcquisitionConfig(allocation=rule, epig_targets=128), key, returns,
                       valid, 7, 8, bin_probs=bin_probs)
        choice = Choice(options, jnp.int32(ALLOCATIONS.index(rule)), ALLOCATIONS)
        got = acquire(AcquisitionConfig(allocation="fixed", epig_targets=128), key, returns,
                      valid, 7, 8, bin_probs=bin_probs, allocation=choice)
        for name in ("pair_idx", "pair_mask", "clip_idx", "clip_mask", "a_pref", "a_eval"):
            np.testing.assert_array_equal(np.asarray(getattr(got, name)),
                                          np.asarray(getattr(want, name)), err_msg=rule + name)


def test_epig_refuses_gaussian_ratings_naming_the_field():
    from active_rlhf_jax.config import replace
    from configs.presets import get_preset

    with pytest.raises(ConfigError, match="allocation"):
        returns, bin_probs, valid = _posterior(0)
        acquire(EffectiveAcquisition(allocation="epig", rating_likelihood="gaussian"),
                jax.random.PRNGKey(0), returns, valid, 4, 4, rating_mean=returns,
                rating_var=jnp.ones_like(returns))
    cfg = replace(get_preset("smoke+bald-fixed"), **{"acquisition.allocation": "epig",
                                                   "reward.rating_likelihood": "gaussian"})
    with pytest.raises(ConfigError, match=r"acquisition\.allocation"):
        cfg.validate()
    with pytest.raises(ConfigError, match=r"acquisition\.epig_targets"):
        replace(get_preset("smoke"), **{"acquisition.epig_targets": 0}).validate()
