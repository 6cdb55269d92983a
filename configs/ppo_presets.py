"""PPO presets, each a ``dataclasses.replace`` on the defaults.

* ``sb3``: the reference project's Stable-Baselines3 settings (seed_spec section 13):
  1 env x 2048 steps, minibatch 64, 10 epochs, ent_coef 0.01, constant lr 3e-4
  (Swimmer 2.5e-4, Reacher 1e-4).
* ``parallel``: for accelerators: 256 envs x 8-step unrolls (2048 transitions per
  update, as one SB3 rollout), minibatch 256, 10 epochs, no entropy bonus, learning rate
  twice the reference's per-env value (6e-4 for HalfCheetah) linearly annealed. Measured
  on HalfCheetah-v5 at 1M steps (4 seeds, docs/benchmarks.md): 2,237 against 1,697 for
  ``sb3``. The first version (32-step unrolls, minibatch 1024, lr 3e-4) reached only
  ~690 at 762k steps: with 8192 transitions per update it makes 4x fewer updates.
* ``tuned``: PPO tuned per locomotion task (``TUNED_TASKS``). HalfCheetah: the RL-Zoo's
  published settings (ReLU 256-256 networks with PyTorch's default init, initial log-std
  -2, observation *and* reward normalisation, its gamma, GAE lambda, clip range, learning
  rate, epochs and minibatch size), the rollout spread over 8 parallel envs x 64 steps:
  the same 512 transitions per update, so each update sees as many samples and takes as
  many gradient steps as the single-env original. Hopper and Walker2d: the PPO paper's
  MuJoCo settings with observation and reward normalisation (``MUJOCO_PPO``), 1 env x
  2,048 steps; the RL-Zoo's settings stood still there (docs/results.md).
* ``rl-zoo``: the RL-Zoo's settings for all three tasks on 8 x 64 steps (the ``tuned``
  preset of Hopper and Walker2d before 2026-12-02).
"""

from __future__ import annotations

import dataclasses

from active_rlhf_jax.config import PPOConfig, TrainConfig

#: Per-task learning rate of the reference (``PPO_LR`` in its configs).
SB3_LEARNING_RATES = {"Swimmer-v5": 2.5e-4, "Reacher-v5": 1e-4}

SB3_PPO = dataclasses.replace(
    PPOConfig(),
    num_envs=1,
    num_steps=2048,
    minibatch_size=64,
    update_epochs=10,
    ent_coef=0.01,
    learning_rate=3e-4,
)

PARALLEL_PPO = dataclasses.replace(
    SB3_PPO,
    num_envs=256,
    num_steps=8,
    minibatch_size=256,
    update_epochs=10,
    ent_coef=0.0,
    anneal_lr=True,
)
#: The parallel preset's learning rate relative to the reference's (minibatches 4x larger).
PARALLEL_LR_FACTOR = 2.0


def _lr(env_id: str) -> float:
    return SB3_LEARNING_RATES.get(env_id, 3e-4)


def sb3(env_id: str = "HalfCheetah-v5", total_timesteps: int = 1_000_000, **kw) -> TrainConfig:
    """The reference's SB3 PPO on ``env_id``; ``kw`` overrides TrainConfig fields."""
    ppo = dataclasses.replace(SB3_PPO, learning_rate=_lr(env_id))
    return TrainConfig(env_id=env_id, total_timesteps=total_timesteps, ppo=ppo, **kw)


def parallel(env_id: str = "HalfCheetah-v5", total_timesteps: int = 1_000_000, **kw) -> TrainConfig:
    """Many envs, short unrolls, large minibatches (accelerator throughput)."""
    ppo = dataclasses.replace(PARALLEL_PPO, learning_rate=PARALLEL_LR_FACTOR * _lr(env_id))
    return TrainConfig(env_id=env_id, total_timesteps=total_timesteps, ppo=ppo, **kw)


PRESETS = {"sb3": sb3, "parallel": parallel}


