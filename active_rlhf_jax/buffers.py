"""Fixed-capacity feedback buffers (preferences and ratings) with validity masks.

Capacity is the label budget, so nothing is ever evicted: items are written at a write
pointer and stay. Every label of either modality is assigned to train or validation when
it is added; by default exactly one in every five consecutive labels of a modality (the
slot within each block of five is drawn with the key of the call that starts the block),
so the validation set grows with the data even when labels arrive one at a time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from active_rlhf_jax.batches import PreferenceBatch, RatingBatch
from active_rlhf_jax.config import CompatConfig

VAL_EVERY = 5


@struct.dataclass
class FeedbackBuffers:
    """Preference part (capacity Cp) and rating part (capacity Cr).

    Attributes:
        pref_obs_a, pref_obs_b: [Cp, L, o]; pref_act_a, pref_act_b: [Cp, L, a].
        pref_label: [Cp] float (1: a preferred, 0: b, 0.5: tie).
        pref_valid, pref_is_val: [Cp] bool (slot holds an item; item is validation).
        pref_count: [] int32 items written (the write pointer).
        pref_val_slot: [] int32 validation position within the current block of five.
        rating_obs: [Cr, L, o]; rating_act: [Cr, L, a]; rating_value: [Cr] float.
        rating_valid, rating_is_val, rating_count, rating_val_slot: as for preferences.
        rating_round: [Cr] int32 labelling round of each rating (relative rating scale:
            each round has its own bins; 0 on a fixed scale).
    """

    pref_obs_a: jax.Array
    pref_act_a: jax.Array
    pref_obs_b: jax.Array
    pref_act_b: jax.Array
    pref_label: jax.Array
    pref_valid: jax.Array
    pref_is_val: jax.Array
    pref_count: jax.Array
    pref_val_slot: jax.Array
    rating_obs: jax.Array
    rating_act: jax.Array
    rating_value: jax.Array
    rating_valid: jax.Array
    rating_is_val: jax.Array
    rating_count: jax.Array
    rating_val_slot: jax.Array
    rating_round: jax.Array

    @property
    def pref_train_mask(self) -> jax.Array:
        """[Cp] bool: valid training preferences."""
        return self.pref_valid & ~self.pref_is_val

    @property
    def rating_train_mask(self) -> jax.Array:
        """[Cr] bool: valid training ratings."""
        return self.rating_valid & ~self.rating_is_val


def make_feedback_buffers(pref_capacity: int, rating_capacity: int, segment_len: int,
                          obs_size: int, act_size: int) -> FeedbackBuffers:
    """Empty buffers (zeros, nothing valid). Capacities must be >= 1 (static shapes)."""
    cp, cr, seg = pref_capacity, rating_capacity, segment_len
    zi = jnp.zeros((), jnp.int32)
    return FeedbackBuffers(
        pref_obs_a=jnp.zeros((cp, seg, obs_size)), pref_act_a=jnp.zeros((cp, seg, act_size)),
        pref_obs_b=jnp.zeros((cp, seg, obs_size)), pref_act_b=jnp.zeros((cp, seg, act_size)),
        pref_label=jnp.zeros((cp,)), pref_valid=jnp.zeros((cp,), bool),
        pref_is_val=jnp.zeros((cp,), bool), pref_count=zi, pref_val_slot=zi,
        rating_obs=jnp.zeros((cr, seg, obs_size)), rating_act=jnp.zeros((cr, seg, act_size)),
        rating_value=jnp.zeros((cr,)), rating_valid=jnp.zeros((cr,), bool),
        rating_is_val=jnp.zeros((cr,), bool), rating_count=zi, rating_val_slot=zi,
        rating_round=jnp.zeros((cr,), jnp.int32),
    )


def compute_val_assignment(key: jax.Array, count: jax.Array, val_slot: jax.Array,
                           mask: jax.Array, reference_split: bool
                           ) -> tuple[jax.Array, jax.Array]:
    """Which masked items of one add call go to validation.

    Args:
        key: this call's split key.
        count: [] items already written; val_slot: [] slot of the open block.
        mask: [k] bool items being added.
        reference_split: ``int(0.2 n)`` random items of this call instead of blocks of five.

    Returns:
        (is_val [k] bool, new val_slot [] int32).
    """
    mask = mask.astype(bool)
    n = jnp.sum(mask)
    if reference_split:
        u = jax.random.uniform(key, mask.shape)
        order = jnp.argsort(jnp.where(mask, u, 2.0))
        rank = jnp.zeros(mask.shape, jnp.int32).at[order].set(jnp.arange(mask.shape[0]))
        return mask & (rank < n // 5), val_slot  # n // 5 == int(0.2 * n) for n >= 0
    g = count + jnp.cumsum(mask) - 1  # global index of each masked item

    def slot_of(index):
        block = index // VAL_EVERY
        in_open_block = (block == count // VAL_EVERY) & (count % VAL_EVERY != 0)
        fresh = jax.vmap(lambda b: jax.random.randint(jax.random.fold_in(key, b), (), 0, VAL_EVERY))(
            jnp.atleast_1d(block)).reshape(jnp.shape(block))
        return jnp.where(in_open_block, val_slot, fresh)

    is_val = mask & (g % VAL_EVERY == slot_of(g))
    new_count = count + n
    new_slot = jnp.where(new_count % VAL_EVERY != 0, slot_of(new_count), 0).astype(jnp.int32)
    return is_val, new_slot


def _write(arrays: list, values: list, count, capacity: int, mask):
    mask = mask.astype(bool)
    pos = jnp.where(mask, count + jnp.cumsum(mask) - 1, capacity)  # capacity = dropped
    return [a.at[pos].set(v.astype(a.dtype), mode="drop") for a, v in zip(arrays, values)]


def add_preferences(buffers: FeedbackBuffers, key: jax.Array, batch: PreferenceBatch,
                    compat: CompatConfig = CompatConfig()) -> FeedbackBuffers:
    """Append the masked items of ``batch`` (``k`` slots, fixed shapes).

    Args:
        key: validation-split key.
        batch: :class:`PreferenceBatch` with ``k`` slots.
        compat: ``reference_val_split`` selects the reference split.

    Returns:
        Updated buffers. Items beyond capacity are dropped (capacity is the budget).
    """
    cap = buffers.pref_label.shape[0]
    mask = batch.mask.astype(bool)
    is_val, slot = compute_val_assignment(key, buffers.pref_count, buffers.pref_val_slot, mask,
                                          compat.reference_val_split)
    oa, aa, ob, ab, lab, valid, isv = _write(
        [buffers.pref_obs_a, buffers.pref_act_a, buffers.pref_obs_b, buffers.pref_act_b,
         buffers.pref_label, buffers.pref_valid, buffers.pref_is_val],
        [batch.obs_a, batch.act_a, batch.obs_b, batch.act_b, batch.label, mask, is_val],
        buffers.pref_count, cap, mask)
    count = jnp.minimum(buffers.pref_count + jnp.sum(mask), cap).astype(jnp.int32)
    return buffers.replace(pref_obs_a=oa, pref_act_a=aa, pref_obs_b=ob, pref_act_b=ab,
                           pref_label=lab, pref_valid=valid, pref_is_val=isv,
                           pref_count=count, pref_val_slot=slot)


def add_ratings(buffers: FeedbackBuffers, key: jax.Array, batch: RatingBatch,
                compat: CompatConfig = CompatConfig()) -> FeedbackBuffers:
    """Append the masked items of ``batch`` (:class:`RatingBatch`, ``k`` slots)."""
    cap = buffers.rating_value.shape[0]
    mask = batch.mask.astype(bool)
    is_val, slot = compute_val_assignment(key, buffers.rating_count, buffers.rating_val_slot,
                                          mask, compat.reference_val_split)
    rounds = jnp.zeros(mask.shape, jnp.int32) if batch.round is None else batch.round
    o, a, r, valid, isv, rnd = _write(
        [buffers.rating_obs, buffers.rating_act, buffers.rating_value, buffers.rating_valid,
         buffers.rating_is_val, buffers.rating_round],
        [batch.obs, batch.act, batch.rating, mask, is_val, rounds], buffers.rating_count, cap,
        mask)
    count = jnp.minimum(buffers.rating_count + jnp.sum(mask), cap).astype(jnp.int32)
    return buffers.replace(rating_obs=o, rating_act=a, rating_value=r, rating_valid=valid,
                           rating_is_val=isv, rating_count=count, rating_val_slot=slot,
                           rating_round=rnd)
