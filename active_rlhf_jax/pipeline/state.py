"""The single device-resident state of an RLHF run."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from active_rlhf_jax.pipeline.pool import ClipPool


@struct.dataclass
class Counters:
    """Scalar counters (int32), all per seed; advanced only in pipeline/train.py.

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

    @classmethod
    def zeros(cls) -> "Counters":
        return cls(**{f.name: jnp.zeros((), jnp.int32) for f in dataclasses.fields(cls)})


@struct.dataclass
class ZScoreState:
    """Sliding window of raw learned rewards for the optional z-scoring
    (``run.reward_norm_window``; not PPO's own ``ppo.normalize_reward``).

    Attributes:
        window: ``[W]`` the last ``W`` raw learned rewards (a ring buffer).
        ptr: ``[]`` next slot to write; count: ``[]`` slots filled (at most ``W``).
    """

    window: jax.Array
    ptr: jax.Array
    count: jax.Array

    @classmethod
    def create(cls, window: int, dtype) -> "ZScoreState":
        return cls(window=jnp.zeros((window,), dtype), ptr=jnp.zeros((), jnp.int32),
                   count=jnp.zeros((), jnp.int32))


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
        reward_zscore: ZScoreState of the optional learned-reward z-scoring.
        ep_true: running true return of each env's current episode ``[B]``.
        ep_learned: running learned return of each env's current episode ``[B]``.
        counters: Counters.
        key: PRNG key of the feedback side (harvest, acquisition, teacher, refits).
        ppo_key: root of the PPO update keys (``split(ppo_key, num_updates)[u]``).
        hyper: the run's traced hyperparameters, ``{dotted field: [] float32}``
            (pipeline/hyper.py).
        restart: the two-phase schedule's starting point for its second phase
            (``run.retrain_fraction > 0``): ``(env_state, ppo)`` as they stood after the
            initial phase; None online.
    """

    env_state: Any
    ppo: Any
    reward: Any
    pool: ClipPool
    buffers: Any
    acquisition: Any
    reward_zscore: ZScoreState
    ep_true: jax.Array
    ep_learned: jax.Array
    counters: Counters
    key: jax.Array
    ppo_key: jax.Array
    hyper: Any
    restart: Any = None
