"""Bad PPO configs fail on the host with the field named, before anything compiles."""

import dataclasses
import math

import jax
import pytest

from active_rlhf_jax.config import ConfigError, PPOConfig, TrainConfig
from active_rlhf_jax.envs import TrainingEnv, make
from active_rlhf_jax.ppo import make_ppo, make_ppo_train
from configs.ppo_presets import PRESETS, parallel, sb3


@pytest.mark.parametrize(
    "field,value",
    [
        ("num_envs", 0),
        ("num_steps", -5),
        ("minibatch_size", 0),
        ("update_epochs", 0),
        ("num_envs", 2.0),
        ("learning_rate", math.nan),
        ("learning_rate", -1e-3),
        ("gamma", math.nan),
        ("gae_lambda", 1.5),
        ("clip_eps", math.inf),
        ("ent_coef", math.nan),
        ("vf_coef", -0.5),
        ("max_grad_norm", 0.0),
        ("adam_eps", math.nan),
        ("obs_clip", -1.0),
        ("actor_hidden", ()),
    ],
)
def test_bad_field_is_named(field, value):
    cfg = dataclasses.replace(
        PPOConfig(num_envs=4, num_steps=8, minibatch_size=8), **{field: value}
    )
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert e.value.field == field and str(e.value).startswith(f"{field}: ")


def test_hidden_size_entry_is_named():
    with pytest.raises(ConfigError, match=r"critic_hidden\[1\]"):
        PPOConfig(critic_hidden=(64, 0)).validate()


def test_minibatch_must_divide_batch():
    with pytest.raises(
        ConfigError, match="minibatch_size: must divide the batch num_envs\\*num_steps=24"
    ):
        PPOConfig(num_envs=3, num_steps=8, minibatch_size=16).validate()


def test_errors_come_before_any_compile(monkeypatch):
    def no_trace(*a, **k):  # any jit/trace would call into jax.jit or jax.lax.scan
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(jax, "jit", no_trace)
    monkeypatch.setattr(jax.lax, "scan", no_trace)
    bad = TrainConfig(env_id="probe/target", ppo=PPOConfig(learning_rate=math.nan))
    with pytest.raises(ConfigError, match=r"^ppo\.learning_rate: "):
        make_ppo_train(bad)
    with pytest.raises(ConfigError, match=r"^minibatch_size: "):
        make_ppo(
            PPOConfig(num_envs=2, num_steps=3, minibatch_size=4),
            TrainingEnv(make("probe/target"), 2),
        )
    with pytest.raises(ConfigError, match=r"^num_envs: "):
        make_ppo(
            PPOConfig(num_envs=2, num_steps=4, minibatch_size=4),
            TrainingEnv(make("probe/target"), 3),
        )
    with pytest.raises(ConfigError, match=r"^total_timesteps: "):
        make_ppo_train(TrainConfig(env_id="probe/target", total_timesteps=0))


def test_presets_match_the_reference_and_validate():
    for name, preset in PRESETS.items():
        # tuned and rl-zoo cover the three tasks they have settings for
        # (tests/test_ppo_tuned.py).
        ids = (("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5") if name in ("tuned", "rl-zoo")
               else ("HalfCheetah-v5", "Swimmer-v5", "Reacher-v5"))
        for env_id in ids:
            preset(env_id).validate()
    p = sb3().ppo
    assert (p.num_envs, p.num_steps, p.minibatch_size, p.update_epochs) == (1, 2048, 64, 10)
    assert (p.ent_coef, p.learning_rate, p.gamma, p.gae_lambda, p.clip_eps) == (
        0.01,
        3e-4,
        0.99,
        0.95,
        0.2,
    )
    assert (p.vf_coef, p.max_grad_norm, p.adam_eps, p.obs_clip) == (0.5, 0.5, 1e-5, 10.0)
    assert not p.anneal_lr and p.normalize_obs and p.actor_hidden == p.critic_hidden == (64, 64)
    assert sb3("Swimmer-v5").ppo.learning_rate == 2.5e-4
    assert sb3("Reacher-v5").ppo.learning_rate == 1e-4
    q = parallel().ppo
    assert q.num_envs >= 256 and q.num_steps == 8 and q.minibatch_size == 256
    assert q.learning_rate == 6e-4 and q.anneal_lr and parallel("Reacher-v5").ppo.learning_rate == 2e-4
    assert sb3(total_timesteps=1_000_000).num_updates == 488  # 999,424 env steps
