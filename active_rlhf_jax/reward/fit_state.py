"""The reward trainer's named data: a mixed minibatch, fit statistics, the fit loop's carry,
the training state and the trainer's functions (``reward/trainer.py`` builds them).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct


class Batch(NamedTuple):
    """One mixed minibatch (B slots; each slot is a preference, a rating, or empty).

    obs_a, obs_b: [B, L, o]; act_a, act_b: [B, L, a]; label: [B]; pref_mask: [B] bool;
    obs: [B, L, o]; act: [B, L, a]; rating: [B]; rating_mask: [B] bool;
    rating_round: [B] int32 labelling round of each rating (relative scale), or None.
    """

    obs_a: jax.Array
    act_a: jax.Array
    obs_b: jax.Array
    act_b: jax.Array
    label: jax.Array
    pref_mask: jax.Array
    obs: jax.Array
    act: jax.Array
    rating: jax.Array
    rating_mask: jax.Array
    rating_round: jax.Array | None = None


@struct.dataclass
class FitStats:
    """Sums over the valid items of one minibatch or of a whole pass (all [] float32).

    Attributes:
        pref_nll_sum: summed preference NLL.
        num_pref: valid preferences.
        rating_nll_sum: summed rating NLL (0 under ``compat.pref_only_unified``).
        num_rating: valid ratings.
        num_correct: decided preferences (label != 0.5) the model orders right.
        num_decided: decided preferences.
    """

    pref_nll_sum: jax.Array
    num_pref: jax.Array
    rating_nll_sum: jax.Array
    num_rating: jax.Array
    num_correct: jax.Array
    num_decided: jax.Array

    @classmethod
    def zeros(cls) -> "FitStats":
        z = jnp.zeros((), jnp.float32)
        return cls(z, z, z, z, z, z)

    def __add__(self, other: "FitStats") -> "FitStats":
        return jax.tree_util.tree_map(jnp.add, self, other)


@struct.dataclass
class FitCarry:
    """``lax.while_loop`` carry of one member's fit (one iteration = one epoch).

    Attributes:
        epoch: [] int32 epochs run in this fit.
        params, opt_state: after the last epoch.
        best_params, best_opt_state: of the best early-stopping epoch so far (the start
            state until an eligible epoch improves).
        best_val_loss: [] best early-stopping criterion so far (+inf at the start).
        patience_count: [] int32 eligible epochs since the last improvement.
        num_steps: [] int32 optimiser steps in this fit.
        train_loss, val_loss, train_acc, val_acc: [] the last epoch's metrics.
    """

    epoch: jax.Array
    params: Any
    opt_state: Any
    best_params: Any
    best_opt_state: Any
    best_val_loss: jax.Array
    patience_count: jax.Array
    num_steps: jax.Array
    train_loss: jax.Array
    val_loss: jax.Array
    train_acc: jax.Array
    val_acc: jax.Array


@struct.dataclass
class RewardTrainState:
    """Reward-model training state (every leaf has a leading [M] axis for ensembles).

    Attributes:
        params: current (after fit: best-validation, or last under compat) params.
        opt_state: Adam state (one per member for ensembles) belonging to ``params``: the
            best epoch's when the best weights are restored, the last under compat.
        best_params: best-validation params of the last fit.
        best_val_loss: [] best early-stopping criterion of the last fit.
        num_steps: [] int32 optimiser steps taken in total.
        num_epochs: [] int32 epochs run in total.
        num_fits: [] int32 fit calls.
    """

    params: Any
    opt_state: Any
    best_params: Any
    best_val_loss: jax.Array
    num_steps: jax.Array
    num_epochs: jax.Array
    num_fits: jax.Array


class RewardTrainer(NamedTuple):
    """Pure training functions.

    Attributes:
        init: ``init(params) -> RewardTrainState``.
        fit: ``fit(state, buffers, key, max_epochs, patience, hyper=None) -> (state,
            metrics)``; ``hyper`` (a run's traced fields, pipeline/hyper.py) sets
            ``reward.lr``, ``weight_decay``, ``reg_weight``, ``rating_weight``;
            metrics: train_loss, val_loss, train_acc, val_acc, epochs, best_val_loss
            (means over members for ensembles). Jit with ``static_argnums=(3,)``.
        step: ``step(member_params, opt_state, key, batch, hp=None) -> (params, opt_state,
            stats)``,
            one masked Adam step of one member (stats: :class:`FitStats`).
        loss: ``loss(member_params, key|None, batch, train, hp=None) -> (loss, FitStats)``.
        optimizer: the optax transformation (coupled L2 + Adam).
    """

    init: Callable
    fit: Callable
    step: Callable
    loss: Callable
    optimizer: optax.GradientTransformation
