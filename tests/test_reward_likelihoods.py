"""Likelihood math: hand-computed cases, symmetry and stability at extreme inputs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.reward import likelihoods as lik


def test_bradley_terry_antisymmetry():
    ra = jnp.array([0.3, -2.0, 5.0, 1e4])
    rb = jnp.array([1.1, 4.0, 5.0, -1e4])
    for y in (0.0, 0.5, 1.0, 0.3):
        a = lik.compute_preference_nll(ra, rb, jnp.full(4, y))
        b = lik.compute_preference_nll(rb, ra, jnp.full(4, 1.0 - y))
        np.testing.assert_array_equal(a, b)


def test_bradley_terry_no_overflow_at_huge_gaps():
    ra, rb = jnp.array([1e6, 1e30]), jnp.array([-1e6, 0.0])
    right = lik.compute_preference_nll(ra, rb, jnp.ones(2))
    wrong = lik.compute_preference_nll(ra, rb, jnp.zeros(2))
    np.testing.assert_array_equal(right, 0.0)
    # Wrong label: -log sigmoid(-d) = d exactly for huge d (linear, not inf).
    np.testing.assert_allclose(wrong, [2e6, 1e30], rtol=1e-6)
    g = jax.grad(lambda r: lik.compute_preference_nll(r, -r, 0.0))(jnp.float32(1e6))
    assert np.isfinite(g) and g == pytest.approx(2.0)


def test_bradley_terry_hand_values():
    # d = 2 - 0 = 2, y = 1: -log sigmoid(2) = log(1 + e^-2) = log(1.135335) = 0.126928.
    assert float(lik.compute_preference_nll(2.0, 0.0, 1.0)) == pytest.approx(0.126928, abs=1e-6)
    # Tie label: 0.5 (-log s(0)) * 2 = log 2 = 0.693147.
    assert float(lik.compute_preference_nll(1.0, 1.0, 0.5)) == pytest.approx(math.log(2), abs=1e-6)
    # y = 0.5, d = 2: 0.5 (0.126928 + 2.126928) = 1.126928.
    assert float(lik.compute_preference_nll(2.0, 0.0, 0.5)) == pytest.approx(1.126928, abs=1e-6)


def test_return_norm_reg_unsquared_and_safe_at_zero():
    # ||(3, 4)|| = 5; masking the 4 leaves ||3|| = 3.
    assert float(lik.compute_return_norm_reg(jnp.array([3.0, 4.0]), jnp.array([True, True]))) == 5.0
    assert float(lik.compute_return_norm_reg(jnp.array([3.0, 4.0]), jnp.array([True, False]))) == 3.0
    g = jax.grad(lambda r: lik.compute_return_norm_reg(r, jnp.ones(2, bool)))(jnp.zeros(2))
    np.testing.assert_array_equal(g, 0.0)


def test_gaussian_rating_nll_hand_values():
    # M = 3, V = 4, y = 1: 0.5 (log 4 + (3-1)^2/4) = 0.5 (1.386294 + 1) = 1.193147.
    assert float(lik.compute_gaussian_rating_nll(3.0, 4.0, 1.0)) == pytest.approx(1.193147, abs=1e-6)
    # V = 0 is clamped to 1e-6: M = y gives 0.5 log 1e-6 = -6.907755.
    assert float(lik.compute_gaussian_rating_nll(2.0, 0.0, 2.0)) == pytest.approx(-6.907755, abs=1e-5)


def test_ordinal_hand_values_and_stability():
    cuts = jnp.array([-1.0, 1.0])
    # z = 0: P0 = s(-1) = 0.268941, P1 = s(1) - s(-1) = 0.462117, P2 = 1 - s(1) = 0.268941.
    p = jnp.exp(lik.compute_ordinal_log_probs(jnp.float32(0.0), cuts))
    np.testing.assert_allclose(p, [0.268941, 0.462117, 0.268941], atol=1e-6)
    assert float(lik.compute_ordinal_nll(jnp.float32(0.0), cuts, jnp.float32(1.0))) == pytest.approx(-math.log(0.462117), abs=1e-5)
    # Extreme z: probabilities still normalised, NLL of the far bin finite and linear.
    z = jnp.array([-1e4, 1e4])
    lp = lik.compute_ordinal_log_probs(z, cuts)
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(jax.scipy.special.logsumexp(lp, -1), 0.0, atol=1e-5)
    g = jax.grad(lambda zz: jnp.sum(lik.compute_ordinal_nll(zz, cuts, jnp.array([2.0, 0.0]))))(z)
    assert np.all(np.isfinite(g))


def test_cutpoints_ordered_and_unit_spaced_at_init():
    first, raw = lik.init_cut_params(10)
    c = lik.compute_cutpoints(first, raw, 10)
    np.testing.assert_allclose(c, np.arange(9) - 4.0, atol=1e-5)
    c2 = lik.compute_cutpoints(jnp.float32(0.3), jnp.array([-50.0, 3.0, -1.0]), 5)
    assert np.all(np.diff(np.asarray(c2)) > 0)


def test_gaussian_bin_probs_normalised():
    p = lik.compute_gaussian_bin_probs(jnp.array([-5.0, 4.5, 20.0]), jnp.array([1.0, 0.0, 9.0]), 10)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-6)
    assert float(p[0, 0]) > 0.99 and float(p[2, 9]) > 0.99


def test_uniform_cutpoints_share_one_width():
    first, raw = lik.init_cut_params(10, uniform=True)
    assert raw.shape == (1,)
    np.testing.assert_allclose(lik.compute_cutpoints(first, raw, 10), np.arange(9) - 4.0, atol=1e-5)
    # width = softplus(10 * 0.1) + 1e-4 = 1.313362
    c = np.asarray(lik.compute_cutpoints(jnp.float32(-0.2), jnp.array([0.1]), 10))
    np.testing.assert_allclose(c, -2.0 + 1.3133617 * np.arange(9), rtol=1e-5)


def test_uniform_link_has_no_free_scale():
    from active_rlhf_jax.config import RewardModelConfig
    from active_rlhf_jax.reward import make_reward_model
    from active_rlhf_jax.reward.posterior import ordinal_link

    for cuts, has_scale in (("uniform", False), ("free", True)):
        cfg = RewardModelConfig(hidden=(4,), ordinal_cuts=cuts)
        params = make_reward_model(cfg, 2, 1).init(jax.random.PRNGKey(0))
        assert ("log_scale" in params["params"]) == has_scale
        assert params["params"]["cut_incr_raw"].shape == ((1,) if cuts == "uniform" else (8,))
        scale, c = ordinal_link(params, cfg)
        assert float(scale) == 1.0 and c.shape == (9,)
