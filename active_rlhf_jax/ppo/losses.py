"""PPO math: GAE and the clipped-surrogate loss, as SB3 computes them."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    dones: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Generalised advantage estimation over a rollout.

    Args:
        rewards: ``[T, B]`` rewards, with any truncation bootstrap already added
            (SB3 adds ``gamma * V(final_obs)`` to the reward of a truncated step).
        values: ``[T, B]`` V(s_t).
        next_values: ``[T, B]`` V(s_{t+1}) (ignored where ``dones``).
        dones: ``[T, B]`` 1.0 where the episode ended at step t (termination or
            truncation): no value flows across the boundary.
        gamma, gae_lambda: discount and GAE lambda.

    Returns:
        (advantages ``[T, B]``, returns ``[T, B]`` = advantages + values).
    """
    not_done = 1.0 - dones
    deltas = rewards + gamma * next_values * not_done - values
    decay = gamma * gae_lambda * not_done

    def backward(carry, xs):
        delta, d = xs
        carry = delta + d * carry
        return carry, carry

    _, adv = jax.lax.scan(backward, jnp.zeros_like(values[0]), (deltas, decay), reverse=True)
    return adv, adv + values


def compute_sb3_advantages(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    dones: jax.Array,
    truncation: jax.Array,
    bootstrap_value: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """GAE with SB3's time-limit bootstrap; all inputs ``[T, B]``.

    SB3 (``OnPolicyAlgorithm.collect_rollouts``) adds ``gamma * V(terminal obs)`` to the
    reward of a truncated step and then treats it as an ordinary episode end. Here
    ``bootstrap_value`` is V(final obs before the reset) and ``truncation`` marks those steps.

    Returns:
        (advantages ``[T, B]``, returns ``[T, B]``).
    """
    rewards = rewards + gamma * truncation * bootstrap_value
    return compute_gae(rewards, values, next_values, dones, gamma, gae_lambda)


def compute_ppo_loss(
    log_prob: jax.Array,
    entropy: jax.Array,
    value: jax.Array,
    old_log_prob: jax.Array,
    advantages: jax.Array,
    returns: jax.Array,
    clip_eps: float,
    vf_coef: float,
    ent_coef: float,
    normalize_advantage: bool = True,
) -> tuple[jax.Array, dict]:
    """SB3's PPO minibatch loss; all inputs ``[M]`` (one minibatch).

    * advantages normalised per minibatch with the *sample* std: (A - mean) / (std + 1e-8),
      ``std`` with ddof=1 as ``torch.Tensor.std``;
    * policy loss ``-mean(min(r A, clip(r, 1-eps, 1+eps) A))`` with r = exp(logp - old);
    * value loss ``mean((returns - V)^2)`` (``F.mse_loss``: no 1/2, no value clipping);
    * entropy loss ``-mean(entropy)``;
    * total = policy + ent_coef * entropy_loss + vf_coef * value_loss.

    Returns:
        (loss ``[]``, aux dict of scalars: policy_loss, value_loss, entropy, approx_kl,
        clip_fraction).
    """
    if normalize_advantage:
        advantages = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-8)
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    surrogate = jnp.minimum(
        advantages * ratio, advantages * jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    )
    policy_loss = -surrogate.mean()
    value_loss = jnp.mean(jnp.square(returns - value))
    entropy_mean = entropy.mean()
    loss = policy_loss - ent_coef * entropy_mean + vf_coef * value_loss
    aux = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy_mean,
        # SB3's estimator: mean((r - 1) - log r), from the stop-gradient ratio.
        "approx_kl": jax.lax.stop_gradient(jnp.mean((ratio - 1.0) - log_ratio)),
        "clip_fraction": jax.lax.stop_gradient(
            jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(ratio.dtype))
        ),
    }
    return loss, aux
