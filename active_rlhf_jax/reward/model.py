"""Per-step reward network (a Flax module: MLP, optional variance head, ordinal link
parameters) and the pure functions that train and sample it.

MC-dropout posterior samples are coherent function draws: ``nn.Dropout`` broadcasts its
mask over the clip and time axes, so one mask per layer per sample is shared by every clip
and step of that sample. ``compat.elementwise_dropout`` (the reference) broadcasts over
nothing: independent masks per clip, step and unit. Ensembles are a vmapped member axis
(``jax.vmap`` over ``init``/``apply``; the trainer vmaps the optimiser per member too).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from active_rlhf_jax.batches import absorbing_steps
from active_rlhf_jax.config import CompatConfig, RewardModelConfig
from active_rlhf_jax.reward import likelihoods as lik
from active_rlhf_jax.reward.posterior import ClipPosterior, compute_clip_posterior

LEAKY_SLOPE = 0.01
# Axes of a hidden activation [N, L, H] that share one posterior dropout mask: clip, time.
COHERENT_DIMS = (0, 1)


def torch_linear_init(fan_in: int) -> Callable:
    """PyTorch ``nn.Linear``'s default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as a Flax
    initialiser for the weight and the bias alike (the bias's own shape has no fan-in)."""
    bound = 1.0 / float(fan_in) ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class Dropout(nn.Module):
    """``nn.Dropout`` whose rate may be traced: a sweep's cells that differ in
    ``reward.dropout`` share one program. With a Python float it computes exactly what
    ``nn.Dropout`` does (same rng stream: ``make_rng("dropout")`` at the same module path,
    same mask draw and scaling)."""

    rate: Any
    broadcast_dims: tuple = ()

    @nn.compact
    def __call__(self, inputs, deterministic: bool = True):
        fixed = isinstance(self.rate, (int, float))
        if deterministic or (fixed and self.rate == 0.0):
            return inputs
        if fixed and self.rate == 1.0:  # no gradient NaNs at the edge, as nn.Dropout
            return jnp.zeros_like(inputs)
        keep_prob = 1.0 - self.rate
        rng = self.make_rng("dropout")
        shape = list(inputs.shape)
        for dim in self.broadcast_dims:
            shape[dim] = 1
        mask = jnp.broadcast_to(jax.random.bernoulli(rng, p=keep_prob, shape=shape),
                                inputs.shape)
        return jax.lax.select(mask, inputs / keep_prob, jnp.zeros_like(inputs))


class RewardNet(nn.Module):
    """One member: ``concat(obs, act)`` -> [Dense -> LeakyReLU -> Dropout] x len(hidden) ->
    mean head (and a softplus variance head), plus the ordinal link's parameters.

    Variables: ``{"params": {"hidden_layers_i": {"kernel", "bias"}, "mean_head",
    ["var_head"], "cut_first", "cut_incr_raw", ["log_scale"], ["round_shift",
    "round_log_gain"]}}``. Dropout draws from the
    ``"dropout"`` rng: Flax derives layer i's key from that rng and the layer's path
    (``dropouts_i``) alone, so one key gives the same masks whatever the batch size.

    Attributes:
        in_size: o + a.
        hidden: hidden widths.
        dropout: dropout probability (a float, or a traced [] value: see :class:`Dropout`).
        with_var_head: build the variance head (``RewardModelConfig.has_variance_head``).
        num_bins, ordinal_cuts: shape of the ordinal link's cut-point parameters.
        coherent: broadcast dropout masks over ``COHERENT_DIMS`` (inputs must then be
            [N, L, ...]); False: elementwise masks.
        num_rounds: R > 0 adds the relative rating scale's per-round calibration,
            ``round_shift`` and ``round_log_gain`` [R] (reward/posterior.py).
        absorbing: steps marked absorbing (NaN observations:
            :func:`~active_rlhf_jax.batches.absorbing_steps`) get ``mu = var = 0`` exactly
            and pass no NaN into the network or its gradients (``run.absorbing_clips``).
    """

    in_size: int
    hidden: tuple[int, ...]
    dropout: Any
    with_var_head: bool
    num_bins: int
    ordinal_cuts: str
    coherent: bool = False
    num_rounds: int = 0
    absorbing: bool = False

    def setup(self):
        fans = (self.in_size,) + tuple(self.hidden)
        self.hidden_layers = [
            nn.Dense(h, kernel_init=torch_linear_init(f), bias_init=torch_linear_init(f))
            for f, h in zip(fans, self.hidden)
        ]
        dims = COHERENT_DIMS if self.coherent else ()
        self.dropouts = [Dropout(self.dropout, broadcast_dims=dims) for _ in self.hidden]
        head_init = torch_linear_init(fans[-1])
        self.mean_head = nn.Dense(1, kernel_init=head_init, bias_init=head_init)
        if self.with_var_head:
            # Only where a loss trains it: the ordinal likelihood reads no per-step
            # variance, so a head there would be untrained noise reported as a posterior.
            self.var_head = nn.Dense(1, kernel_init=head_init, bias_init=head_init)
        first, incr = lik.init_cut_params(self.num_bins, self.ordinal_cuts == "uniform")
        self.cut_first = self.param("cut_first", lambda _: first)
        self.cut_incr_raw = self.param("cut_incr_raw", lambda _: incr)
        if self.ordinal_cuts == "free":
            self.log_scale = self.param("log_scale", lambda _: jnp.zeros((), jnp.float32))
        if self.num_rounds > 0:
            zeros = lambda _: jnp.zeros((self.num_rounds,), jnp.float32)  # noqa: E731
            self.round_shift = self.param("round_shift", zeros)
            self.round_log_gain = self.param("round_log_gain", zeros)

    def __call__(self, obs, act, deterministic: bool = True):
        """Per-step ``(mu [...], var [...])`` of ``obs [..., o], act [..., a]``; ``var`` is
        zeros without the variance head. Dropout is on unless ``deterministic``."""
        if self.absorbing:
            gone = absorbing_steps(obs)
            obs = jnp.where(gone[..., None], 0.0, obs)
        h = jnp.concatenate([obs, act], axis=-1).astype(jnp.float32)
        for dense, drop in zip(self.hidden_layers, self.dropouts):
            h = drop(nn.leaky_relu(dense(h), LEAKY_SLOPE), deterministic=deterministic)
        mu = self.mean_head(h)[..., 0]
        var = (jax.nn.softplus(self.var_head(h)[..., 0]) if self.with_var_head
               else jnp.zeros_like(mu))
        if self.absorbing:
            mu, var = jnp.where(gone, 0.0, mu), jnp.where(gone, 0.0, var)
        return mu, var

    def dropout_masks(self, lead_shape: tuple[int, ...]):
        """The scaled masks (0 or 1/(1-p)) a forward pass with the same ``"dropout"`` rng
        applies: one [*lead_shape, H_i] per hidden layer (lead_shape (1, 1) for coherent
        masks, (N, L) for elementwise ones). For tests and oracles."""
        return [drop(jnp.ones(tuple(lead_shape) + (h,), jnp.float32), deterministic=False)
                for drop, h in zip(self.dropouts, self.hidden)]


class RewardModel(NamedTuple):
    """Pure functions of the reward model. ``params`` has a leading [M] axis for ensembles.

    Attributes:
        init: ``init(key) -> params``.
        step_reward: ``step_reward(params, obs [..., o], act [..., a]) -> [...]`` mean head,
            dropout off, ensemble mean over members (relabels PPO rollouts).
        clip_posterior: ``clip_posterior(params, key, obs [N, L, o], act [N, L, a],
            num_samples, rating_round=None, dropout=None) -> ClipPosterior`` with S =
            num_samples (MC dropout) or S = M (ensemble; num_samples is ignored).
            num_samples must be static; ``rating_round`` ([] int32) picks the relative
            scale's calibration; ``dropout`` ([] traced) replaces the config's rate.
        init_member: ``init_member(key) -> member params`` (no member axis): the Flax
            variables ``{"params": ...}`` of :class:`RewardNet`.
        apply: ``apply(member_params, obs [..., o], act [..., a], dropout_key=None,
            dropout=None) -> (mu [...], var [...])``; elementwise training dropout when a
            key is given (at rate ``dropout`` when given, a traced [] value);
            ``var`` is zeros without a variance head (``config.has_variance_head``).
        config, compat: the configs it was built from.
        net: the training module (elementwise dropout).
        posterior_net: the posterior module (coherent masks unless
            ``compat.elementwise_dropout``); same variables as ``net``.
    """

    init: Callable
    step_reward: Callable
    clip_posterior: Callable
    init_member: Callable
    apply: Callable
    config: RewardModelConfig
    compat: CompatConfig
    net: RewardNet
    posterior_net: RewardNet


def make_reward_model(config: RewardModelConfig, obs_size: int, act_size: int,
                      compat: CompatConfig = CompatConfig(), num_rounds: int = 0,
                      absorbing: bool = False) -> RewardModel:
    """Build the reward model's pure functions.

    Args:
        config: validated here.
        obs_size, act_size: per-step input sizes (input = concat(obs, act), raw).
        compat: reference switches (``elementwise_dropout``, ``undiscounted_rating_target``).
        num_rounds: labelling rounds of a relative rating scale (``Config.rating_rounds``;
            0: a fixed scale, no calibration parameters).
        absorbing: reward exactly 0 on absorbing steps (``run.absorbing_clips``).
    """
    config.validate()
    compat.validate()
    cfg = config
    ensemble = cfg.posterior == "ensemble"
    net = RewardNet(in_size=obs_size + act_size, hidden=tuple(cfg.hidden),
                    dropout=float(cfg.dropout), with_var_head=cfg.has_variance_head,
                    num_bins=cfg.num_bins, ordinal_cuts=cfg.ordinal_cuts,
                    num_rounds=num_rounds, absorbing=absorbing)
    posterior_net = net.clone(coherent=not compat.elementwise_dropout)

    def init_member(key: jax.Array) -> dict:
        dummy_obs, dummy_act = jnp.zeros((1, 1, obs_size)), jnp.zeros((1, 1, act_size))
        return net.init({"params": key}, dummy_obs, dummy_act)

    def init(key: jax.Array):
        if ensemble:
            return jax.vmap(init_member)(jax.random.split(key, cfg.ensemble_size))
        return init_member(key)

    def apply(member_params, obs, act, dropout_key=None, dropout=None):
        if dropout_key is None:
            return net.apply(member_params, obs, act)
        module = net if dropout is None else net.clone(dropout=dropout)
        return module.apply(member_params, obs, act, deterministic=False,
                            rngs={"dropout": dropout_key})

    def step_reward(params, obs, act):
        if ensemble:
            return jnp.mean(jax.vmap(lambda m: net.apply(m, obs, act)[0])(params), axis=0)
        return net.apply(params, obs, act)[0]

    def clip_posterior(params, key, obs, act, num_samples: int = cfg.num_posterior_samples,
                       rating_round=None, dropout=None) -> ClipPosterior:
        if obs.ndim != 3 or act.ndim != 3:
            raise ValueError(f"clip_posterior: obs and act must be [N, L, .], got {obs.shape}, {act.shape}")
        if ensemble:
            def member(m):
                mu, var = net.apply(m, obs, act)
                return compute_clip_posterior(m, mu, var, cfg, compat, rating_round)

            return jax.vmap(member)(params)

        # Sample s's dropout key is split(key, S)[s], whatever N: with coherent masks of
        # shape [1, 1, H] it gives the same masks for any batch of clips, which is what lets
        # pipeline/feedback.py split a large pool into blocks under one key.
        module = posterior_net if dropout is None else posterior_net.clone(dropout=dropout)

        def sample(k):
            mu, var = module.apply(params, obs, act, deterministic=False, rngs={"dropout": k})
            return compute_clip_posterior(params, mu, var, cfg, compat, rating_round)

        return jax.vmap(sample)(jax.random.split(key, num_samples))

    return RewardModel(init, step_reward, clip_posterior, init_member, apply, cfg, compat,
                       net, posterior_net)
