"""The relative rating scales (``teacher.rating_scale="pool"`` and ``"pool-rank"``): the
teacher's bins over the pool's range or its quantiles, rounds stored with the ratings, and
the reward model's per-round calibration."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.batches import Queries, RatingBatch
from active_rlhf_jax.buffers import add_ratings, make_feedback_buffers
from active_rlhf_jax.config import ConfigError, RewardModelConfig, TeacherConfig, replace
from active_rlhf_jax.reward import likelihoods as lik
from active_rlhf_jax.reward import make_reward_model, make_reward_trainer
from active_rlhf_jax.reward.posterior import compute_rating_nll, ordinal_link
from active_rlhf_jax.teachers import (
    PoolRanks,
    compute_rank_bins,
    compute_relative_bins,
    label_ratings,
    pool_rank_scale,
    pool_rating_range,
)
from configs.presets import get_preset

# The trainer fits below are compile-bound (tests/conftest.py::_compile_mode).
pytestmark = pytest.mark.fast_compile

KEY = jax.random.PRNGKey(0)


def test_relative_bins_hand_values():
    # lo 0, hi 10, K 5: bins of width 2; the top edge is the top bin, outside values clip.
    ret = jnp.asarray([0.0, 1.99, 2.0, 9.99, 10.0, -3.0, 12.0])
    bins = compute_relative_bins(ret, jnp.float32(0.0), jnp.float32(10.0), 5)
    assert bins.tolist() == [0, 0, 1, 4, 4, 0, 4]
    # An empty range (every clip alike): all in bin 0.
    same = compute_relative_bins(ret, jnp.float32(3.0), jnp.float32(3.0), 5)
    assert same.tolist() == [0] * 7


def test_pool_range_is_over_the_valid_clips_discounted():
    # gamma 0.5, L 2: g = r0 + 0.5 r1 -> [2, -1, 7 (invalid), 0.5].
    rew = jnp.asarray([[1.0, 2.0], [-2.0, 2.0], [5.0, 4.0], [0.0, 1.0]])
    valid = jnp.asarray([True, True, False, True])
    lo, hi = pool_rating_range(rew, valid, 0.5)
    assert (float(lo), float(hi)) == (-1.0, 2.0)
    assert [float(x) for x in pool_rating_range(rew, jnp.zeros(4, bool), 0.5)] == [0.0, 0.0]


def test_teacher_rates_on_the_given_scale():
    # Returns 0, 1, 2, 3 (L 1) on the scale (0, 3) in 3 bins -> 0, 1, 2, 2 (noiseless).
    rew = jnp.arange(4.0)[:, None]
    cfg = TeacherConfig(rating_noise_std=0.0, rating_range=(-30.0, 300.0))
    rating, ok = label_ratings(KEY, rew, cfg, num_bins=3, gamma=0.99,
                               scale=(jnp.float32(0.0), jnp.float32(3.0)))
    assert rating.tolist() == [0.0, 1.0, 2.0, 2.0] and bool(ok.all())
    # The fixed scale puts all four in the lowest of 3 bins over (-30, 300).
    fixed, _ = label_ratings(KEY, rew, cfg, num_bins=3, gamma=0.99)
    assert fixed.tolist() == [0.0] * 4


def test_rank_bins_hand_values():
    # Valid pool returns 5, 1, 3, 9, 7 (n 5; the 100 is invalid), K 5: clip of rank r is in
    # bin r; a return above the pool (100) or below it (-4) clips to the end bins.
    ranks = PoolRanks(jnp.asarray([5.0, 1.0, 3.0, 9.0, 7.0, 100.0]),
                      jnp.asarray([True] * 5 + [False]))
    ret = jnp.asarray([1.0, 3.0, 5.0, 7.0, 9.0, 100.0, -4.0, 6.0])
    assert compute_rank_bins(ret, ranks, 5).tolist() == [0, 1, 2, 3, 4, 4, 0, 3]
    # Ties share the lowest of their bins: pool 2, 2, 2, 8 in K 2 -> 2s in bin 0, 8 in
    # bin floor(2 * 3 / 4) = 1.
    tied = PoolRanks(jnp.asarray([2.0, 2.0, 2.0, 8.0]), jnp.ones(4, bool))
    assert compute_rank_bins(jnp.asarray([2.0, 8.0]), tied, 2).tolist() == [0, 1]
    # An empty pool: every return in bin 0.
    empty = PoolRanks(jnp.zeros(3), jnp.zeros(3, bool))
    assert compute_rank_bins(jnp.asarray([-1.0, 5.0]), empty, 4).tolist() == [0, 0]


def test_rank_scale_resolves_a_skewed_pool():
    """Nine clips with returns 0..8 and one at 1,000 (L 1): equal-width bins over the
    pool's range put all nine in bin 0 of 5; rank bins put them floor(5 i / 10) = two a
    bin, the outlier in the top one."""
    rew = jnp.concatenate([jnp.arange(9.0), jnp.asarray([1000.0])])[:, None]
    valid = jnp.ones(10, bool)
    cfg = TeacherConfig(rating_noise_std=0.0)
    lo, hi = pool_rating_range(rew, valid, 0.99)
    by_range, _ = label_ratings(KEY, rew, cfg, num_bins=5, gamma=0.99, scale=(lo, hi))
    by_rank, _ = label_ratings(KEY, rew, cfg, num_bins=5, gamma=0.99,
                               scale=pool_rank_scale(rew, valid, 0.99))
    assert by_range.tolist() == [0.0] * 9 + [4.0]
    assert by_rank.tolist() == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]


def test_buffers_keep_each_ratings_round():
    b = make_feedback_buffers(1, 6, 2, 3, 1)
    obs, act = jnp.zeros((3, 2, 3)), jnp.zeros((3, 2, 1))
    mask = jnp.asarray([True, False, True])
    b = add_ratings(b, KEY, RatingBatch(obs, act, jnp.ones(3), mask, jnp.full(3, 4, jnp.int32)))
    b = add_ratings(b, KEY, RatingBatch(obs, act, jnp.ones(3), mask))  # no round: 0
    assert b.rating_round.tolist() == [4, 4, 0, 0, 0, 0] and int(b.rating_count) == 4


def test_calibration_is_the_identity_at_init_and_affine_after():
    cfg = RewardModelConfig(hidden=(8,), num_bins=5)
    m0 = make_reward_model(cfg, 3, 1)
    m3 = make_reward_model(cfg, 3, 1, num_rounds=3)
    p0, p3 = m0.init(KEY), m3.init(KEY)
    assert p3["params"]["round_shift"].shape == (3,) and "round_shift" not in p0["params"]
    mu = jax.random.normal(KEY, (4, 6))
    var = jnp.zeros_like(mu)
    rating = jnp.asarray([0.0, 2.0, 4.0, 1.0])
    rounds = jnp.asarray([0, 1, 2, 1])
    base = compute_rating_nll(p0, mu, var, rating, cfg, m0.compat)
    np.testing.assert_array_equal(compute_rating_nll(p3, mu, var, rating, cfg, m3.compat, rounds),
                                  base)
    # Round 1 with log gain 0.1 and shift -0.05 (stored): z -> exp(1) z - 0.5.
    p = jax.tree_util.tree_map(lambda x: x, p3)
    p["params"]["round_log_gain"] = jnp.asarray([0.0, 0.1, 0.0])
    p["params"]["round_shift"] = jnp.asarray([0.0, -0.05, 0.0])
    got = compute_rating_nll(p, mu, var, rating, cfg, m3.compat, rounds)
    scale, cuts = ordinal_link(p, cfg)
    g = mu @ (0.99 ** jnp.arange(6.0))
    z = scale * g
    z = z.at[1].set(np.e * z[1] - 0.5).at[3].set(np.e * z[3] - 0.5)
    np.testing.assert_allclose(got, lik.compute_ordinal_nll(z, cuts, rating), rtol=1e-5)
    np.testing.assert_array_equal(got[np.array([0, 2])], base[np.array([0, 2])])


def _spearman(a, b):
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return np.corrcoef(ra, rb)[0, 1]


def test_per_round_calibration_explains_two_scales():
    """Two rounds of 40 clips, as a policy improves: round 1's true returns v = sum(obs) / 4
    lie about 4 above round 0's, and each round is rated on its own range (10 bins from
    its lowest to its highest v), so the same rating means a much higher return in round
    1. With a calibration per round the fitted model ranks all 80 clips like v (Spearman
    0.993, 100 % of the cross-round pairs in order); read on one scale the same labels
    say round 1 is no better than round 0, and the ranking drops (0.821, 94.8 %; measured
    2026-12-02). The unused third round's parameters stay exactly at 0 (no gradient, and
    weight decay of 0 is 0)."""
    O, A, L = 3, 1, 4
    k = jax.random.split(KEY, 3)
    rounds = (jnp.arange(80) >= 40).astype(jnp.int32)
    obs = jax.random.normal(k[0], (80, L, O)) + jnp.where(rounds == 0, -2 / 3, 2 / 3)[:, None, None]
    act = jnp.zeros((80, L, A))
    v = obs.sum((1, 2)) / 4
    lo = jnp.where(rounds == 0, v[:40].min(), v[40:].min())
    hi = jnp.where(rounds == 0, v[:40].max(), v[40:].max())
    rating = jnp.clip(jnp.floor((v - lo) / (hi - lo) * 10), 0, 9)
    cfg = RewardModelConfig(hidden=(16,), dropout=0.0, batch_size=16, gamma=1.0)
    out = {}
    for name, nr in (("calibrated", 3), ("one_scale", 0)):
        m = make_reward_model(cfg, O, A, num_rounds=nr)
        t = make_reward_trainer(cfg, m)
        b = make_feedback_buffers(1, 80, L, O, A)
        b = add_ratings(b, k[1], RatingBatch(obs, act, rating, jnp.ones(80, bool), rounds))
        state, _ = jax.jit(t.fit, static_argnums=(3, 4))(t.init(m.init(k[2])), b, k[1], 150, 150)
        pred = np.asarray(m.step_reward(state.params, obs, act)).sum(-1)
        vv = np.asarray(v)
        cross = (pred[40:, None] > pred[None, :40]) == (vv[40:, None] > vv[None, :40])
        out[name] = (_spearman(pred, vv), state.params, cross.mean())
    assert out["calibrated"][0] > 0.9
    assert out["calibrated"][0] > out["one_scale"][0] + 0.1
    assert out["calibrated"][2] > 0.98
    cal = out["calibrated"][1]["params"]
    assert float(cal["round_shift"][2]) == 0.0 and float(cal["round_log_gain"][2]) == 0.0
    assert float(cal["round_log_gain"][1]) != 0.0


def test_pipeline_teacher_uses_the_pool_range_and_tags_the_round():
    """The feedback stages on the smoke preset with rating_scale=pool: the teacher's bins
    span the pool's discounted returns (the lowest clip rates 0, the highest K-1), and
    every rating carries the round it was asked in."""
    from active_rlhf_jax.envs import make
    from active_rlhf_jax.pipeline.feedback import make_feedback_stages
    from active_rlhf_jax.pipeline.pool import ClipPool

    cfg = replace(get_preset("smoke+rating-random"), **{"teacher.rating_scale": "pool",
                                                         "teacher.rating_noise_std": 0.0})
    cfg = cfg.validate()
    assert cfg.rating_rounds == cfg.num_iterations + 1
    env = make(cfg.env.env_id)
    fb = make_feedback_stages(cfg, env)
    L = cfg.run.segment_length
    pool = ClipPool.create(8, L, env.observation_size, env.action_size, jnp.float32)
    rew = jnp.arange(8.0)[:, None] * jnp.ones((1, L))  # clip i: reward i per step
    pool = pool.replace(rew=rew, valid=jnp.ones(8, bool))
    k = fb.model.config.num_bins
    q = Queries(pair_idx=jnp.zeros((3, 2), jnp.int32), pair_mask=jnp.zeros(3, bool),
                clip_idx=jnp.asarray([0, 7, 3]), clip_mask=jnp.ones(3, bool))
    _, ratings = fb.label(KEY, KEY, pool, q, jnp.int32(5))
    # discounted returns are i * sum(gamma^t): clip 3 sits at 3/7 of the range.
    assert ratings.rating.tolist() == [0.0, k - 1.0, float(np.floor(3 / 7 * k))]
    assert ratings.round.tolist() == [5, 5, 5]
    # pool-rank: clip i has i clips below it of 8, so its bin is floor(K i / 8).
    rank_cfg = replace(cfg, **{"teacher.rating_scale": "pool-rank"}).validate()
    assert rank_cfg.rating_rounds == cfg.rating_rounds
    _, ranked = make_feedback_stages(rank_cfg, env).label(KEY, KEY, pool, q, jnp.int32(5))
    assert ranked.rating.tolist() == [0.0, float(7 * k // 8), float(3 * k // 8)]


def test_pool_scale_needs_the_ordinal_likelihood():
    cfg = replace(get_preset("smoke+rating-random"), **{
        "teacher.rating_scale": "pool", "reward.rating_likelihood": "gaussian"})
    with pytest.raises(ConfigError, match=r"^teacher.rating_scale: pool needs"):
        cfg.validate()
    with pytest.raises(ConfigError, match=r"^teacher.rating_scale: pool-rank needs"):
        replace(cfg, **{"teacher.rating_scale": "pool-rank"}).validate()
    with pytest.raises(ConfigError, match=r"rating_scale"):
        dataclasses.replace(TeacherConfig(), rating_scale="relative").validate()


def test_round_walk_penalty_hand_values():
    from active_rlhf_jax.reward.trainer import round_walk_penalty
    p = {"round_shift": jnp.asarray([0.0, 0.1, 0.3]),
         "round_log_gain": jnp.asarray([0.0, -0.2, -0.2])}
    # shift steps 0.1, 0.2 -> 0.01 + 0.04; gain steps -0.2, 0 -> 0.04
    np.testing.assert_allclose(float(round_walk_penalty(p)), 0.09, rtol=1e-6)


def test_round_smoothing_adds_its_prior_to_the_training_loss_only():
    """The training loss with reward.round_smoothing = 2 is the loss without it plus 2 x
    the random-walk penalty of the round parameters; the validation loss is unchanged."""
    from active_rlhf_jax.reward.fit_state import Batch
    from active_rlhf_jax.reward.trainer import round_walk_penalty
    O, A, L, B = 3, 1, 4, 6
    k = jax.random.split(KEY, 3)
    obs = jax.random.normal(k[0], (B, L, O))
    act = jnp.zeros((B, L, A))
    batch = Batch(obs, act, obs[::-1], act, jnp.ones(B), jnp.arange(B) < 2, obs, act,
                  jnp.asarray([0.0, 3.0, 5.0, 9.0, 1.0, 2.0]), jnp.arange(B) >= 2,
                  jnp.asarray([0, 0, 1, 1, 2, 2], jnp.int32))
    base = RewardModelConfig(hidden=(8,), dropout=0.0)
    m = make_reward_model(base, O, A, num_rounds=3)
    params = m.init(k[1])
    params["params"]["round_shift"] = jnp.asarray([0.0, 0.05, -0.1])
    params["params"]["round_log_gain"] = jnp.asarray([0.02, 0.0, 0.03])
    pen = float(round_walk_penalty(params["params"]))
    assert pen > 0
    smooth = dataclasses.replace(base, round_smoothing=2.0)
    l0 = make_reward_trainer(base, m).loss
    l2 = make_reward_trainer(smooth, make_reward_model(smooth, O, A, num_rounds=3)).loss
    np.testing.assert_allclose(float(l2(params, None, batch, True)[0]),
                               float(l0(params, None, batch, True)[0]) + 2.0 * pen, rtol=1e-5)
    assert float(l2(params, None, batch, False)[0]) == float(l0(params, None, batch, False)[0])


def test_round_smoothing_must_be_nonnegative():
    with pytest.raises(ConfigError, match="round_smoothing"):
        RewardModelConfig(round_smoothing=-1.0).validate()
