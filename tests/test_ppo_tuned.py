"""The tuned-PPO pieces: VecNormalize reward scaling, PyTorch init, ReLU, presets, anneal_lr."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.config import ConfigError, PPOConfig
from active_rlhf_jax.envs import TrainingEnv, make
from active_rlhf_jax.ppo import init_reward_norm, make_ppo, normalize_rewards


def _vecnormalize_oracle(rewards, dones, gamma, clip, eps=1e-8, count=1e-4):
    """SB3 VecNormalize's reward path as a float64 Python loop (RunningMeanStd per step)."""
    T, B = rewards.shape
    mean, var = 0.0, 1.0
    ret = np.zeros(B)
    out = np.zeros((T, B))
    for t in range(T):
        ret = ret * gamma + rewards[t]
        bm, bv, bc = ret.mean(), ret.var(), B
        delta = bm - mean
        tot = count + bc
        mean = mean + delta * bc / tot
        var = (var * count + bv * bc + delta**2 * count * bc / tot) / tot
        count = tot
        out[t] = np.clip(rewards[t] / np.sqrt(var + eps), -clip, clip)
        ret[dones[t] > 0] = 0.0
    return out, var, count


def test_reward_normalisation_matches_the_vecnormalize_loop():
    rng = np.random.default_rng(0)
    T, B = 37, 5
    rewards = rng.normal(3.0, 2.0, (T, B))
    dones = (rng.random((T, B)) < 0.08).astype(float)
    want, var, count = _vecnormalize_oracle(rewards, dones, 0.99, 10.0)
    state, got = jax.jit(normalize_rewards, static_argnums=(3, 4))(
        init_reward_norm(B), jnp.asarray(rewards), jnp.asarray(dones), 0.99, 10.0
    )
    np.testing.assert_allclose(got, want, rtol=2e-5)
    np.testing.assert_allclose(state.stats.var[0], var, rtol=2e-5)
    np.testing.assert_allclose(state.stats.count, count, rtol=1e-6)
    # Returns restart where an episode ended.
    d = np.asarray(dones)
    assert np.all(np.asarray(state.discounted)[d[-1] > 0] == 0.0)


def test_reward_clip_is_applied():
    # One huge reward after small ones. Its return enters the statistics first, so unclipped
    # it scales to 2.683 (the float64 loop's value); a clip of 2 caps it, one of 3 does not.
    r = np.zeros((6, 2))
    r[:5] = 0.01
    r[5] = 1e6
    want, _, _ = _vecnormalize_oracle(r, np.zeros((6, 2)), 0.9, 100.0)
    assert want[5, 0] == pytest.approx(2.6833, abs=1e-3)
    for clip, expect in ((2.0, 2.0), (3.0, want[5, 0])):
        _, scaled = normalize_rewards(
            init_reward_norm(2), jnp.asarray(r), jnp.zeros((6, 2)), 0.9, clip
        )
        np.testing.assert_allclose(scaled[5], expect, rtol=1e-5)


def test_update_uses_scaled_rewards_and_carries_the_statistics():
    cfg = PPOConfig(num_envs=4, num_steps=8, minibatch_size=8, update_epochs=1)
    env = TrainingEnv(make("probe/target"), 4)
    key = jax.random.PRNGKey(3)
    rewards = jnp.full((8, 4), 50.0)
    results = {}
    for norm in (False, True):
        ppo = make_ppo(dataclasses.replace(cfg, normalize_reward=norm), env)
        state = ppo.init(jax.random.PRNGKey(0))
        _, tr = ppo.rollout(state, env.reset(jax.random.PRNGKey(1)), jax.random.PRNGKey(2))
        results[norm] = ppo.update(state, tr, rewards, key)
    (s_off, m_off), (s_on, m_on) = results[False], results[True]
    # Off: the statistics stay at their initial values; on: 8 steps x 4 envs merged.
    assert float(s_off.reward_norm.stats.count) == pytest.approx(1e-4)
    assert float(s_on.reward_norm.stats.count) == pytest.approx(32 + 1e-4)
    assert "reward_scale" in m_on and "reward_scale" not in m_off
    # The value targets are on the scaled reward: far smaller value loss than on raw 50s.
    assert float(m_on["value_loss"]) < 0.1 * float(m_off["value_loss"])


def test_torch_init_and_relu():
    cfg = PPOConfig(num_envs=2, num_steps=4, minibatch_size=4, actor_hidden=(256, 256),
                    critic_hidden=(256, 256), activation="relu", weight_init="torch",
                    log_std_init=-2.0)
    env = TrainingEnv(make("probe/target"), 2)
    ppo = make_ppo(cfg, env)
    state = ppo.init(jax.random.PRNGKey(0))
    a = state.actor_params["params"]
    np.testing.assert_array_equal(a["log_std"], -2.0)
    for layer, fan_in in (("Dense_0", 2), ("Dense_1", 256), ("Dense_2", 256)):
        w, b = np.asarray(a[layer]["kernel"]), np.asarray(a[layer]["bias"])
        bound = 1.0 / math.sqrt(fan_in)
        # PyTorch nn.Linear: weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(b).max() > 0.0
    # Uniform on +-1/sqrt(256): std = 1/sqrt(3*256) = 0.0361 (65,536 draws: +-1%).
    assert np.std(a["Dense_1"]["kernel"]) == pytest.approx(1 / math.sqrt(3 * 256), rel=0.01)
    # ReLU: hidden activations are never negative -> with a zero input and positive biases
    # the first layer passes exactly relu(bias).
    from active_rlhf_jax.ppo import Actor

    actor = Actor(2, (256, 256), -2.0, "relu", "torch")
    h = jax.nn.relu(a["Dense_0"]["bias"])
    want = jax.nn.relu(h @ a["Dense_1"]["kernel"] + a["Dense_1"]["bias"])
    want = want @ a["Dense_2"]["kernel"] + a["Dense_2"]["bias"]
    mean, _ = actor.apply(state.actor_params, jnp.zeros((2,)))
    np.testing.assert_allclose(mean, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "field, value", [("activation", "gelu"), ("weight_init", "xavier"), ("reward_clip", 0.0),
                     ("normalize_reward", "yes")]
)
def test_new_fields_are_validated(field, value):
    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(PPOConfig(), **{field: value}).validate()


