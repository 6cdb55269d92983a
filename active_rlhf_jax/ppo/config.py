"""PPO configuration: shape-fixing sizes (static) and scalar hyperparameters (floats).

Defaults are Stable-Baselines3's ``PPO("MlpPolicy")`` defaults as the reference project uses
them (seed_spec section 13), except ``num_envs``/``num_steps``/``minibatch_size`` which
presets set (``configs/ppo_presets.py``). Derived sizes are properties, never stored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from active_rlhf_jax.config_utils import (
    ConfigError,
    check_choice,
    check_finite,
    check_in_range,
    check_nonnegative,
    check_positive,
    check_positive_int,
    prefix_errors,
)


@dataclass(frozen=True)
class PPOConfig:
    """PPO learner settings.

    Static (fix shapes / trace structure): ``num_envs``, ``num_steps`` (rollout length T),
    ``minibatch_size``, ``update_epochs``, ``actor_hidden``, ``critic_hidden``,
    ``activation``, ``weight_init``, ``normalize_obs``, ``normalize_reward``,
    ``normalize_advantage``, ``anneal_lr``.
    Floats: everything else.

    Attributes:
        num_envs: environments stepped in parallel per seed.
        num_steps: rollout length T per environment; a rollout is num_envs x num_steps steps.
        minibatch_size: transitions per gradient step (must divide num_envs x num_steps).
        update_epochs: passes over each rollout.
        actor_hidden: hidden layer widths of the policy network.
        critic_hidden: hidden layer widths of the value network.
        activation: hidden-layer activation of both networks, tanh (SB3 default) or relu.
        weight_init: orthogonal (SB3 ortho_init=True) or torch (PyTorch's nn.Linear default,
            SB3 ortho_init=False, as the RL-Zoo's tuned locomotion settings use).
        normalize_obs: running mean/std observation normalisation (SB3 VecNormalize).
        normalize_reward: scale the rewards PPO learns from by the running std of the
            discounted return (SB3 VecNormalize norm_reward); logged and taught rewards are
            never scaled.
        normalize_advantage: standardise advantages per minibatch.
        anneal_lr: decay the learning rate linearly to 0 over the run (SB3: constant).
        learning_rate: Adam step size.
        gamma: discount factor.
        gae_lambda: GAE lambda.
        clip_eps: PPO ratio clipping range.
        ent_coef: entropy bonus coefficient.
        vf_coef: value-loss coefficient.
        max_grad_norm: global gradient-norm clip.
        adam_eps: Adam epsilon.
        obs_clip: normalised observations are clipped to [-obs_clip, obs_clip].
        obs_norm_count_init: initial count of the observation statistics (SB3 1e-4).
        obs_norm_eps: added to the variance before the square root (SB3 1e-8).
        log_std_init: initial log standard deviation of the Gaussian policy.
        reward_clip: scaled rewards are clipped to [-reward_clip, reward_clip] (SB3 10).
    """

    num_envs: int = 1
    num_steps: int = 2048
    minibatch_size: int = 64
    update_epochs: int = 10
    actor_hidden: tuple[int, ...] = (64, 64)
    critic_hidden: tuple[int, ...] = (64, 64)
    #: Hidden-layer activation of both networks: "tanh" (SB3 default) or "relu".
    activation: str = "tanh"
    #: Weight init: "orthogonal" (SB3 ortho_init=True) or "torch" (PyTorch's nn.Linear
    #: default, SB3 ortho_init=False, as the RL-Zoo tuned locomotion settings use).
    weight_init: str = "orthogonal"
    normalize_obs: bool = True
    #: SB3 VecNormalize(norm_reward=True): scale the rewards PPO learns from by the running
    #: std of the discounted return (never the rewards logged or shown to the teacher).
    normalize_reward: bool = False
    normalize_advantage: bool = True
    #: Linear learning-rate decay to 0 over ``num_updates`` (SB3 default: constant).
    anneal_lr: bool = False

    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    adam_eps: float = 1e-5
    obs_clip: float = 10.0
    #: SB3 ``RunningMeanStd(epsilon=1e-4)``: initial count of the obs statistics.
    obs_norm_count_init: float = 1e-4
    #: SB3 ``VecNormalize(epsilon=1e-8)``: added to the variance before the sqrt.
    obs_norm_eps: float = 1e-8
    log_std_init: float = 0.0
    #: VecNormalize(clip_reward=10): scaled rewards are clipped to +-reward_clip.
    reward_clip: float = 10.0

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
            sizes = getattr(self, name)
            if not isinstance(sizes, tuple) or not sizes:
                raise ConfigError(name, f"must be a non-empty tuple of ints, got {sizes!r}")
            for i, h in enumerate(sizes):
                check_positive_int(f"{name}[{i}]", h)
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
        for name in (
            "max_grad_norm",
            "adam_eps",
            "obs_clip",
            "obs_norm_count_init",
            "obs_norm_eps",
            "reward_clip",
        ):
            check_positive(name, getattr(self, name))
        check_finite("log_std_init", self.log_std_init)
        return self


@dataclass(frozen=True)
class TrainConfig:
    """Ground-truth PPO run (PPO on the true reward): what ``make_train`` consumes."""

    env_id: str = "HalfCheetah-v5"
    backend: str = "auto"
    total_timesteps: int = 1_000_000
    ppo: PPOConfig = dataclasses.field(default_factory=PPOConfig)
    #: Extra keyword options for ``envs.make`` as ``((name, value), ...)`` (hashable).
    env_options: tuple = ()

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
