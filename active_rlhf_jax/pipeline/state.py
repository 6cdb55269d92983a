"""The single device-resident state of an RLHF run."""

from __future__ import annotations

from typing import Any

import jax
from flax import struct

from active_rlhf_jax.pipeline.pool import ClipPool


@struct.dataclass
class Counters:
    """Scalar counters (int32 unless noted), all per seed.

    Attributes:
        iteration: RLHF iterations completed.
        env_steps: PPO env steps (warm-up and collection steps excluded).
        warmup_steps: PPO steps on the true reward before the loop.
        collection_steps: env steps of the initial pool collection and of any per-iteration
            episode collection (``run.collection_episodes_per_iteration``).
        labels_used: labels charged against the budget.
        queries_pref: preference queries asked (skipped/tied ones included).
        queries_eval: rating queries asked.
    """

    iteration: jax.Array
    env_steps: jax.Array
    warmup_steps: jax.Array
    collection_steps: jax.Array
    labels_used: jax.Array
    queries_pref: jax.Array
    queries_eval: jax.Array


@struct.dataclass
class RewardNormState:
    """Sliding window of raw learned rewards for optional z-scoring. ``window [W]``."""

    window: jax.Array
    ptr: jax.Array
    count: jax.Array


@struct.dataclass
class PipelineState:
    """Everything one seed carries between iterations (a seed axis is a vmap axis).

    Attributes:
        env_state: batched training env state ``[B]``.
        ppo: PPOState (params, optimiser, observation normaliser).
        reward: RewardTrainState (reward-model params, optimiser, best params).
        pool: ClipPool of candidate segments.
        buffers: FeedbackBuffers of labelled queries.
        acquisition: acquisition's carried state (the reference-adaptive normaliser).
        reward_norm: optional learned-reward z-scoring window.
        ep_true: running true return of each env's current episode ``[B]``.
        ep_learned: running learned return of each env's current episode ``[B]``.
        counters: Counters.
        key: PRNG key of the feedback side (harvest, acquisition, teacher, refits).
        ppo_key: root of the PPO update keys (``split(ppo_key, num_updates)[u]``).
    """

    env_state: Any
    ppo: Any
    reward: Any
    pool: ClipPool
    buffers: Any
    acquisition: Any
    reward_norm: RewardNormState
    ep_true: jax.Array
    ep_learned: jax.Array
    counters: Counters
    key: jax.Array
    ppo_key: jax.Array
