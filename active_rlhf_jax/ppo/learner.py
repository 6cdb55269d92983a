"""``make_ppo(config, env) -> PPO``: a bundle of pure functions over a named ``PPOState``.

The pieces are separable so the RLHF pipeline can relabel rewards between ``rollout`` and
``update``::

    ppo = make_ppo(config, env)             # env: TrainingEnv-compatible, num_envs = B
    state = ppo.init(key_init)
    env_state, tr = ppo.rollout(state, env_state, key_rollout)   # tr: Transition [T, B]
    state = ppo.update_obs_norm(state, tr.raw_obs)
    state, metrics = ppo.update(state, tr, rewards, key_update)  # rewards: [T, B]

Observation normalisation: SB3's ``VecNormalize`` merges every observation into its running
statistics as it is observed. Here the statistics are frozen during a rollout (so one
rollout is normalised consistently and ``rollout`` stays a function of its inputs) and
``update_obs_norm`` merges the rollout's raw pre-step observations afterwards: every
observation is counted once, as in SB3, one rollout later. ``Transition.obs`` holds the
observations as the policy saw them, which is what the update trains on (SB3 stores the
normalised observation in its rollout buffer too).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from active_rlhf_jax.batched_cond import any_in_batch
from active_rlhf_jax.config import ConfigError, PPOConfig, apply_hyper
from active_rlhf_jax.ppo.losses import compute_ppo_loss, compute_sb3_advantages
from active_rlhf_jax.ppo.networks import Actor, Critic, make_distribution
from active_rlhf_jax.ppo.normalizer import (
    ObsNormState,
    RewardNormState,
    init_obs_norm,
    init_reward_norm,
    normalize_obs,
    normalize_rewards,
    update_obs_norm_stats,
)


@struct.dataclass
class PPOState:
    """Everything a PPO learner carries; saved whole (the obs statistics included)."""

    actor_params: dict
    critic_params: dict
    opt_state: optax.OptState
    obs_norm: ObsNormState
    #: discounted-return statistics for ``normalize_reward`` (carried, unused when off).
    reward_norm: RewardNormState
    #: number of completed ``update`` calls (int32 scalar).
    update_step: jax.Array


@struct.dataclass
class Transition:
    """One rollout; every field has leading axes ``[T, B]``.

    Attributes:
        obs: normalised observation the policy acted on ``[T, B, obs]``.
        raw_obs: raw pre-step observation ``[T, B, obs]`` (what a learned reward reads).
        action: unclipped Gaussian sample whose log-prob is stored ``[T, B, act]``.
        env_action: ``action`` clipped to the env bounds, what the env executed.
        log_prob: log-prob of ``action`` under the rollout policy ``[T, B]``.
        value: V(obs_t) ``[T, B]``.
        next_value: V(obs_{t+1}) ``[T, B]``; after a reset this is the new episode's first
            obs, which GAE masks through ``done``.
        done: 1.0 where the step ended the episode (termination or truncation).
        truncation: 1.0 where the step hit the horizon without terminating.
        bootstrap_value: V(final obs before the reset) where ``truncation``, else 0.
        true_reward: the env's reward; read only by the teacher, evaluation and the
            ground-truth baseline, never by ``update``.
    """

    obs: jax.Array
    raw_obs: jax.Array
    action: jax.Array
    env_action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    next_value: jax.Array
    done: jax.Array
    truncation: jax.Array
    bootstrap_value: jax.Array
    true_reward: jax.Array


class PPO(NamedTuple):
    """Pure functions of a PPO learner (see the module docstring for the cycle)."""

    init: Callable
    rollout: Callable
    update: Callable
    update_obs_norm: Callable
    act: Callable
    value: Callable
    config: PPOConfig


def make_ppo(config: PPOConfig, env, num_updates: int | None = None) -> PPO:
    """Build the PPO functions for ``env`` (a ``TrainingEnv`` with ``num_envs`` envs).

    Args:
        config: validated here, before anything is traced.
        env: batched env with ``reset``/``step``, ``observation_size``, ``action_size``,
            ``action_low``/``action_high`` and ``num_envs == config.num_envs``.
        num_updates: needed only with ``config.anneal_lr`` (length of the decay).
    """
    config.validate()
    if getattr(env, "num_envs", config.num_envs) != config.num_envs:
        raise ConfigError(
            "num_envs", f"config has {config.num_envs} but the env batches {env.num_envs}"
        )
    if config.anneal_lr and not num_updates:
        raise ConfigError("anneal_lr", "needs num_updates passed to make_ppo")
    c = config
    obs_size, act_size = env.observation_size, env.action_size
    low = jnp.asarray(env.action_low)
    high = jnp.asarray(env.action_high)
    actor = Actor(act_size, tuple(c.actor_hidden), c.log_std_init, c.activation, c.weight_init)
    critic = Critic(tuple(c.critic_hidden), c.activation, c.weight_init)

    def make_tx(learning_rate):
        """The optimiser at ``learning_rate`` (a float or a traced [] value: a sweep's
        cells share the program); its state's structure does not depend on the value."""
        if c.anneal_lr:
            grad_steps = num_updates * c.update_epochs * c.num_minibatches
            lr = optax.linear_schedule(learning_rate, 0.0, grad_steps)
        else:
            lr = learning_rate
        # One optimiser over both networks, as SB3 (global-norm clipping couples them).
        return optax.chain(optax.clip_by_global_norm(c.max_grad_norm),
                           optax.adam(lr, eps=c.adam_eps))

    tx = make_tx(c.learning_rate)

    def norm(state: PPOState, raw_obs):
        if not c.normalize_obs:
            return raw_obs
        return normalize_obs(state.obs_norm, raw_obs, c.obs_clip, c.obs_norm_eps)

    def init(key: jax.Array) -> PPOState:
        key_actor, key_critic = jax.random.split(key)
        dummy = jnp.zeros((obs_size,), jnp.zeros(()).dtype)
        actor_params = actor.init(key_actor, dummy)
        critic_params = critic.init(key_critic, dummy)
        params = {"actor": actor_params, "critic": critic_params}
        return PPOState(
            actor_params=actor_params,
            critic_params=critic_params,
            opt_state=tx.init(params),
            obs_norm=init_obs_norm(obs_size, c.obs_norm_count_init),
            reward_norm=init_reward_norm(c.num_envs, c.obs_norm_count_init),
            update_step=jnp.zeros((), jnp.int32),
        )

    def value(state: PPOState, raw_obs: jax.Array) -> jax.Array:
        """raw obs ``[..., obs]`` -> V ``[...]`` (normalised with the state's stats)."""
        return critic.apply(state.critic_params, norm(state, raw_obs))

    def act(state: PPOState, raw_obs: jax.Array, key: jax.Array, deterministic: bool = False):
        """raw obs ``[..., obs]`` -> env action ``[..., act]`` clipped to the bounds.

        ``deterministic`` (a Python bool) takes the Gaussian mean instead of a sample.
        """
        mean, log_std = actor.apply(state.actor_params, norm(state, raw_obs))
        if deterministic:
            action = mean
        else:
            action = make_distribution(mean, log_std).sample(seed=key)
        return jnp.clip(action, low, high)

    def rollout(state: PPOState, env_state, key: jax.Array):
        """Collect ``num_steps`` steps from ``num_envs`` envs with the current policy.

        Returns:
            (env_state after the rollout, Transition ``[T, B]``).
        """

        def step(env_state, key_step):
            raw_obs = env_state.obs
            obs = norm(state, raw_obs)
            mean, log_std = actor.apply(state.actor_params, obs)
            dist = make_distribution(mean, log_std)
            action = dist.sample(seed=key_step)
            log_prob = dist.log_prob(action)
            v = critic.apply(state.critic_params, obs)
            env_action = jnp.clip(action, low, high)
            nxt = env.step(env_state, env_action)
            truncation = nxt.info["truncation"]
            # With a fixed horizon every env truncates on the same step; the cond skips
            # the extra critic pass on all other steps, under the seed vmap too
            # (any_in_batch; a seed without truncations multiplies the values by 0 below).
            boot = jax.lax.cond(
                any_in_batch(jnp.any(truncation > 0)),
                lambda o: critic.apply(state.critic_params, norm(state, o)),
                lambda o: jnp.zeros(o.shape[:-1], v.dtype),
                nxt.info["final_obs"],
            )
            tr = Transition(
                obs=obs,
                raw_obs=raw_obs,
                action=action,
                env_action=env_action,
                log_prob=log_prob,
                value=v,
                next_value=v,  # placeholder, shifted below
                done=nxt.done.astype(v.dtype),
                truncation=truncation.astype(v.dtype),
                bootstrap_value=boot * truncation.astype(v.dtype),
                true_reward=nxt.reward.astype(v.dtype),
            )
            return nxt, tr

        keys = jax.random.split(key, c.num_steps)
        env_state, tr = jax.lax.scan(step, env_state, keys)
        last_value = value(state, env_state.obs)
        next_value = jnp.concatenate([tr.value[1:], last_value[None]], axis=0)
        return env_state, tr.replace(next_value=next_value)

    def update_obs_norm(state: PPOState, raw_obs: jax.Array) -> PPOState:
        """Merge raw observations ``[..., obs]`` into the running statistics."""
        if not c.normalize_obs:
            return state
        return state.replace(obs_norm=update_obs_norm_stats(state.obs_norm, raw_obs))

    def loss_fn(params, mb, cc):
        mean, log_std = actor.apply(params["actor"], mb["obs"])
        dist = make_distribution(mean, log_std)
        v = critic.apply(params["critic"], mb["obs"])
        return compute_ppo_loss(
            dist.log_prob(mb["action"]),
            dist.entropy(),
            v,
            mb["log_prob"],
            mb["advantages"],
            mb["returns"],
            cc.clip_eps,
            cc.vf_coef,
            cc.ent_coef,
            c.normalize_advantage,
        )

    def update(state: PPOState, tr: Transition, rewards: jax.Array, key: jax.Array,
               hyper: dict | None = None):
        """``update_epochs`` passes of minibatch SGD over one rollout.

        Args:
            state: learner state.
            tr: the rollout ``[T, B]`` (``tr.true_reward`` is not read).
            rewards: ``[T, B]`` rewards to learn from (true or learned); with
                ``normalize_reward`` they are scaled here by the running std of the
                discounted return (SB3 VecNormalize), and the statistics advance.
            key: PRNG key for the minibatch permutations.
            hyper: traced values of ``ppo.learning_rate``, ``clip_eps``, ``vf_coef``,
                ``ent_coef`` (pipeline/hyper.py; default the config's).

        Returns:
            (new state, metrics dict of scalars).
        """
        cc = apply_hyper(c, hyper, "ppo")
        step_tx = tx if hyper is None else make_tx(cc.learning_rate)
        rewards = rewards.astype(tr.value.dtype)
        reward_norm = state.reward_norm
        if c.normalize_reward:
            reward_norm, rewards = normalize_rewards(
                reward_norm, rewards, tr.done, c.gamma, c.reward_clip, c.obs_norm_eps
            )
        advantages, returns = compute_sb3_advantages(
            rewards,
            tr.value,
            tr.next_value,
            tr.done,
            tr.truncation,
            tr.bootstrap_value,
            c.gamma,
            c.gae_lambda,
        )
        n = c.batch_size
        data = {
            "obs": tr.obs,
            "action": tr.action,
            "log_prob": tr.log_prob,
            "advantages": advantages,
            "returns": returns,
        }
        data = jax.tree.map(lambda x: x.reshape((n,) + x.shape[2:]), data)

        def minibatch_step(carry, mb):
            params, opt_state = carry
            grads, aux = jax.grad(loss_fn, has_aux=True)(params, mb, cc)
            aux["grad_norm"] = optax.global_norm(grads)
            updates, opt_state = step_tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), aux

        def epoch(carry, key_epoch):
            perm = jax.random.permutation(key_epoch, n)
            mbs = jax.tree.map(
                lambda x: x[perm].reshape((c.num_minibatches, c.minibatch_size) + x.shape[1:]),
                data,
            )
            return jax.lax.scan(minibatch_step, carry, mbs)

        params = {"actor": state.actor_params, "critic": state.critic_params}
        (params, opt_state), aux = jax.lax.scan(
            epoch, (params, state.opt_state), jax.random.split(key, c.update_epochs)
        )
        metrics = jax.tree.map(jnp.mean, aux)
        # Last-epoch KL/clip fraction are what SB3 logs; keep both views.
        metrics["approx_kl_last_epoch"] = jnp.mean(aux["approx_kl"][-1])
        res = returns - tr.value
        metrics["explained_variance"] = 1.0 - jnp.var(res) / (jnp.var(returns) + 1e-12)
        metrics["log_std"] = jnp.mean(params["actor"]["params"]["log_std"])
        if c.normalize_reward:
            metrics["reward_scale"] = jnp.sqrt(reward_norm.stats.var[0] + c.obs_norm_eps)
        new_state = state.replace(
            reward_norm=reward_norm,
            actor_params=params["actor"],
            critic_params=params["critic"],
            opt_state=opt_state,
            update_step=state.update_step + 1,
        )
        return new_state, metrics

    return PPO(
        init=init,
        rollout=rollout,
        update=update,
        update_obs_norm=update_obs_norm,
        act=act,
        value=value,
        config=config,
    )