def tuned_ppo_shape(env_id, num_envs):
    from configs.ppo_presets import tuned_ppo

    c = tuned_ppo(env_id, num_envs)
    return c.num_envs, c.num_steps


def test_tuned_presets():
    from configs.ppo_presets import tuned
    from configs.presets import get_preset

    c = tuned("HalfCheetah-v5").ppo
    assert (c.num_envs, c.num_steps, c.minibatch_size, c.update_epochs) == (8, 64, 64, 20)
    assert (c.learning_rate, c.gamma, c.gae_lambda, c.clip_eps) == (2.0633e-05, 0.98, 0.92, 0.1)
    assert c.normalize_reward and c.normalize_obs and c.activation == "relu"
    assert tuned("Hopper-v5").env_options == (("terminate_when_unhealthy", True),)
    h = tuned("Hopper-v5").ppo
    assert (h.num_envs, h.num_steps, h.minibatch_size, h.update_epochs) == (1, 2048, 64, 10)
    assert (h.learning_rate, h.gamma, h.gae_lambda, h.clip_eps, h.log_std_init) == (
        3e-4, 0.99, 0.95, 0.2, 0.0)
    assert h.anneal_lr and h.normalize_reward and h.activation == "tanh"
    assert h.actor_hidden == (64, 64) and h.weight_init == "orthogonal"
    assert tuned_ppo_shape("Hopper-v5", 2) == (2, 1024)
    # the RL-Zoo's settings, the tuned preset of Hopper and Walker2d before 2026-12-02
    from configs.ppo_presets import rl_zoo

    z = rl_zoo("Hopper-v5")
    assert z.env_options == (("terminate_when_unhealthy", True),)
    assert (z.ppo.num_envs, z.ppo.num_steps, z.ppo.minibatch_size, z.ppo.update_epochs) == (
        8, 64, 32, 5)
    assert (z.ppo.learning_rate, z.ppo.gamma, z.ppo.log_std_init) == (9.80828e-05, 0.999, -2.0)
    assert rl_zoo("HalfCheetah-v5").ppo == c  # HalfCheetah's tuned preset is the RL-Zoo's
    assert tuned("HalfCheetah-v5").env_options == ()
    p = get_preset("hopper+results+bald-info").validate()
    assert p.env.env_id == "Hopper-v5" and p.env.terminate_when_unhealthy
    assert p.ppo == tuned("Hopper-v5").ppo
    assert (p.run.total_ppo_timesteps, p.run.budget) == (1_000_000, 400)
    assert p.teacher.rating_range == (-20.0, 200.0)
    w = get_preset("walker+tuned").validate()
    assert w.env.env_id == "Walker2d-v5" and w.ppo == h
    assert w.run.total_ppo_timesteps == 5_000_000  # tuned alone changes only PPO
    with pytest.raises(ConfigError, match="preset"):
        get_preset("smoke+tuned")
    with pytest.raises(ConfigError, match="env_id"):
        tuned("Swimmer-v5")
    with pytest.raises(ConfigError, match="num_envs"):
        tuned("Hopper-v5", num_envs=3)


def test_anneal_lr_builds_inside_the_pipeline():
    # It used to raise ConfigError("anneal_lr", "needs num_updates") in make_train.
    from active_rlhf_jax.config import replace
    from active_rlhf_jax.pipeline.train import make_train
    from configs.presets import get_preset

    cfg = replace(get_preset("smoke"), **{"ppo.anneal_lr": True}).validate()
    make_train(cfg)


def test_ppo_quality_one_factor_changes():
    """benchmarks/ppo_quality.py --ppo-set: each value parsed as the field's own type; a
    field that does not exist or a value of the wrong type exits naming it."""
    from benchmarks.ppo_quality import _with_ppo_changes

    base = PPOConfig()
    got = _with_ppo_changes(base, ["log_std_init=0", "normalize_reward=false",
                                   "actor_hidden=64,64", "num_envs=4"])
    assert (got.log_std_init, got.normalize_reward, got.actor_hidden, got.num_envs) == (
        0.0, False, (64, 64), 4)
    assert dataclasses.replace(got, log_std_init=base.log_std_init, normalize_reward=base.normalize_reward,
                               actor_hidden=base.actor_hidden, num_envs=base.num_envs) == base
    for bad, word in (("log_std=0", "log_std"), ("num_envs=2.5", "num_envs"),
                      ("normalize_reward=yes", "normalize_reward"), ("gamma", "gamma")):
        with pytest.raises(SystemExit, match=word):
            _with_ppo_changes(base, [bad])
