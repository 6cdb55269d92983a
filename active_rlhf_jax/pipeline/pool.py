"""The clip pool: a fixed-capacity FIFO ring buffer of segments, and segment harvesting.

A segment is ``L`` consecutive transitions of one environment that never crosses an
episode reset (with ``run.absorbing_clips``, one that runs past a termination continues
in the absorbing state instead); it carries the raw (un-normalised) pre-step
observations, the env actions and the true rewards (the true rewards are read only by the
simulated teacher and by evaluation metrics).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from active_rlhf_jax.batches import Clips, Queries, Series


@struct.dataclass
class ClipPool:
    """Ring buffer of ``P`` clips of length ``L``.

    Attributes:
        obs: ``[P, L, obs]`` raw pre-step observations.
        act: ``[P, L, act]`` env actions (clipped to bounds).
        rew: ``[P, L]`` true rewards.
        valid: ``[P]`` slot holds a clip.
        in_pair: ``[P]`` the clip in this slot has been in a preference query.
        rated: ``[P]`` the clip in this slot has been rated.
        ptr: ``[]`` next slot to write.
    """

    obs: jax.Array
    act: jax.Array
    rew: jax.Array
    valid: jax.Array
    in_pair: jax.Array
    rated: jax.Array
    ptr: jax.Array

    @classmethod
    def create(cls, capacity: int, length: int, obs_size: int, act_size: int, dtype):
        return cls(
            obs=jnp.zeros((capacity, length, obs_size), dtype),
            act=jnp.zeros((capacity, length, act_size), dtype),
            rew=jnp.zeros((capacity, length), dtype),
            valid=jnp.zeros((capacity,), bool),
            in_pair=jnp.zeros((capacity,), bool),
            rated=jnp.zeros((capacity,), bool),
            ptr=jnp.zeros((), jnp.int32),
        )

    @property
    def capacity(self) -> int:
        return self.valid.shape[0]

    def add(self, clips: Clips) -> "ClipPool":
        """Append the masked clips of ``clips`` (``M`` of them) at the write pointer.

        Masked-out clips take no slot (their writes go to a dropped out-of-bounds index).
        """
        obs, act, rew, mask = clips.obs, clips.act, clips.rew, clips.mask
        capacity = self.capacity
        offsets = jnp.cumsum(mask.astype(jnp.int32)) - 1
        slots = jnp.where(mask, (self.ptr + offsets) % capacity, capacity)  # capacity: dropped
        upd = lambda buf, x: buf.at[slots].set(x.astype(buf.dtype), mode="drop")
        return self.replace(
            obs=upd(self.obs, obs),
            act=upd(self.act, act),
            rew=upd(self.rew, rew),
            valid=self.valid.at[slots].set(True, mode="drop"),
            in_pair=self.in_pair.at[slots].set(False, mode="drop"),
            rated=self.rated.at[slots].set(False, mode="drop"),
            ptr=(self.ptr + jnp.sum(mask.astype(jnp.int32))) % capacity,
        )

    def mark_asked(self, queries: Queries) -> "ClipPool":
        """Flag the clips of the asked queries (``in_pair`` for both clips of an asked
        pair, ``rated`` for an asked clip), so acquisition can exclude them later."""
        cap = self.capacity
        a, b = queries.pair_idx[:, 0], queries.pair_idx[:, 1]
        in_pair = self.in_pair.at[jnp.where(queries.pair_mask, a, cap)].set(True, mode="drop")
        in_pair = in_pair.at[jnp.where(queries.pair_mask, b, cap)].set(True, mode="drop")
        rated = self.rated.at[jnp.where(queries.clip_mask, queries.clip_idx, cap)].set(
            True, mode="drop")
        return self.replace(in_pair=in_pair, rated=rated)

    @property
    def true_returns(self) -> jax.Array:
        """``[P]`` undiscounted true return of each slot's clip (teacher and metrics only)."""
        return jnp.sum(self.rew, axis=-1)


