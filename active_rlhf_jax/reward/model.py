"""Per-step reward network (MLP, optional variance head) and its posterior.

The network is written as plain functions over a params dict rather than a Flax module
because MC-dropout posterior samples need explicit control of the masks: one mask per
layer per sample, shared by every clip and step of that sample (a coherent function
draw), or the reference's independent elementwise masks under ``compat``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from active_rlhf_jax.config import CompatConfig, RewardModelConfig
from active_rlhf_jax.reward import likelihoods as lik
from active_rlhf_jax.reward.posterior import ClipPosterior, compute_clip_posterior

LEAKY_SLOPE = 0.01


class RewardModel(NamedTuple):
    """Pure functions of the reward model. ``params`` has a leading [M] axis for ensembles.

    Attributes:
        init: ``init(key) -> params``.
        step_reward: ``step_reward(params, obs [..., o], act [..., a]) -> [...]`` mean head,
            dropout off, ensemble mean over members (relabels PPO rollouts).
        clip_posterior: ``clip_posterior(params, key, obs [N, L, o], act [N, L, a],
            num_samples) -> ClipPosterior`` with S = num_samples (MC dropout) or S = M
            (ensemble; num_samples is ignored). num_samples must be static.
        init_member: ``init_member(key) -> member params`` (no member axis).
        apply: ``apply(member_params, obs [..., o], act [..., a], dropout_key=None)
            -> (mu [...], var [...])``; elementwise training dropout when a key is given;
            ``var`` is zeros without a variance head (``config.has_variance_head``).
        config, compat: the configs it was built from.
    """

    init: Callable
    step_reward: Callable
    clip_posterior: Callable
    init_member: Callable
    apply: Callable
    config: RewardModelConfig
    compat: CompatConfig


def _linear_init(key: jax.Array, fan_in: int, fan_out: int) -> dict:
    # PyTorch nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
    bound = 1.0 / jnp.sqrt(fan_in)
    kw, kb = jax.random.split(key)
    return {
        "w": jax.random.uniform(kw, (fan_in, fan_out), jnp.float32, -bound, bound),
        "b": jax.random.uniform(kb, (fan_out,), jnp.float32, -bound, bound),
    }


def make_reward_model(config: RewardModelConfig, obs_size: int, act_size: int,
                      compat: CompatConfig = CompatConfig()) -> RewardModel:
    """Build the reward model's pure functions.

    Args:
        config: validated here.
        obs_size, act_size: per-step input sizes (input = concat(obs, act), raw).
        compat: reference switches (``elementwise_dropout``, ``undiscounted_rating_target``).
    """
    config.validate()
    compat.validate()
    cfg = config
    sizes = (obs_size + act_size,) + tuple(cfg.hidden)
    p = float(cfg.dropout)
    ensemble = cfg.posterior == "ensemble"
    # The variance head exists only where a loss trains it: the ordinal likelihood reads
    # no per-step variance, so a head there would get no gradient and its output would be
    # noise reported as a posterior quantity.
    var_head = cfg.has_variance_head

    def init_member(key: jax.Array) -> dict:
        keys = jax.random.split(key, len(cfg.hidden) + 2)
        params: dict[str, Any] = {
            "layers": [_linear_init(keys[i], sizes[i], sizes[i + 1]) for i in range(len(cfg.hidden))],
            "mean": _linear_init(keys[-2], sizes[-1], 1),
        }
        if var_head:
            params["var"] = _linear_init(keys[-1], sizes[-1], 1)
        params["cut_first"], params["cut_incr_raw"] = lik.init_cut_params(
            cfg.num_bins, cfg.ordinal_cuts == "uniform")
        if cfg.ordinal_cuts == "free":
            params["log_scale"] = jnp.zeros((), jnp.float32)
        return params

    def init(key: jax.Array):
        if ensemble:
            return jax.vmap(init_member)(jax.random.split(key, cfg.ensemble_size))
        return init_member(key)

    def _forward(params, obs, act, masks=None, dropout_key=None):
        h = jnp.concatenate([obs, act], axis=-1).astype(jnp.float32)
        for i, layer in enumerate(params["layers"]):
            h = jax.nn.leaky_relu(h @ layer["w"] + layer["b"], LEAKY_SLOPE)
            if masks is not None:
                h = h * masks[i]
            elif dropout_key is not None and p > 0:
                keep = jax.random.bernoulli(jax.random.fold_in(dropout_key, i), 1.0 - p, h.shape)
                h = jnp.where(keep, h / (1.0 - p), 0.0)
        mu = (h @ params["mean"]["w"] + params["mean"]["b"])[..., 0]
        if var_head:
            var = jax.nn.softplus((h @ params["var"]["w"] + params["var"]["b"])[..., 0])
        else:
            var = jnp.zeros_like(mu)
        return mu, var

    def apply(member_params, obs, act, dropout_key=None):
        return _forward(member_params, obs, act, dropout_key=dropout_key)

    def step_reward(params, obs, act):
        if ensemble:
            mus = jax.vmap(lambda m: _forward(m, obs, act)[0])(params)
            return jnp.mean(mus, axis=0)
        return _forward(params, obs, act)[0]

    def _masks(key, lead_shape):
        keys = jax.random.split(key, len(cfg.hidden))
        if p == 0:
            return [jnp.ones((h,), jnp.float32) for h in cfg.hidden]
        return [
            jax.random.bernoulli(k, 1.0 - p, lead_shape + (h,)).astype(jnp.float32) / (1.0 - p)
            for k, h in zip(keys, cfg.hidden)
        ]

    def clip_posterior(params, key, obs, act, num_samples: int = cfg.num_posterior_samples
                       ) -> ClipPosterior:
        if ensemble:
            def one(member):
                mu, var = _forward(member, obs, act)
                return compute_clip_posterior(member, mu, var, cfg, compat)

            return jax.vmap(one)(params)
        lead = obs.shape[:-1] if compat.elementwise_dropout else ()

        def sample(k):
            mu, var = _forward(params, obs, act, masks=_masks(k, lead))
            return compute_clip_posterior(params, mu, var, cfg, compat)

        return jax.vmap(sample)(jax.random.split(key, num_samples))

    return RewardModel(init, step_reward, clip_posterior, init_member, apply, cfg, compat)
