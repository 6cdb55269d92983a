"""Reward network and posterior samples: shapes, coherent masks, ensemble, compat."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.config import CompatConfig, ConfigError, RewardModelConfig
from active_rlhf_jax.reward import make_reward_model

O, A, L, N = 3, 2, 6, 4
CFG = RewardModelConfig(hidden=(16, 16), dropout=0.4)
KEY = jax.random.PRNGKey(0)


def _clips(n=N):
    k1, k2 = jax.random.split(jax.random.PRNGKey(7))
    return jax.random.normal(k1, (n, L, O)), jax.random.normal(k2, (n, L, A))


def test_posterior_shapes_and_normalised_bins():
    m = make_reward_model(CFG, O, A)
    p = m.init(KEY)
    obs, act = _clips()
    post = m.clip_posterior(p, KEY, obs, act, 7)
    for f in ("returns", "disc_returns", "rating_mean", "rating_var"):
        assert getattr(post, f).shape == (7, N)
    assert post.bin_probs.shape == (7, N, 10)
    np.testing.assert_allclose(post.bin_probs.sum(-1), 1.0, atol=1e-5)
    assert m.step_reward(p, obs, act).shape == (N, L)
    # The ordinal likelihood reads no per-step variance: no head is built, none reported.
    assert "var" not in p and post.variances is None
    mg = make_reward_model(dataclasses.replace(CFG, rating_likelihood="gaussian"), O, A)
    pg = mg.init(KEY)
    post = mg.clip_posterior(pg, KEY, obs, act, 7)
    assert post.variances.shape == (7, N) and bool(jnp.all(post.variances > 0))
    # Without the head the other parameters are initialised exactly as with it.
    np.testing.assert_array_equal(p["layers"][0]["w"], pg["layers"][0]["w"])
    np.testing.assert_array_equal(p["mean"]["w"], pg["mean"]["w"])


def test_variance_head_is_trained_where_it_exists():
    """Gaussian likelihood: the rating NLL gives the variance head a gradient. Ordinal:
    there is no head to leave untrained."""
    from active_rlhf_jax.reward import make_reward_trainer
    from active_rlhf_jax.reward.trainer import Batch

    cfg = dataclasses.replace(CFG, rating_likelihood="gaussian", dropout=0.0)
    m = make_reward_model(cfg, O, A)
    tr = make_reward_trainer(cfg, m)
    p = m.init(KEY)
    obs, act = _clips()
    z = jnp.zeros(N, bool)
    batch = Batch(obs, act, obs, act, jnp.zeros(N), z, obs, act, jnp.arange(N, dtype=jnp.float32),
                  jnp.ones(N, bool))
    g = jax.grad(lambda q: tr.loss(q, None, batch, True)[0])(p)
    assert float(jnp.abs(g["var"]["w"]).sum()) > 0


def test_mc_dropout_sample_is_one_coherent_mask():
    obs, act = _clips(1)
    obs, act = jnp.repeat(obs, 5, 0), jnp.repeat(act, 5, 0)  # five identical clips
    m = make_reward_model(CFG, O, A)
    p = m.init(KEY)
    post = m.clip_posterior(p, KEY, obs, act, 8)
    # Same mask for every clip of a sample: identical clips get identical returns...
    np.testing.assert_array_equal(post.returns, jnp.repeat(post.returns[:, :1], 5, 1))
    # ...and different samples are different functions.
    assert float(jnp.std(post.returns[:, 0])) > 0
    # Reference (compat): independent elementwise masks differ across clips of a sample.
    me = make_reward_model(CFG, O, A, CompatConfig(elementwise_dropout=True))
    pe = me.clip_posterior(p, KEY, obs, act, 8)
    assert float(jnp.std(pe.returns, axis=1).mean()) > 0


def test_mc_dropout_samples_match_a_float64_masked_mlp():
    """Sample s = the MLP with sample s's masks (one per hidden layer, drawn as
    ``split(split(key, S)[s], layers)[i]`` -> Bernoulli(1 - p) / (1 - p)) on every clip and
    step, recomputed in float64 NumPy (Gaussian likelihood: the variance head exists)."""
    m = make_reward_model(dataclasses.replace(CFG, rating_likelihood="gaussian"), O, A)
    p = jax.tree_util.tree_map(np.asarray, m.init(KEY))
    obs, act = _clips()
    S = 5
    post = m.clip_posterior(p, KEY, obs, act, S)
    x = np.concatenate([obs, act], -1).astype(np.float64)
    leaky = lambda z: np.where(z > 0, z, 0.01 * z)
    for s, k in enumerate(jax.random.split(KEY, S)):
        masks = [np.asarray(jax.random.bernoulli(kk, 0.6, (h,)), np.float64) / 0.6
                 for kk, h in zip(jax.random.split(k, 2), CFG.hidden)]
        h = x
        for layer, mask in zip(p["layers"], masks):
            h = leaky(h @ layer["w"].astype(np.float64) + layer["b"]) * mask
        mu = (h @ p["mean"]["w"].astype(np.float64) + p["mean"]["b"])[..., 0]
        var = np.logaddexp(0.0, (h @ p["var"]["w"].astype(np.float64) + p["var"]["b"])[..., 0])
        np.testing.assert_allclose(post.returns[s], mu.sum(-1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(post.variances[s], var.sum(-1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(post.disc_returns[s], (mu * 0.99 ** np.arange(L)).sum(-1),
                                   rtol=1e-5, atol=1e-5)


def test_no_dropout_posterior_equals_step_reward():
    m = make_reward_model(dataclasses.replace(CFG, dropout=0.0), O, A)
    p = m.init(KEY)
    obs, act = _clips()
    post = m.clip_posterior(p, KEY, obs, act, 3)
    np.testing.assert_allclose(post.returns, jnp.broadcast_to(m.step_reward(p, obs, act).sum(-1), (3, N)),
                               rtol=1e-5, atol=1e-6)
    w = 0.99 ** np.arange(L)
    np.testing.assert_allclose(post.disc_returns[0], (m.step_reward(p, obs, act) * w).sum(-1), rtol=1e-5, atol=1e-6)


def test_ensemble_members_differ_and_samples_are_members():
    cfg = dataclasses.replace(CFG, posterior="ensemble", ensemble_size=3)
    m = make_reward_model(cfg, O, A)
    p = m.init(KEY)
    assert p["layers"][0]["w"].shape == (3, O + A, 16)
    obs, act = _clips()
    post = m.clip_posterior(p, KEY, obs, act, 99)  # num_samples ignored: S = M
    assert post.returns.shape == (3, N)
    assert float(jnp.std(post.returns, axis=0).min()) > 0
    np.testing.assert_allclose(m.step_reward(p, obs, act).sum(-1), post.returns.mean(0), rtol=1e-5, atol=1e-6)


def test_gaussian_and_undiscounted_target_compat():
    cfg = dataclasses.replace(CFG, rating_likelihood="gaussian", dropout=0.0)
    m = make_reward_model(cfg, O, A, CompatConfig(undiscounted_rating_target=True))
    p = m.init(KEY)
    post = m.clip_posterior(p, KEY, *_clips(), 2)
    # Reference: the rating likelihood reads the undiscounted sum and summed variance.
    np.testing.assert_allclose(post.rating_mean, post.returns, rtol=1e-6)
    np.testing.assert_allclose(post.rating_var, post.variances, rtol=1e-6)
    np.testing.assert_allclose(post.bin_probs.sum(-1), 1.0, atol=1e-5)


def test_config_validation_names_field():
    for kw, field in [({"posterior": "laplace"}, "posterior"), ({"hidden": (64, 0)}, "hidden[1]"),
                      ({"rating_likelihood": "beta"}, "rating_likelihood"), ({"num_bins": 1}, "num_bins"),
                      ({"posterior": "ensemble", "ensemble_size": 1}, "ensemble_size")]:
        with pytest.raises(ConfigError) as e:
            RewardModelConfig(**kw).validate()
        assert e.value.field == field
    RewardModelConfig().validate()


def test_non_probabilistic_rating_loss_is_the_reference_mse():
    """Reference: MSE(sum r, rating) = (G - y)^2 per item, not half of it; the posterior's
    rating variance is the matching 1/2. Hand case: G = 3, y = 1 -> 4."""
    from active_rlhf_jax.reward.posterior import compute_clip_posterior, compute_rating_nll

    cfg = dataclasses.replace(CFG, rating_likelihood="gaussian", probabilistic=False)
    compat = CompatConfig(undiscounted_rating_target=True)
    mu = jnp.array([[1.0, 2.0, 0.0], [0.5, 0.5, 0.5]])  # G = 3, 1.5
    nll = compute_rating_nll({}, mu, jnp.zeros_like(mu), jnp.array([1.0, 1.5]), cfg, compat)
    np.testing.assert_allclose(nll, [4.0, 0.0], atol=1e-6)
    post = compute_clip_posterior({}, mu, jnp.zeros_like(mu), cfg, compat)
    np.testing.assert_allclose(post.rating_var, 0.5)
    assert post.variances is None
    m = make_reward_model(cfg, O, A)
    assert "var" not in m.init(KEY)
