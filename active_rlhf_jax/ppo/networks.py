"""Actor-critic networks: separate MLPs, state-independent log-std, two init schemes.

``weight_init="orthogonal"`` (SB3's ``ortho_init=True``, the default): hidden layers orthogonal with
gain sqrt(2), the action-mean layer gain 0.01, the value layer gain 1, biases zero.
``weight_init="torch"`` (SB3's ``ortho_init=False``, used by the RL-Zoo tuned locomotion settings):
PyTorch's ``nn.Linear`` default, weights and biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
``log_std`` is one free parameter per action dimension starting at ``log_std_init``. The
Gaussian is over the *unclipped* action.
"""

from __future__ import annotations

from typing import Sequence

import distrax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}
INITS = ("orthogonal", "torch")


def _torch_bias(fan_in: int):
    bound = 1.0 / np.sqrt(fan_in)

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def _dense(features: int, fan_in: int, gain: float, init: str) -> nn.Dense:
    if init == "torch":
        # kaiming_uniform(a=sqrt(5)) on the weight = U(+-1/sqrt(fan_in)) = variance scaling 1/3.
        return nn.Dense(
            features,
            kernel_init=nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
            bias_init=_torch_bias(fan_in),
        )
    return nn.Dense(
        features,
        kernel_init=nn.initializers.orthogonal(gain),
        bias_init=nn.initializers.zeros,
    )


def _mlp(x: jax.Array, hidden: Sequence[int], activation: str, init: str) -> jax.Array:
    act = ACTIVATIONS[activation]
    for h in hidden:
        x = act(_dense(h, x.shape[-1], np.sqrt(2.0), init)(x))
    return x


class Actor(nn.Module):
    """obs ``[..., obs]`` -> (mean ``[..., act]``, log_std ``[act]``)."""

    action_size: int
    hidden: Sequence[int] = (64, 64)
    log_std_init: float = 0.0
    activation: str = "tanh"
    weight_init: str = "orthogonal"

    @nn.compact
    def __call__(self, obs: jax.Array):
        x = _mlp(obs, self.hidden, self.activation, self.weight_init)
        mean = _dense(self.action_size, x.shape[-1], 0.01, self.weight_init)(x)
        log_std = self.param(
            "log_std", nn.initializers.constant(self.log_std_init), (self.action_size,)
        )
        return mean, log_std


class Critic(nn.Module):
    """obs ``[..., obs]`` -> value ``[...]``."""

    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    weight_init: str = "orthogonal"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = _mlp(obs, self.hidden, self.activation, self.weight_init)
        return _dense(1, x.shape[-1], 1.0, self.weight_init)(x)[..., 0]


def make_distribution(mean: jax.Array, log_std: jax.Array) -> distrax.Distribution:
    """Diagonal Gaussian; ``log_prob``/``entropy`` sum over the action dimension."""
    scale = jnp.broadcast_to(jnp.exp(log_std), mean.shape)
    return distrax.MultivariateNormalDiag(loc=mean, scale_diag=scale)
