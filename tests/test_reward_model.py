"""Reward network and posterior samples: shapes, coherent masks, ensemble, compat."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.config import CompatConfig, ConfigError, RewardModelConfig
from active_rlhf_jax.reward import make_reward_model
from active_rlhf_jax.reward.model import RewardNet

# Compiling is most of these tests' time (tests/conftest.py::_compile_mode).
pytestmark = pytest.mark.fast_compile

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
    assert "var_head" not in p["params"] and post.variances is None
    mg = make_reward_model(dataclasses.replace(CFG, rating_likelihood="gaussian"), O, A)
    pg = mg.init(KEY)
    post = mg.clip_posterior(pg, KEY, obs, act, 7)
    assert post.variances.shape == (7, N) and bool(jnp.all(post.variances > 0))
    # Without the head the other parameters are initialised exactly as with it.
    for name in ("hidden_layers_0", "hidden_layers_1", "mean_head"):
        np.testing.assert_array_equal(p["params"][name]["kernel"], pg["params"][name]["kernel"])
        np.testing.assert_array_equal(p["params"][name]["bias"], pg["params"][name]["bias"])


def test_variance_head_is_trained_where_it_exists():
    """Gaussian likelihood: the rating NLL gives the variance head a gradient. Ordinal:
    there is no head to leave untrained."""
    from active_rlhf_jax.reward import make_reward_trainer
    from active_rlhf_jax.reward.fit_state import Batch

    cfg = dataclasses.replace(CFG, rating_likelihood="gaussian", dropout=0.0)
    m = make_reward_model(cfg, O, A)
    tr = make_reward_trainer(cfg, m)
    p = m.init(KEY)
    obs, act = _clips()
    z = jnp.zeros(N, bool)
    batch = Batch(obs, act, obs, act, jnp.zeros(N), z, obs, act, jnp.arange(N, dtype=jnp.float32),
                  jnp.ones(N, bool))
    g = jax.grad(lambda q: tr.loss(q, None, batch, True)[0])(p)
    assert float(jnp.abs(g["params"]["var_head"]["kernel"]).sum()) > 0


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


def _leaky64(z):
    return np.where(z > 0, z, 0.01 * z)


def _mlp64(variables, obs, act, masks):
    """Float64 NumPy forward of one member: masks are the scaled dropout masks (0 or
    1/(1-p)) per hidden layer, broadcastable to [N, L, H_i]. Returns (mu, var) [N, L]."""
    p = jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), variables["params"])
    h = np.concatenate([obs, act], -1).astype(np.float64)
    for i, mask in enumerate(masks):
        h = _leaky64(h @ p[f"hidden_layers_{i}"]["kernel"] + p[f"hidden_layers_{i}"]["bias"]) * mask
    mu = (h @ p["mean_head"]["kernel"] + p["mean_head"]["bias"])[..., 0]
    var = (np.logaddexp(0.0, (h @ p["var_head"]["kernel"] + p["var_head"]["bias"])[..., 0])
           if "var_head" in p else np.zeros_like(mu))
    return mu, var


def _sample_masks(m, params, key, lead):
    """The masks ``m.posterior_net`` draws under dropout key ``key`` (float64)."""
    masks = m.posterior_net.apply(params, lead, method=RewardNet.dropout_masks, rngs={"dropout": key})
    return [np.asarray(x, np.float64) for x in masks]


@pytest.mark.parametrize("elementwise", [False, True])
def test_mc_dropout_samples_match_a_float64_masked_mlp(elementwise):
    """Sample s = the MLP with the masks the module draws under ``split(key, S)[s]``,
    recomputed in float64 NumPy (Gaussian likelihood: the variance head exists). Coherent
    masks are one [H] vector per layer for every clip and step; the reference's elementwise
    masks (compat) are [N, L, H]. Either way every entry is 0 or 1/(1 - p)."""
    m = make_reward_model(dataclasses.replace(CFG, rating_likelihood="gaussian"), O, A,
                          CompatConfig(elementwise_dropout=elementwise))
    p = m.init(KEY)
    obs, act = _clips()
    S = 5
    post = m.clip_posterior(p, KEY, obs, act, S)
    lead = (N, L) if elementwise else (1, 1)
    x64 = [np.asarray(obs, np.float64), np.asarray(act, np.float64)]
    for s, k in enumerate(jax.random.split(KEY, S)):
        masks = _sample_masks(m, p, k, lead)
        for mask, h in zip(masks, CFG.hidden):
            assert mask.shape == lead + (h,)
            np.testing.assert_allclose(mask[mask != 0], 1 / 0.6, rtol=1e-6)
        mu, var = _mlp64(p, *x64, masks)
        np.testing.assert_allclose(post.returns[s], mu.sum(-1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(post.variances[s], var.sum(-1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(post.disc_returns[s], (mu * 0.99 ** np.arange(L)).sum(-1),
                                   rtol=1e-5, atol=1e-5)


def test_posterior_masks_are_bernoulli_keep_over_one_minus_p():
    """400 coherent samples x 16 units per layer: the kept fraction is 1 - p = 0.6 within
    0.025 (4 sd of sqrt(0.24 / 6400) = 0.0061); the two layers' masks differ, and so do
    consecutive samples' (a shared key would make them equal)."""
    m = make_reward_model(CFG, O, A)
    p = m.init(KEY)
    masks = np.stack([np.stack(_sample_masks(m, p, k, (1, 1)))[:, 0, 0]
                      for k in jax.random.split(KEY, 400)])  # [400, 2 layers, 16]
    kept = masks != 0
    for layer in range(2):
        assert abs(kept[:, layer].mean() - 0.6) < 0.025
    assert (kept[:, 0] != kept[:, 1]).any(-1).mean() > 0.9
    assert (kept[1:] != kept[:-1]).any((-1, -2)).mean() > 0.9


