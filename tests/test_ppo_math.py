"""PPO math pinned against oracles and hand-computed cases (no training here)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.config import PPOConfig
from active_rlhf_jax.envs import TrainingEnv, make
from active_rlhf_jax.ppo import (
    compute_ppo_loss,
    compute_sb3_advantages,
    init_obs_norm,
    make_distribution,
    make_ppo,
    normalize_obs,
    update_obs_norm_stats,
)


def sb3_gae_oracle(rewards, values, dones, truncation, bootstrap, last_values, gamma, lam):
    """Python-loop port of SB3's RolloutBuffer.compute_returns_and_advantage (float64).

    SB3 stores ``episode_starts[t]`` (= done of step t-1) and gets the last step's
    ``dones`` and ``last_values`` separately; a truncated step's reward was already
    increased by gamma * V(terminal obs) in collect_rollouts.
    """
    T, B = rewards.shape
    rewards = rewards + gamma * truncation * bootstrap
    adv = np.zeros((T, B))
    for b in range(B):
        last_gae = 0.0
        for t in reversed(range(T)):
            if t == T - 1:
                non_terminal = 1.0 - dones[t, b]
                next_v = last_values[b]
            else:
                non_terminal = 1.0 - dones[t, b]  # = 1 - episode_starts[t + 1]
                next_v = values[t + 1, b]
            delta = rewards[t, b] + gamma * next_v * non_terminal - values[t, b]
            last_gae = delta + gamma * lam * non_terminal * last_gae
            adv[t, b] = last_gae
    return adv, adv + values


def test_gae_matches_sb3_loop_with_boundaries_and_truncation():
    rng = np.random.default_rng(0)
    T, B = 37, 5
    rewards = rng.normal(size=(T, B))
    values = rng.normal(size=(T, B))
    last_values = rng.normal(size=(B,))
    ended = rng.random((T, B)) < 0.15
    truncation = (ended & (rng.random((T, B)) < 0.5)).astype(float)
    dones = ended.astype(float)
    dones[-1, 0], truncation[-1, 0] = 1.0, 1.0  # truncated on the last step
    bootstrap = rng.normal(size=(T, B)) * truncation
    next_values = np.concatenate([values[1:], last_values[None]], 0)
    want_adv, want_ret = sb3_gae_oracle(
        rewards, values, dones, truncation, bootstrap, last_values, 0.99, 0.95
    )
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    adv, ret = compute_sb3_advantages(
        f32(rewards),
        f32(values),
        f32(next_values),
        f32(dones),
        f32(truncation),
        f32(bootstrap),
        0.99,
        0.95,
    )
    np.testing.assert_allclose(adv, want_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, want_ret, rtol=1e-5, atol=1e-5)
    # The truncation bootstrap matters: dropping it changes the truncated steps.
    adv0, _ = compute_sb3_advantages(
        f32(rewards),
        f32(values),
        f32(next_values),
        f32(dones),
        f32(truncation),
        f32(0 * bootstrap),
        0.99,
        0.95,
    )
    assert not np.allclose(adv0[-1, 0], adv[-1, 0])


def test_gae_single_step_hand_case():
    # T=2, B=1, gamma=0.5, lambda=0.5, no dones: V=[1, 2], V(s_2)=4, r=[1, 1]
    # delta_1 = 1 + 0.5*4 - 2 = 1 ; delta_0 = 1 + 0.5*2 - 1 = 1
    # A_1 = 1 ; A_0 = 1 + 0.25*1 = 1.25 ; returns = A + V = [2.25, 3]
    # With a truncation at t=0 bootstrapped by V(final)=6: r_0 = 1 + 0.5*6 = 4,
    # delta_0 = 4 - 1 = 3 and no flow from t=1: A_0 = 3.
    one = lambda *x: jnp.asarray(x, jnp.float32)[:, None]
    adv, ret = compute_sb3_advantages(
        one(1, 1), one(1, 2), one(2, 4), one(0, 0), one(0, 0), one(0, 0), 0.5, 0.5
    )
    np.testing.assert_allclose(adv[:, 0], [1.25, 1.0])
    np.testing.assert_allclose(ret[:, 0], [2.25, 3.0])
    adv, _ = compute_sb3_advantages(
        one(1, 1), one(1, 2), one(2, 4), one(1, 0), one(1, 0), one(6, 0), 0.5, 0.5
    )
    np.testing.assert_allclose(adv[:, 0], [3.0, 1.0])


def test_loss_hand_case_pins_sb3_details():
    # ratios r = [1.1, 0.5, 1.5] (old log-prob 0); raw advantages [1, -1, 3]:
    #   mean 1, sample std (ddof=1) sqrt((0+4+4)/2) = 2 -> normalised [0, -1, 1]
    #   (population std would give [0, -0.612, 0.612]).
    # surrogate min(rA, clip(r, 0.8, 1.2)A): [0, min(-0.5, -0.8) = -0.8, min(1.5, 1.2) = 1.2]
    #   policy loss = -(0 - 0.8 + 1.2)/3 = -0.133333
    # value loss = mean((R - V)^2), R = [1, 2, 3], V = [1, 0, 3.5] -> (0 + 4 + 0.25)/3 = 1.416667
    #   (F.mse_loss: no 1/2 factor)
    # entropy [1, 2, 3] -> mean 2; total = -0.133333 + 0.5*1.416667 - 0.01*2 = 0.555
    # approx_kl = mean((r-1) - log r) = (0.0046898 + 0.1931472 + 0.0945349)/3 = 0.0974573
    # clip fraction = |r-1| > 0.2 for 2 of 3 = 0.666667
    f = lambda *x: jnp.asarray(x, jnp.float32)
    loss, aux = compute_ppo_loss(
        log_prob=jnp.log(f(1.1, 0.5, 1.5)),
        entropy=f(1, 2, 3),
        value=f(1, 0, 3.5),
        old_log_prob=f(0, 0, 0),
        advantages=f(1, -1, 3),
        returns=f(1, 2, 3),
        clip_eps=0.2,
        vf_coef=0.5,
        ent_coef=0.01,
    )
    np.testing.assert_allclose(aux["policy_loss"], -0.4 / 3, rtol=1e-6)
    np.testing.assert_allclose(aux["value_loss"], 4.25 / 3, rtol=1e-6)
    np.testing.assert_allclose(aux["entropy"], 2.0, rtol=1e-6)
    np.testing.assert_allclose(loss, 0.555, rtol=1e-5)
    np.testing.assert_allclose(aux["approx_kl"], 0.0974573, rtol=1e-5)
    np.testing.assert_allclose(aux["clip_fraction"], 2 / 3, rtol=1e-6)


def test_obs_norm_matches_numpy_over_all_observations():
    rng = np.random.default_rng(1)
    chunks = [rng.normal(3.0, 2.0, size=(4, 6, 3)) for _ in range(3)]
    state = init_obs_norm(3)
    for x in chunks:
        state = update_obs_norm_stats(state, jnp.asarray(x, jnp.float32))
    allx = np.concatenate([x.reshape(-1, 3) for x in chunks])
    # SB3 RunningMeanStd starts at (mean 0, var 1, count 1e-4); merge that prior exactly.
    n, eps = len(allx), 1e-4
    mean = allx.sum(0) / (n + eps)
    m2 = eps * 1.0 + ((allx - allx.mean(0)) ** 2).sum(0) + allx.mean(0) ** 2 * eps * n / (n + eps)
    np.testing.assert_allclose(state.count, n + eps, rtol=1e-6)
    np.testing.assert_allclose(state.mean, mean, rtol=1e-5)
    np.testing.assert_allclose(state.var, m2 / (n + eps), rtol=1e-4)
    z = normalize_obs(state, jnp.asarray([[100.0, 3.0, -100.0]]), clip=10.0)
    assert float(z[0, 0]) == 10.0 and float(z[0, 2]) == -10.0


def test_sb3_network_init():
    env = TrainingEnv(make("probe/target"), 3)
    ppo = make_ppo(PPOConfig(num_envs=3, num_steps=4, minibatch_size=4), env)
    state = ppo.init(jax.random.PRNGKey(0))
    a = state.actor_params["params"]
    assert [a[f"Dense_{i}"]["kernel"].shape for i in range(3)] == [(2, 64), (64, 64), (64, 2)]
    np.testing.assert_array_equal(a["log_std"], 0.0)
    # Orthogonal with gain sqrt(2): columns of the square hidden kernel have norm sqrt(2);
    # the mean head has gain 0.01 and the value head gain 1.
    np.testing.assert_allclose(
        jnp.linalg.norm(a["Dense_1"]["kernel"], axis=0), math.sqrt(2), rtol=1e-4
    )
    np.testing.assert_allclose(jnp.linalg.norm(a["Dense_2"]["kernel"], axis=0), 0.01, rtol=1e-4)
    c = state.critic_params["params"]
    np.testing.assert_allclose(jnp.linalg.norm(c["Dense_2"]["kernel"]), 1.0, rtol=1e-4)
    assert all(float(jnp.abs(p["bias"]).max()) == 0.0 for p in (a["Dense_0"], c["Dense_0"]))


def test_rollout_fields_clipping_and_truncation_bootstrap():
    # probe/constant: 10-step horizon, obs t/10, reward 1; T=12 crosses one boundary.
    cfg = PPOConfig(num_envs=4, num_steps=12, minibatch_size=16)
    env = TrainingEnv(make("probe/constant"), 4)
    ppo = make_ppo(cfg, env)
    state = ppo.init(jax.random.PRNGKey(0))
    env_state, tr = jax.jit(ppo.rollout)(
        state, env.reset(jax.random.PRNGKey(1)), jax.random.PRNGKey(2)
    )
    assert tr.obs.shape == (12, 4, 1) and tr.action.shape == (12, 4, 1)
    assert tr.log_prob.shape == tr.value.shape == tr.done.shape == (12, 4)
    # env_action is the clipped sample; log_prob belongs to the unclipped one (std 1:
    # some samples fall outside [-1, 1]).
    np.testing.assert_array_equal(tr.env_action, jnp.clip(tr.action, -1, 1))
    assert float(jnp.abs(tr.action).max()) > 1.0
    mean, log_std = ppo_actor(ppo, state, tr.obs)
    np.testing.assert_allclose(
        tr.log_prob, make_distribution(mean, log_std).log_prob(tr.action), rtol=1e-5
    )
    np.testing.assert_array_equal(tr.raw_obs[:10, 0, 0], jnp.arange(10) / 10)
    np.testing.assert_array_equal(tr.done[:, 0], (jnp.arange(12) == 9).astype(jnp.float32))
    np.testing.assert_array_equal(tr.truncation, tr.done)
    # Bootstrap from the pre-reset obs [1.0]; next_value after the reset is V([0.0]).
    v = lambda x: ppo.value(state, jnp.full((4, 1), x))
    np.testing.assert_allclose(tr.bootstrap_value[9], v(1.0), rtol=1e-6)
    np.testing.assert_array_equal(tr.bootstrap_value[:9], 0.0)
    np.testing.assert_allclose(tr.next_value[9], v(0.0), rtol=1e-6)
    np.testing.assert_allclose(tr.next_value[:-1], tr.value[1:])
    np.testing.assert_allclose(tr.next_value[-1], ppo.value(state, env_state.obs), rtol=1e-6)
    np.testing.assert_array_equal(tr.true_reward, 1.0)


def ppo_actor(ppo, state, obs):
    from active_rlhf_jax.ppo import Actor

    return Actor(1).apply(state.actor_params, obs)


def test_update_never_reads_true_reward():
    cfg = PPOConfig(num_envs=4, num_steps=8, minibatch_size=8, update_epochs=2)
    env = TrainingEnv(make("probe/target"), 4)
    ppo = make_ppo(cfg, env)
    state = ppo.init(jax.random.PRNGKey(0))
    _, tr = ppo.rollout(state, env.reset(jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    rewards = jnp.ones((8, 4))
    key = jax.random.PRNGKey(3)
    s1, _ = ppo.update(state, tr, rewards, key)
    s2, _ = ppo.update(state, tr.replace(true_reward=jnp.full((8, 4), jnp.nan)), rewards, key)
    for a, b in zip(jax.tree.leaves(s1), jax.tree.leaves(s2), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(s1.update_step) == 1


@pytest.mark.parametrize("anneal", [False, True])
def test_update_with_traced_coefficients_equals_them_compiled_in(anneal):
    """``update(..., hyper)`` (a sweep's traced PPO step size, clip range and loss
    coefficients, under jit) gives bitwise the update of a learner built with those
    values, with and without the annealed step size."""
    from active_rlhf_jax.config import replace

    env = TrainingEnv(make("probe/target"), 4)
    base = PPOConfig(num_envs=4, num_steps=8, minibatch_size=8, update_epochs=2,
                     anneal_lr=anneal, ent_coef=0.0)
    other = replace(base, learning_rate=1e-3, clip_eps=0.1, vf_coef=0.8, ent_coef=0.01)
    ppo = make_ppo(base, env, num_updates=5)
    state = ppo.init(jax.random.PRNGKey(0))
    _, tr = ppo.rollout(state, env.reset(jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
    rewards = jax.random.normal(jax.random.PRNGKey(4), (8, 4))
    key = jax.random.PRNGKey(3)
    names = ("learning_rate", "clip_eps", "vf_coef", "ent_coef")
    outs = {}
    for label, cfg in (("base", base), ("other", other)):
        hyper = {f"ppo.{n}": jnp.float32(getattr(cfg, n)) for n in names}
        traced = jax.jit(lambda s, h: ppo.update(s, tr, rewards, key, h))(state, hyper)
        own = make_ppo(cfg, env, num_updates=5)
        compiled = jax.jit(lambda s, own=own: own.update(s, tr, rewards, key))(state)
        for a, b in zip(jax.tree.leaves(traced), jax.tree.leaves(compiled), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=label)
        outs[label] = traced[0].actor_params
    assert not all(np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(outs["base"]), jax.tree.leaves(outs["other"])))


def test_act_deterministic_is_the_mean_and_actions_are_clipped():
    x = 0.0
    env = TrainingEnv(make("probe/target"), 2)
    ppo = make_ppo(PPOConfig(num_envs=2, num_steps=2, minibatch_size=2), env)
    state = ppo.init(jax.random.PRNGKey(0))
    obs = jnp.full((2, 2), x)
    a1 = ppo.act(state, obs, jax.random.PRNGKey(1), True)
    a2 = ppo.act(state, obs, jax.random.PRNGKey(2), True)
    np.testing.assert_array_equal(a1, a2)
    s = ppo.act(state, obs, jax.random.PRNGKey(1))
    assert float(jnp.abs(s).max()) <= 1.0 and not np.allclose(s, a1)
