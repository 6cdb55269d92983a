"""SB3-default actor-critic: separate tanh MLPs, orthogonal init, state-independent log-std.

SB3's ``ActorCriticPolicy`` with ``ortho_init=True`` initialises hidden layers with an
orthogonal matrix of gain sqrt(2), the action mean layer with gain 0.01 and the value
layer with gain 1, biases at zero; ``log_std`` is one free parameter per action dimension
starting at ``log_std_init`` (0). The Gaussian is over the *unclipped* action.
"""

from __future__ import annotations

from typing import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def _dense(features: int, gain: float) -> nn.Dense:
    return nn.Dense(
        features,
        kernel_init=nn.initializers.orthogonal(gain),
        bias_init=nn.initializers.zeros,
    )


class Actor(nn.Module):
    """obs ``[..., obs]`` -> (mean ``[..., act]``, log_std ``[act]``)."""

    action_size: int
    hidden: Sequence[int] = (64, 64)
    log_std_init: float = 0.0

    @nn.compact
    def __call__(self, obs: jax.Array):
        x = obs
        for h in self.hidden:
            x = jnp.tanh(_dense(h, np.sqrt(2.0))(x))
        mean = _dense(self.action_size, 0.01)(x)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_size,)
        )
        return mean, log_std


class Critic(nn.Module):
    """obs ``[..., obs]`` -> value ``[...]``."""

    hidden: Sequence[int] = (64, 64)

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = obs
        for h in self.hidden:
            x = jnp.tanh(_dense(h, np.sqrt(2.0))(x))
        return _dense(1, 1.0)(x)[..., 0]


def make_distribution(mean: jax.Array, log_std: jax.Array) -> distrax.Distribution:
    """Diagonal Gaussian; ``log_prob``/``entropy`` sum over the action dimension."""
    scale = jnp.broadcast_to(jnp.exp(log_std), mean.shape)
    return distrax.MultivariateNormalDiag(loc=mean, scale_diag=scale)
