"""Unit tests of the small pieces every run's metrics rest on: the headline
``masked_spearman``, the learned-reward z-scoring, the episode-return helper, the
deterministic evaluation rollout and the evaluation record. Hand-computed cases with the
arithmetic in comments, and a float64 oracle (scipy) for the rank correlation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from active_rlhf_jax.envs import TrainingEnv, make
from active_rlhf_jax.evaluation import eval_record
from active_rlhf_jax.pipeline.masked_stats import masked_spearman
from active_rlhf_jax.pipeline.rollouts import compute_zscore
from active_rlhf_jax.pipeline.state import ZScoreState
from active_rlhf_jax.ppo.episodes import compute_episode_returns, deterministic_episodes


def test_masked_spearman_hand_case_ignores_masked_entries():
    # Valid x ranks 0,1,2,3; y = [10, 30, 20, 40] ranks 0,2,1,3: d = [0, 1, 1, 0],
    # rho = 1 - 6 * 2 / (4 * 15) = 0.8. The masked fifth entry holds garbage (and a NaN).
    x = jnp.array([1.0, 2.0, 3.0, 4.0, jnp.nan])
    y = jnp.array([10.0, 30.0, 20.0, 40.0, -1e9])
    mask = jnp.array([True, True, True, True, False])
    assert float(masked_spearman(x, y, mask)) == pytest.approx(0.8, abs=1e-6)
    assert float(masked_spearman(x, -y, mask)) == pytest.approx(-0.8, abs=1e-6)


def test_masked_spearman_matches_scipy_and_is_nan_when_undefined():
    rng = np.random.default_rng(0)
    for n in (3, 17, 200):
        x, y = rng.normal(size=n), rng.normal(size=n)
        y = 0.5 * x + y  # some correlation; continuous draws have no ties
        mask = rng.random(n) < 0.7
        mask[:3] = True
        want = stats.spearmanr(x[mask], y[mask]).statistic
        got = float(masked_spearman(jnp.asarray(x), jnp.asarray(y), jnp.asarray(mask)))
        assert got == pytest.approx(want, abs=1e-5)
    one = jnp.array([True, False, False])
    assert np.isnan(float(masked_spearman(jnp.arange(3.0), jnp.arange(3.0), one)))
    nan_valid = jnp.array([1.0, jnp.nan, 3.0])
    assert np.isnan(float(masked_spearman(nan_valid, jnp.arange(3.0), jnp.ones(3, bool))))


def test_zscore_window_hand_case():
    zs = ZScoreState.create(4, jnp.float32)
    # First rollout [T=3, B=1] = 1, 2, 3: window [1, 2, 3, _], mean 2,
    # population std sqrt(2/3) = 0.816497.
    zs, out = compute_zscore(zs, jnp.array([[1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(np.asarray(out)[:, 0], [-1.224745, 0.0, 1.224745], rtol=1e-5)
    assert (int(zs.ptr), int(zs.count)) == (3, 3)
    # Second rollout 5, 7 wraps: window [7, 2, 3, 5], mean 4.25,
    # std = sqrt((2.75^2 + 2.25^2 + 1.25^2 + 0.75^2) / 4) = sqrt(3.6875) = 1.920286.
    zs, out = compute_zscore(zs, jnp.array([[5.0], [7.0]]))
    np.testing.assert_allclose(np.asarray(zs.window), [7.0, 2.0, 3.0, 5.0])
    np.testing.assert_allclose(np.asarray(out)[:, 0], [0.390567, 1.432078], rtol=1e-5)
    assert (int(zs.ptr), int(zs.count)) == (1, 4)
    # A window holding a single reward leaves it as it is.
    _, out = compute_zscore(ZScoreState.create(4, jnp.float32), jnp.array([[5.0]]))
    assert float(out[0, 0]) == 5.0


def test_episode_returns_hand_case():
    # env 0 carries 5 in: 5+1+2 = 8 ends at t=1, then 3+4 = 7 runs on;
    # env 1: 10+20+30+40 = 100 ends at t=3. Sum of completed = 108, two episodes.
    rewards = jnp.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]])
    dones = jnp.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    total, count, running = compute_episode_returns(rewards, dones, jnp.array([5.0, 0.0]))
    assert (float(total), float(count)) == (108.0, 2.0)
    np.testing.assert_array_equal(np.asarray(running), [7.0, 0.0])


class _ConstantPolicy:
    """act(state, obs, key, deterministic) -> zeros: probe/constant pays 1 per step."""

    @staticmethod
    def act(state, obs, key, deterministic):
        return jnp.zeros(obs.shape[:-1] + (1,))


@pytest.mark.parametrize("horizon,ret", [(4, 4.0), (10, 10.0), (15, 10.0)])
def test_deterministic_episodes_counts_one_episode(horizon, ret):
    # probe/constant: reward 1 per step, 10-step episodes. A horizon past the end keeps
    # the first episode only (the auto-reset one after it is not counted).
    env = TrainingEnv(make("probe/constant"), 3)
    returns, lengths = jax.jit(
        lambda k: deterministic_episodes(_ConstantPolicy.act, None, env, k, horizon)
    )(jax.random.PRNGKey(0))
    np.testing.assert_array_equal(np.asarray(returns), [ret] * 3)
    np.testing.assert_array_equal(np.asarray(lengths), [int(ret)] * 3)


def test_eval_record_schema_and_ci():
    returns = np.array([[1.0, 3.0], [5.0, 7.0]])  # seed means 2 and 6
    rec = eval_record("probe/target", "jax", [4, 5], returns, np.full((2, 2), 25))
    # t(0.975, 1) = 12.706205; half = 12.706205 * std([2, 6], ddof=1) / sqrt(2) = 25.41241.
    assert rec["mean"] == 4.0
    assert rec["ci95"] == pytest.approx([4.0 - 25.41241, 4.0 + 25.41241], rel=1e-6)
    assert [s["seed"] for s in rec["seeds"]] == [4, 5]
    assert rec["seeds"][1] == {"seed": 5, "returns": [5.0, 7.0], "lengths": [25, 25], "mean": 6.0}
    assert (rec["ci_over"], rec["num_seeds"], rec["episodes"]) == ("seeds", 2, 2)
    single = eval_record("probe/target", "jax", [0], returns[:1, :1], np.ones((1, 1)))
    assert single["ci95"] == [None, None] and single["ci_over"] == "episodes"


def test_pool_min_step_reward_hand_case_ignores_empty_slots():
    """Step reward = the observation's first entry. Valid clips hold steps [3, -2] and
    [5, 1]; the empty third slot holds -100, which must not count: the minimum is -2. An
    empty pool gives 0."""
    from active_rlhf_jax.pipeline.pool import ClipPool
    from active_rlhf_jax.pipeline.rollouts import pool_min_step_reward

    pool = ClipPool.create(3, 2, 1, 1, jnp.float32)
    obs = jnp.array([[[3.0], [-2.0]], [[5.0], [1.0]], [[-100.0], [-100.0]]])
    pool = pool.replace(obs=obs, valid=jnp.array([True, True, False]))

    def step_reward(_, o, a):
        return o[..., 0] + 0.0 * a[..., 0]

    assert float(pool_min_step_reward(step_reward, None, pool)) == -2.0
    empty = pool.replace(valid=jnp.zeros(3, bool))
    assert float(pool_min_step_reward(step_reward, None, empty)) == 0.0



def test_pool_min_step_reward_leaves_out_absorbing_steps():
    """An absorbing step (NaN observation; the model gives it 0) is not a step of the
    pool: with valid clips [3, absorbing] and [5, 1] the minimum is 1, not 0."""
    from active_rlhf_jax.pipeline.pool import ClipPool
    from active_rlhf_jax.pipeline.rollouts import pool_min_step_reward

    pool = ClipPool.create(2, 2, 1, 1, jnp.float32)
    obs = jnp.array([[[3.0], [jnp.nan]], [[5.0], [1.0]]])
    pool = pool.replace(obs=obs, valid=jnp.array([True, True]))

    def step_reward(_, o, a):
        return jnp.where(jnp.isnan(o[..., 0]), 0.0, o[..., 0]) + 0.0 * a[..., 0]

    assert float(pool_min_step_reward(step_reward, None, pool)) == 1.0


def test_masked_line_fit_hand_case():
    """y = 2 x - 1 on the unmasked points, a stray point masked out; one point or a
    constant x gives NaN."""
    from active_rlhf_jax.pipeline.masked_stats import masked_line_fit

    x = jnp.array([0.0, 1.0, 3.0, 100.0])
    y = jnp.array([-1.0, 1.0, 5.0, -7.0])
    mask = jnp.array([True, True, True, False])
    slope, intercept = masked_line_fit(x, y, mask)
    assert float(slope) == pytest.approx(2.0, abs=1e-6)
    assert float(intercept) == pytest.approx(-1.0, abs=1e-6)
    one = jnp.array([True, False, False, False])
    assert np.isnan(float(masked_line_fit(x, y, one)[0]))
    assert np.isnan(float(masked_line_fit(jnp.ones(4), y, mask)[1]))


def test_reward_shape_hand_case_with_and_without_the_shift():
    """Learned step reward = 0.5 true + 3 (true reward in the pool's rew, the learned one
    read off obs). Fit: slope 0.5, intercept 3, so a live step is paid 3 / 0.5 = 6 true
    units beyond its true reward: alive value 7. With the pool-min shift PPO adds minus
    the lowest live learned step (true rewards 0, 2, 4 -> learned 3, 4, 5; lowest 3), the
    intercept becomes 0: alive value 1. The empty slot (-100) and the absorbing step (NaN
    obs, true reward 0) count in neither; the correlation is exactly 1."""
    from active_rlhf_jax.pipeline.pool import ClipPool
    from active_rlhf_jax.pipeline.rollouts import reward_shape

    pool = ClipPool.create(3, 2, 1, 1, jnp.float32)
    rew = jnp.array([[0.0, 2.0], [4.0, 0.0], [-100.0, -100.0]])
    obs = jnp.array([[[3.0], [4.0]], [[5.0], [jnp.nan]], [[-47.0], [-47.0]]])
    pool = pool.replace(obs=obs, rew=rew, valid=jnp.array([True, True, False]))

    def step_reward(_, o, a):
        return jnp.where(jnp.isnan(o[..., 0]), 0.0, o[..., 0]) + 0.0 * a[..., 0]

    plain = reward_shape(step_reward, None, pool, shifted=False)
    assert float(plain["alive_value"]) == pytest.approx(7.0, abs=1e-5)
    assert float(plain["reward_step_corr"]) == pytest.approx(1.0, abs=1e-6)
    shifted = reward_shape(step_reward, None, pool, shifted=True)
    assert float(shifted["alive_value"]) == pytest.approx(1.0, abs=1e-5)
    assert float(shifted["reward_step_corr"]) == pytest.approx(1.0, abs=1e-6)
