"""Named data that flows between the stages of an RLHF iteration.

One iteration (pipeline/train.py) passes these from stage to stage::

    rollouts -> Series -> harvest -> Clips -> ClipPool
    ClipPool -> acquisition -> Queries -> teacher -> PreferenceBatch, RatingBatch
    PreferenceBatch, RatingBatch -> FeedbackBuffers -> reward-model fit

Every field is fixed-shape; a ``mask`` marks the entries that hold data (a query slot
that was not used, a segment that could not be harvested). Shapes use ``B`` envs, ``N``
steps, ``M`` clips of length ``L``, ``k`` query slots, ``o``/``a`` observation/action sizes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Series:
    """Per-env time series of the transitions an iteration collected.

    Attributes:
        obs: ``[B, N, o]`` raw (un-normalised) pre-step observations.
        act: ``[B, N, a]`` env actions (clipped to the bounds).
        rew: ``[B, N]`` true rewards (read only by the teacher and by metrics).
        done: ``[B, N]`` 1.0 where step ``t`` ended an episode (the next obs is a reset).
        trunc: ``[B, N]`` 1.0 where that end was the time limit, not a termination (None:
            unknown; only ``run.absorbing_clips`` reads it).
    """

    obs: jax.Array
    act: jax.Array
    rew: jax.Array
    done: jax.Array
    trunc: jax.Array | None = None


def absorbing_steps(obs: jax.Array) -> jax.Array:
    """``[...]`` bool: the steps of clips ``obs [..., o]`` that lie past a termination.

    With ``run.absorbing_clips`` a clip may run past the step where its episode terminated;
    its later steps are the absorbing state, stored with NaN observations, zero actions and
    zero true reward, and the reward model gives them reward exactly 0 (reward/model.py),
    the value PPO assumes after a termination. A NaN is no observation a working
    simulation produces, so the marker needs no field of its own in the pool, the
    buffers or the reward model's batches.
    """
    return jnp.isnan(obs[..., 0])


@struct.dataclass
class Clips:
    """Fixed-length segments cut from a :class:`Series`.

    Attributes:
        obs: ``[M, L, o]``; act: ``[M, L, a]``; rew: ``[M, L]`` true rewards; steps past a
            termination are absorbing (:func:`absorbing_steps`).
        mask: ``[M]`` bool, the segment holds data.
    """

    obs: jax.Array
    act: jax.Array
    rew: jax.Array
    mask: jax.Array


@struct.dataclass
class Queries:
    """What acquisition chose from the pool (indices into its slots).

    Attributes:
        pair_idx: ``[k, 2]`` int32 preference pairs (``pair_idx[:, 0] < pair_idx[:, 1]``).
        pair_mask: ``[k]`` bool, the pair is asked.
        clip_idx: ``[k]`` int32 clips to rate.
        clip_mask: ``[k]`` bool, the clip is asked.
    """

    pair_idx: jax.Array
    pair_mask: jax.Array
    clip_idx: jax.Array
    clip_mask: jax.Array


@struct.dataclass
class PreferenceBatch:
    """Labelled preference queries on their way into the buffers.

    Attributes:
        obs_a, obs_b: ``[k, L, o]``; act_a, act_b: ``[k, L, a]``.
        label: ``[k]`` float, 1.0 when ``a`` is preferred, 0.0 for ``b``, 0.5 for a tie.
        mask: ``[k]`` bool, the slot holds a label (asked and not dropped by the teacher).
    """

    obs_a: jax.Array
    act_a: jax.Array
    obs_b: jax.Array
    act_b: jax.Array
    label: jax.Array
    mask: jax.Array


@struct.dataclass
class RatingBatch:
    """Labelled rating queries on their way into the buffers.

    Attributes:
        obs: ``[k, L, o]``; act: ``[k, L, a]``.
        rating: ``[k]`` float bin index of the clip's return.
        mask: ``[k]`` bool, the slot holds a label.
        round: ``[k]`` int32 labelling round (0: the initial batch, i: iteration i) of a
            relative rating scale (``teacher.rating_scale="pool"``), or None (round 0).
    """

    obs: jax.Array
    act: jax.Array
    rating: jax.Array
    mask: jax.Array
    round: jax.Array | None = None