#: Per-task settings of the RL-Zoo's tuned PPO (hyperparams/ppo.yml, the v3 entries), with
#: ReLU 256-256 networks, PyTorch's init, initial log-std -2 and observation and reward
#: normalisation (``RL_ZOO_COMMON``), on 1 env x 512 steps per update in the original.
RL_ZOO_TASKS = {
    "HalfCheetah": dict(
        gamma=0.98, gae_lambda=0.92, learning_rate=2.0633e-05, ent_coef=0.000401762,
        clip_eps=0.1, update_epochs=20, minibatch_size=64, max_grad_norm=0.8, vf_coef=0.58096,
    ),
    "Hopper": dict(
        gamma=0.999, gae_lambda=0.99, learning_rate=9.80828e-05, ent_coef=0.00229519,
        clip_eps=0.2, update_epochs=5, minibatch_size=32, max_grad_norm=0.7, vf_coef=0.835671,
    ),
    "Walker2d": dict(
        gamma=0.99, gae_lambda=0.95, learning_rate=5.05041e-05, ent_coef=0.000585045,
        clip_eps=0.1, update_epochs=20, minibatch_size=32, max_grad_norm=1.0, vf_coef=0.871923,
    ),
}
RL_ZOO_COMMON = dict(
    actor_hidden=(256, 256),
    critic_hidden=(256, 256),
    activation="relu",
    weight_init="torch",
    log_std_init=-2.0,
    normalize_obs=True,
    normalize_reward=True,
    anneal_lr=False,
)
#: The RL-Zoo's settings for every task on 8 x 64 steps: the ``tuned`` preset for Hopper
#: and Walker2d until 2026-12-02 (the rows of docs/results.md's learner table that stand
#: still or fall), kept for those comparisons.
RL_ZOO = {task: ({**RL_ZOO_COMMON, **kw}, 512, 8) for task, kw in RL_ZOO_TASKS.items()}
#: The PPO paper's MuJoCo settings (Schulman et al. 2017: 2,048 steps per update, 10
#: epochs of minibatches of 64, Adam 3e-4 annealed linearly, gamma 0.99, GAE lambda 0.95,
#: clip 0.2, 64-64 tanh networks) with orthogonal init, a state-independent log-std from 0,
#: gradient clip 0.5 and observation and reward normalisation, as CleanRL's
#: ppo_continuous_action runs them. On Hopper-v5 with termination the RL-Zoo settings stood
#: still in 4 of 5 seeds at 1M steps whatever the rollout shape (docs/results.md); these
#: hop (design key 7: 3,317 [2,981, 3,654] in Gymnasium's evaluation).
MUJOCO_PPO = dict(
    actor_hidden=(64, 64),
    critic_hidden=(64, 64),
    activation="tanh",
    weight_init="orthogonal",
    log_std_init=0.0,
    normalize_obs=True,
    normalize_reward=True,
    anneal_lr=True,
    learning_rate=3e-4,
    gamma=0.99,
    gae_lambda=0.95,
    clip_eps=0.2,
    ent_coef=0.0,
    vf_coef=0.5,
    max_grad_norm=0.5,
    update_epochs=10,
    minibatch_size=64,
)
#: The tuned preset per task: (settings, transitions per update, parallel envs). HalfCheetah
#: keeps the RL-Zoo's settings (5,510 on fresh keys in the pipeline, docs/results.md) on
#: 8 x 64 steps, the same 512 transitions and gradient steps per update as the single-env
#: original; Hopper and Walker2d run ``MUJOCO_PPO`` on its own single-env shape, 1 x 2,048.
TUNED_TASKS = {
    "HalfCheetah": RL_ZOO["HalfCheetah"],
    "Hopper": (MUJOCO_PPO, 2048, 1),
    "Walker2d": (MUJOCO_PPO, 2048, 1),
}


def _task_ppo(table: dict, env_id: str, num_envs: int | None, preset: str) -> PPOConfig:
    from active_rlhf_jax.config import ConfigError

    task = env_id.split("-")[0]
    if task not in table:
        raise ConfigError(
            "env_id", f"the {preset} PPO preset covers {sorted(table)}, got {env_id!r}"
        )
    settings, batch, default_envs = table[task]
    num_envs = default_envs if num_envs is None else num_envs
    if batch % num_envs:
        raise ConfigError("num_envs", f"must divide {batch}, got {num_envs}")
    return dataclasses.replace(PPOConfig(), num_envs=num_envs, num_steps=batch // num_envs,
                               **settings)


def tuned_ppo(env_id: str, num_envs: int | None = None) -> PPOConfig:
    """The tuned PPOConfig for ``env_id`` (HalfCheetah, Hopper or Walker2d, any version);
    ``num_envs`` (a divisor of the task's transitions per update) defaults to the task's
    entry of ``TUNED_TASKS``."""
    return _task_ppo(TUNED_TASKS, env_id, num_envs, "tuned")


def rl_zoo_ppo(env_id: str, num_envs: int | None = None) -> PPOConfig:
    """The RL-Zoo's tuned PPOConfig for ``env_id`` on ``num_envs`` (default 8) x 512/N."""
    return _task_ppo(RL_ZOO, env_id, num_envs, "rl-zoo")


#: Tasks with a health check: the tuned preset keeps Gymnasium's default termination there.
HEALTH_CHECKED = ("Hopper", "Walker2d", "Ant")


def _with_termination(env_id: str, kw: dict) -> dict:
    """Hopper and Walker2d run with Gymnasium's default ``terminate_when_unhealthy=True``
    (our envs default to the reference's False), as the published settings were trained."""
    if env_id.split("-")[0] in HEALTH_CHECKED and "env_options" not in kw:
        kw["env_options"] = (("terminate_when_unhealthy", True),)
    return kw


def _train_preset(ppo_of, doc: str):
    """A ``(env_id, total_timesteps, num_envs, **kw) -> TrainConfig`` preset around the
    PPOConfig builder ``ppo_of(env_id, num_envs)``."""

    def preset(
        env_id: str = "HalfCheetah-v5",
        total_timesteps: int = 1_000_000,
        num_envs: int | None = None,
        **kw,
    ) -> TrainConfig:
        kw = _with_termination(env_id, kw)
        return TrainConfig(
            env_id=env_id, total_timesteps=total_timesteps, ppo=ppo_of(env_id, num_envs), **kw
        )

    preset.__doc__ = doc
    return preset


tuned = _train_preset(
    tuned_ppo, """The tuned PPO on ``env_id`` (``TUNED_TASKS``); ``num_envs`` overrides the
    task's parallel envs (a divisor of its transitions per update).""")
rl_zoo = _train_preset(
    rl_zoo_ppo, """The RL-Zoo's tuned PPO on ``env_id`` on 8 parallel envs (``num_envs``: a
    divisor of 512, e.g. 1 for the RL-Zoo's own single-env shape).""")


PRESETS["tuned"] = tuned
PRESETS["rl-zoo"] = rl_zoo