def test_init_is_torch_linear_default():
    """Weights and biases ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch nn.Linear): inside
    the bound, filling it, and the 256 x 256 kernel's sd is bound / sqrt(3) within 2 %
    (sd of the estimate ~0.3 %)."""
    m = make_reward_model(dataclasses.replace(CFG, hidden=(256, 256)), O, A)
    p = m.init(KEY)["params"]
    for name, fan_in in (("hidden_layers_0", O + A), ("hidden_layers_1", 256), ("mean_head", 256)):
        bound = 1 / np.sqrt(fan_in)
        for leaf in ("kernel", "bias"):
            x = np.asarray(p[name][leaf])
            assert np.abs(x).max() <= bound
            if x.size >= 256:  # 256 draws reach within 10 % of the bound (p of not: 1e-12)
                assert np.abs(x).max() > 0.9 * bound
    k = np.asarray(p["hidden_layers_1"]["kernel"])
    np.testing.assert_allclose(k.std(), (1 / 16) / np.sqrt(3), rtol=0.02)


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
    assert p["params"]["hidden_layers_0"]["kernel"].shape == (3, O + A, 16)
    obs, act = _clips()
    post = m.clip_posterior(p, KEY, obs, act, 99)  # num_samples ignored: S = M
    assert post.returns.shape == (3, N)
    assert float(jnp.std(post.returns, axis=0).min()) > 0
    np.testing.assert_allclose(m.step_reward(p, obs, act).sum(-1), post.returns.mean(0), rtol=1e-5, atol=1e-6)
    # Sample s is member s's MLP (no dropout), recomputed in float64.
    x64 = [np.asarray(obs, np.float64), np.asarray(act, np.float64)]
    for s in range(3):
        member = jax.tree_util.tree_map(lambda x, s=s: x[s], p)
        mu, _ = _mlp64(member, *x64, [1.0, 1.0])
        np.testing.assert_allclose(post.returns[s], mu.sum(-1), rtol=1e-5, atol=1e-5)


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
    assert "var_head" not in m.init(KEY)["params"]


def test_absorbing_steps_give_exactly_zero_and_no_nan_gradient():
    """absorbing=True: steps with NaN observations get mu = var = 0; the live steps get
    what the plain net gives them, so a clip's return is the sum over its live steps, and
    the gradient of a loss on clip returns is finite and equals the one computed on the
    live steps alone (Gaussian head, so the variance head is checked too)."""
    cfg = dataclasses.replace(CFG, rating_likelihood="gaussian", dropout=0.0)
    plain = make_reward_model(cfg, O, A)
    absorb = make_reward_model(cfg, O, A, absorbing=True)
    p = plain.init(KEY)
    obs, act = _clips()
    gone = jnp.arange(L)[None, :] >= jnp.array([L, 2, 5, 1])[:, None]  # [N, L]
    obs_a = jnp.where(gone[..., None], jnp.nan, obs)
    act_a = jnp.where(gone[..., None], 0.0, act)
    mu_p, var_p = plain.apply(p, obs, act)
    mu_a, var_a = absorb.apply(p, obs_a, act_a)
    np.testing.assert_array_equal(mu_a, jnp.where(gone, 0.0, mu_p))
    np.testing.assert_array_equal(var_a, jnp.where(gone, 0.0, var_p))

    def loss(params, model, o, a, mask):
        mu, var = model.apply(params, o, a)
        return jnp.sum(jnp.sum(jnp.where(mask, mu, 0.0), -1) ** 2 + jnp.sum(jnp.where(mask, var, 0.0), -1))

    g_a = jax.grad(loss)(p, absorb, obs_a, act_a, ~gone)
    g_p = jax.grad(loss)(p, plain, obs, act, ~gone)
    for x, y in zip(jax.tree_util.tree_leaves(g_a), jax.tree_util.tree_leaves(g_p)):
        assert bool(jnp.all(jnp.isfinite(x)))
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)
    post = absorb.clip_posterior(p, KEY, obs_a, act_a, 3)
    np.testing.assert_allclose(post.returns[0], jnp.sum(jnp.where(gone, 0.0, mu_p), -1),
                               rtol=1e-5, atol=1e-6)