def harvest_segments(key, series: Series, num_segments: int, length: int, tries: int = 8,
                     absorbing: bool = False) -> Clips:
    """Sample segments at random offsets from per-env time series.

    Args:
        series: :class:`Series` of ``B`` envs over ``N`` steps (``done`` marks the step
            that ended an episode: the next obs is a reset; ``trunc`` the ends that were
            the time limit, needed when ``absorbing``).
        num_segments: static number of segments wanted.
        length: static segment length ``L`` (``L <= N``).
        tries: candidates drawn per wanted segment; the first valid ones are kept.
        absorbing: static; ``run.absorbing_clips``.

    Returns:
        :class:`Clips` with ``M = num_segments`` slots.
        A candidate is valid when no episode ends inside it before its last step, so a
        segment never crosses a reset; with ``absorbing``, an end by termination may lie
        inside, and the steps after it become the absorbing state (NaN observations, zero
        actions and true rewards: :func:`~active_rlhf_jax.batches.absorbing_steps`) in
        place of the next episode's; an end by the time limit still may not. No window
        (env, start) is returned twice. ``mask`` is False only if too few distinct valid
        candidates were drawn (when the rollout holds fewer distinct windows than
        ``num_segments``, or by chance when it holds barely more).
    """
    raw_obs, act, rew, ended = series.obs, series.act, series.rew, series.done
    num_envs, n_steps = rew.shape
    if length > n_steps:
        raise ValueError(f"segment_length: {length} exceeds the {n_steps} steps available")
    num_cand = num_segments * tries
    key_env, key_start, key_order = jax.random.split(key, 3)
    env_idx = jax.random.randint(key_env, (num_cand,), 0, num_envs)
    start = jax.random.randint(key_start, (num_cand,), 0, n_steps - length + 1)
    if absorbing:
        if series.trunc is None:
            raise ValueError("harvest_segments: absorbing clips need the series' trunc")
        # Only the first end inside a window matters (what follows it is absorbing): the
        # window is valid unless that end, before its last step, was the time limit.
        first_end = _first_end(ended, env_idx, start, length)  # [C] offset, L if none
        at = jnp.minimum(start + first_end, n_steps - 1)
        valid = ~((first_end < length - 1) & (series.trunc[env_idx, at] > 0))
    else:
        # An end at step t < start + L - 1 inside the window makes it cross a reset.
        ends_before = jnp.concatenate(
            [jnp.zeros((num_envs, 1), jnp.int32), jnp.cumsum(ended.astype(jnp.int32), axis=1)],
            axis=1)  # [B, N+1]: number of ends in steps [0, t)
        valid = ends_before[env_idx, start + length - 1] - ends_before[env_idx, start] == 0
    # Keep the first ``num_segments`` valid candidates in a random order, each window
    # (env, start) once: candidates are drawn with replacement, and a copy of a clip in
    # the pool would waste acquisition's choices (small rollouts repeated windows often).
    rank = jnp.argsort(jnp.argsort(jax.random.uniform(key_order, (num_cand,))))
    window = env_idx * n_steps + start
    first = jnp.full((num_envs * n_steps,), num_cand).at[window].min(jnp.where(valid, rank, num_cand))
    keep = valid & (first[window] == rank)
    order = jnp.argsort(jnp.where(keep, rank, num_cand + rank))
    chosen = order[:num_segments]
    mask = keep[chosen]
    t_idx = start[chosen][:, None] + jnp.arange(length)[None, :]  # [M, L]
    e_idx = env_idx[chosen][:, None]
    obs_c, act_c, rew_c = raw_obs[e_idx, t_idx], act[e_idx, t_idx], rew[e_idx, t_idx]
    if absorbing:
        # Steps after the window's first end (not the end step itself) are absorbing.
        gone = jnp.arange(length)[None, :] > first_end[chosen][:, None]  # [M, L]
        obs_c = jnp.where(gone[..., None], jnp.nan, obs_c)
        act_c = jnp.where(gone[..., None], 0.0, act_c)
        rew_c = jnp.where(gone, 0.0, rew_c)
    return Clips(obs=obs_c, act=act_c, rew=rew_c, mask=mask)


def _first_end(ended, env_idx, start, length: int) -> jax.Array:
    """``[C]`` int32 offset of the first episode end inside each window ``(env_idx [C],
    start [C])`` of ``length`` steps of ``ended [B, N]``, ``length`` where there is none."""
    steps = start[:, None] + jnp.arange(length)[None, :]  # [C, L]
    hit = ended[env_idx[:, None], steps] > 0
    return jnp.where(jnp.any(hit, axis=1), jnp.argmax(hit, axis=1), length).astype(jnp.int32)
