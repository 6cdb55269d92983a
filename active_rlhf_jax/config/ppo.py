"""PPO: the learner's sizes and switches (static) and its scalar hyperparameters (traced).

Defaults are Stable-Baselines3's ``PPO("MlpPolicy")`` defaults as the reference project uses
them, except ``num_envs``/``num_steps``/``minibatch_size`` which presets set
(``configs/ppo_presets.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from active_rlhf_jax.config.base import (
    ConfigError,
    check_choice,
    check_finite,
    check_in_range,
    check_nonnegative,
    check_positive,
    check_positive_int,
    check_sizes,
    option,
    prefix_errors,
)


@dataclass(frozen=True)
class PPOConfig:
    """PPO learner settings (``--ppo.*``)."""

    num_envs: int = option(1, help="environments stepped in parallel per seed.")
    num_steps: int = option(2048, help="rollout length T per environment; a rollout is "
                            "num_envs x num_steps steps.")
    minibatch_size: int = option(64, help="transitions per gradient step (must divide "
                                 "num_envs x num_steps).")
    update_epochs: int = option(10, help="passes over each rollout.")
    actor_hidden: tuple[int, ...] = option((64, 64), help="hidden layer widths of the policy "
                                           "network.")
    critic_hidden: tuple[int, ...] = option((64, 64), help="hidden layer widths of the value "
                                            "network.")
    activation: str = option("tanh", help="hidden-layer activation of both networks: tanh "
                             "(SB3 default) or relu.")
    weight_init: str = option(
        "orthogonal", help="orthogonal (SB3 ortho_init=True) or torch (PyTorch's nn.Linear "
        "default, SB3 ortho_init=False, as the RL-Zoo's tuned locomotion settings use).")
    normalize_obs: bool = option(True, help="running mean/std observation normalisation "
                                 "(SB3 VecNormalize).")
    normalize_reward: bool = option(
        False, help="scale the rewards PPO learns from by the running std of the discounted "
        "return (SB3 VecNormalize norm_reward); logged and taught rewards are never scaled.")
    normalize_advantage: bool = option(True, help="standardise advantages per minibatch.")
    anneal_lr: bool = option(False, help="decay the learning rate linearly to 0 over the run "
                             "(SB3: constant).")

    learning_rate: float = option(3e-4, traced=True, help="Adam step size.")
    gamma: float = option(0.99, traced=True, help="PPO discount factor.")
    gae_lambda: float = option(0.95, traced=True, help="GAE lambda.")
    clip_eps: float = option(0.2, traced=True, help="PPO ratio clipping range.")
    ent_coef: float = option(0.0, traced=True, help="entropy bonus coefficient.")
    vf_coef: float = option(0.5, traced=True, help="value-loss coefficient.")
    max_grad_norm: float = option(0.5, traced=True, help="global gradient-norm clip.")
    adam_eps: float = option(1e-5, traced=True, help="Adam epsilon.")
    obs_clip: float = option(10.0, traced=True, help="normalised observations are clipped to "
                             "[-obs_clip, obs_clip].")
    obs_norm_count_init: float = option(1e-4, traced=True, help="initial count of the "
                                        "observation statistics (SB3 RunningMeanStd 1e-4).")
    obs_norm_eps: float = option(1e-8, traced=True, help="added to the variance before the "
                                 "square root (SB3 VecNormalize 1e-8).")
    log_std_init: float = option(0.0, traced=True, help="initial log standard deviation of "
                                 "the Gaussian policy.")
    reward_clip: float = option(10.0, traced=True, help="scaled rewards are clipped to "
                                "[-reward_clip, reward_clip] (SB3 VecNormalize clip_reward 10).")

    @property
    def batch_size(self) -> int:
        """Transitions per rollout, ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def num_minibatches(self) -> int:
        return self.batch_size // self.minibatch_size

    def validate(self) -> PPOConfig:
        """Raise ConfigError naming the first bad field; returns self for chaining."""
        for name in ("num_envs", "num_steps", "minibatch_size", "update_epochs"):
            check_positive_int(name, getattr(self, name))
        for name in ("actor_hidden", "critic_hidden"):
            check_sizes(name, getattr(self, name))
        for name in ("normalize_obs", "normalize_reward", "normalize_advantage", "anneal_lr"):
            check_choice(name, getattr(self, name), (True, False))
        check_choice("activation", self.activation, ("tanh", "relu"))
        check_choice("weight_init", self.weight_init, ("orthogonal", "torch"))
        if self.batch_size % self.minibatch_size:
            raise ConfigError(
                "minibatch_size",
                f"must divide the batch num_envs*num_steps={self.batch_size}, "
                f"got {self.minibatch_size}",
            )
        if self.normalize_advantage and self.minibatch_size < 2:
            raise ConfigError("minibatch_size", "must be >= 2 with normalize_advantage")
        check_positive("learning_rate", self.learning_rate)
        check_in_range("gamma", self.gamma, 0.0, 1.0)
        check_in_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_positive("clip_eps", self.clip_eps)
        for name in ("ent_coef", "vf_coef"):
            check_nonnegative(name, getattr(self, name))
        for name in ("max_grad_norm", "adam_eps", "obs_clip", "obs_norm_count_init",
                     "obs_norm_eps", "reward_clip"):
            check_positive(name, getattr(self, name))
        check_finite("log_std_init", self.log_std_init)
        return self


@dataclass(frozen=True)
class TrainConfig:
    """Ground-truth PPO run (PPO on the true reward): what ``ppo.make_ppo_train`` consumes."""

    env_id: str = option("HalfCheetah-v5", help="environment id.")
    backend: str = option("auto", help="physics backend: auto, mjx or mujoco.")
    total_timesteps: int = option(1_000_000, help="PPO env steps (whole rollouts: rounded "
                                  "down, at least one).")
    ppo: PPOConfig = option(default_factory=PPOConfig, help="the PPO learner.")
    env_options: tuple = option((), help="extra keyword options for envs.make as "
                                "((name, value), ...) (hashable).")

    @property
    def num_updates(self) -> int:
        """Whole rollouts that fit in ``total_timesteps`` (at least 1)."""
        return max(1, self.total_timesteps // self.ppo.batch_size)

    @property
    def env_steps(self) -> int:
        """Env steps actually taken: ``num_updates * batch_size``."""
        return self.num_updates * self.ppo.batch_size

    def validate(self) -> TrainConfig:
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ConfigError("env_id", f"must be a non-empty string, got {self.env_id!r}")
        check_choice("backend", self.backend, ("auto", "mjx", "mujoco"))
        check_positive_int("total_timesteps", self.total_timesteps)
        if not isinstance(self.ppo, PPOConfig):
            raise ConfigError("ppo", f"must be a PPOConfig, got {type(self.ppo).__name__}")
        prefix_errors("ppo", self.ppo.validate)
        if not isinstance(self.env_options, tuple):
            raise ConfigError("env_options", "must be a tuple of (name, value) pairs")
        return self


