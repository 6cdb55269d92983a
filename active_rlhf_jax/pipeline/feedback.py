"""The feedback half of an RLHF iteration: reward model, acquisition, teacher, buffers.

Glue between the subsystems (``reward``, ``acquisition``, ``teachers``, ``buffers``) as a
bundle of pure functions over :class:`PipelineState`, so ``train.py`` stays a readable
loop. Everything is fixed-shape: ``k_max`` query slots per modality with masks.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from active_rlhf_jax import teachers
from active_rlhf_jax.acquisition import AdaptiveState, acquire
from active_rlhf_jax.buffers import add_preferences, add_ratings, make_feedback_buffers
from active_rlhf_jax.config import effective_acquisition
from active_rlhf_jax.pipeline.stats import masked_spearman
from active_rlhf_jax.reward import make_reward_model, make_reward_trainer


def draw_gap_pairs(key, valid, returns, slots: int, attempts: int, min_gap):
    """The reference's initial preference sampler (``sample_random_preferences``,
    seed_spec §6.5): uniform pairs of two distinct valid clips, redrawn until their
    undiscounted true returns differ by at least ``min_gap``.

    The reference loops without a cap; here ``attempts`` (static) draws are made and the
    first ``slots`` that pass are kept, in draw order (no deduplication, as the
    reference's random path).

    Args:
        valid: ``[P]`` bool pool slots; returns: ``[P]`` true undiscounted returns.

    Returns:
        ``(pairs [slots, 2] int32 with pairs[:, 0] < pairs[:, 1], found [slots] bool)``.
    """
    key_i, key_j = jax.random.split(key)
    n_valid = jnp.sum(valid)
    order = jnp.argsort(~valid, stable=True)  # valid slots first
    ia = jax.random.randint(key_i, (attempts,), 0, jnp.maximum(n_valid, 1))
    ib = jax.random.randint(key_j, (attempts,), 0, jnp.maximum(n_valid - 1, 1))
    ib = jnp.where(ib >= ia, ib + 1, ib)  # uniform over the other valid clips
    a, b = order[ia], order[ib]
    ok = (n_valid >= 2) & (jnp.abs(returns[a] - returns[b]) >= min_gap)
    rank = jnp.cumsum(ok) - 1
    slot = jnp.where(ok & (rank < slots), rank, slots)  # slots: dropped
    pairs = jnp.zeros((slots, 2), jnp.int32).at[slot].set(
        jnp.stack([jnp.minimum(a, b), jnp.maximum(a, b)], axis=1).astype(jnp.int32), mode="drop")
    found = jnp.zeros((slots,), bool).at[slot].set(True, mode="drop")
    return pairs, found


# Pools larger than this get their posterior samples in blocks of this many clips: the
# MLP's hidden activations are S x N x L x width floats (20 x 51,000 x 40 x 64 x 4 B =
# 10 GB for the reference's grown HalfCheetah pool).
POSTERIOR_BLOCK = 2048


def blocked_clip_posterior(model, params, key, obs, act, num_samples: int,
                           block: int = POSTERIOR_BLOCK):
    """``model.clip_posterior`` over ``obs [N, L, o]`` in blocks of ``block`` clips.

    The same posterior: sample s uses the same key, hence the same coherent dropout masks,
    in every block (pools of at most ``block`` clips take the unblocked call, bitwise as
    before). Under ``compat.elementwise_dropout`` each block folds its index into the key,
    so masks stay independent across clips.
    """
    n = obs.shape[0]
    if n <= block:
        return model.clip_posterior(params, key, obs, act, num_samples)
    nb = -(-n // block)
    pad = nb * block - n
    padded = [jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1)).reshape((nb, block) + x.shape[1:])
              for x in (obs, act)]
    elementwise = model.compat.elementwise_dropout

    def one(args):
        b, o, a = args
        k = jax.random.fold_in(key, b) if elementwise else key
        return model.clip_posterior(params, k, o, a, num_samples)

    out = jax.lax.map(one, (jnp.arange(nb), *padded))  # fields [nb, S, block, ...]

    def merge(x):
        x = jnp.moveaxis(x, 0, 1)  # [S, nb, block, ...]
        return x.reshape((x.shape[0], nb * block) + x.shape[3:])[:, :n]

    return jax.tree_util.tree_map(merge, out)


# Static draws per initial pair slot under compat.min_gap_filter (the reference's own BALD
# pool gives up after 50 draws per wanted pair; its initial sampler never gives up).
GAP_PAIR_ATTEMPTS = 50


class FeedbackParts(NamedTuple):
    init_reward: Callable
    init_buffers: Callable
    init_acquisition: Callable
    step_reward: Callable
    initial_labels: Callable
    fit: Callable
    budget_used: Callable
    acquire_and_label: Callable
    reward_corr: Callable


def make_feedback_parts(config, env) -> FeedbackParts:
    c, run, compat = config, config.run, config.compat
    model = make_reward_model(c.reward, env.observation_size, env.action_size, compat)
    trainer = make_reward_trainer(c.reward, model)
    acq_cfg = effective_acquisition(c)
    k_max = c.max_queries
    n_p0, n_e0 = c.initial_labels
    budget = run.budget
    use_pref = run.feedback in ("preference", "both")
    use_eval = run.feedback in ("rating", "both")
    train_only_budget = compat.budget_counts_train_only

    def init_reward(key):
        return trainer.init(model.init(key))

    def init_buffers():
        return make_feedback_buffers(
            budget if use_pref else 1, budget if use_eval else 1,
            run.segment_length, env.observation_size, env.action_size,
        )

    def init_acquisition():
        return AdaptiveState.create()

    def step_reward(reward_state, obs, act):
        return model.step_reward(reward_state.params, obs, act)

    def budget_used(state):
        if train_only_budget:  # the reference charges only training labels (§19.1.8)
            b = state.buffers
            return jnp.sum(b.pref_train_mask) + jnp.sum(b.rating_train_mask)
        return state.counters.labels_used

    def _label(state, key, pair_idx, pair_mask, clip_idx, clip_mask):
        """Teacher labels + buffers + counters for the chosen slots."""
        key_tp, key_tr, key_bp, key_br = jax.random.split(key, 4)
        pool = state.pool
        buffers = state.buffers
        a, b = pair_idx[:, 0], pair_idx[:, 1]
        if use_pref:
            label, ok = teachers.label_preferences(key_tp, pool.rew[a], pool.rew[b], c.teacher, compat)
            buffers = add_preferences(buffers, key_bp, pool.obs[a], pool.act[a], pool.obs[b],
                                      pool.act[b], label, pair_mask & ok, compat)
        if use_eval:
            rating, ok = teachers.label_ratings(
                key_tr, pool.rew[clip_idx], c.teacher, compat, num_bins=c.reward.num_bins,
                gamma=c.reward.gamma)
            buffers = add_ratings(buffers, key_br, pool.obs[clip_idx], pool.act[clip_idx],
                                  rating, clip_mask & ok, compat)
        n_pref = jnp.sum(pair_mask).astype(jnp.int32)
        n_eval = jnp.sum(clip_mask).astype(jnp.int32)
        cap = pool.capacity
        in_pair = pool.in_pair.at[jnp.where(pair_mask, a, cap)].set(True, mode="drop")
        in_pair = in_pair.at[jnp.where(pair_mask, b, cap)].set(True, mode="drop")
        rated = pool.rated.at[jnp.where(clip_mask, clip_idx, cap)].set(True, mode="drop")
        ctr = state.counters
        ctr = ctr.replace(
            labels_used=ctr.labels_used + n_pref + n_eval,  # skipped/tied queries cost too
            queries_pref=ctr.queries_pref + n_pref,
            queries_eval=ctr.queries_eval + n_eval,
        )
        return state.replace(
            buffers=buffers, counters=ctr, pool=pool.replace(in_pair=in_pair, rated=rated)
        ), (n_pref, n_eval)

    def initial_labels(state, key):
        """The reference's initial random batch: n_p0 pairs and n_e0 clips from the pool
        (under ``compat.min_gap_filter`` pairs below the gap are redrawn, as the reference)."""
        key_a, key_b, key_c, key_l = jax.random.split(key, 4)
        valid = state.pool.valid
        n_valid = jnp.maximum(jnp.sum(valid), 2)

        def random_order(k):
            return jnp.argsort(jnp.where(valid, jax.random.uniform(k, valid.shape), 2.0))

        slots = jnp.arange(k0)
        order_a, order_b, order_c = random_order(key_a), random_order(key_b), random_order(key_c)
        a = order_a[slots % n_valid]
        b = order_b[slots % n_valid]
        b = jnp.where(a == b, order_b[(slots + 1) % n_valid], b)  # never a clip with itself
        pair_idx = jnp.stack([jnp.minimum(a, b), jnp.maximum(a, b)], axis=1)
        pair_mask = slots < n_p0
        if compat.min_gap_filter and use_pref:
            # The reference redraws initial pairs below the gap instead of losing them to
            # the teacher's drop, so its initial batch has exactly n_p0 preferences.
            pair_idx, found = draw_gap_pairs(key_a, valid, jnp.sum(state.pool.rew, axis=-1),
                                             k0, GAP_PAIR_ATTEMPTS * k0, c.teacher.min_gap)
            pair_mask = pair_mask & found
        clip_idx = order_c[slots % n_valid]
        state, _ = _label(state, key_l, pair_idx, pair_mask, clip_idx, slots < n_e0)
        return state

    k0 = max(n_p0, n_e0, 1)

    def fit(state, key, initial: bool, with_metrics: bool = False):
        epochs = c.reward.init_epochs if initial else c.reward.refit_epochs
        patience = c.reward.init_patience if initial else c.reward.refit_patience
        reward_state, m = trainer.fit(state.reward, state.buffers, key, epochs, patience)
        state = state.replace(reward=reward_state)
        if not with_metrics:
            return state
        return state, {
            "rm_train_loss": m["train_loss"],
            "rm_val_loss": m["val_loss"],
            "rm_train_acc": m["train_acc"],
            "rm_val_acc": m["val_acc"],
            "rm_epochs": m["epochs"],
        }

    def acquire_and_label(state, key, n):
        key_post, key_acq, key_lab = jax.random.split(key, 3)
        pool = state.pool
        post = blocked_clip_posterior(
            model, state.reward.params, key_post, pool.obs, pool.act, c.reward.num_posterior_samples
        )
        res = acquire(
            acq_cfg, key_acq, post.returns, pool.valid, n, k_max,
            bin_probs=post.bin_probs, rating_mean=post.rating_mean, rating_var=post.rating_var,
            true_returns=jnp.sum(pool.rew, axis=-1) if acq_cfg.pair_mode == "reference" else None,
            pair_excluded_clips=pool.in_pair, rated_clips=pool.rated,
            n_pref_cum=state.counters.queries_pref, n_eval_cum=state.counters.queries_eval,
            adaptive_state=state.acquisition,
        )
        state = state.replace(acquisition=res.adaptive_state)
        state, (n_pref, n_eval) = _label(
            state, key_lab, res.pair_idx, res.pair_mask, res.clip_idx, res.clip_mask
        )
        metrics = {
            "n_requested": n,
            "n_pref": n_pref,
            "n_eval": n_eval,
            "bald_pref": res.bald_pref_mean if use_pref else jnp.nan,
            "bald_eval": res.bald_eval_mean if use_eval else jnp.nan,
            "alloc_a_pref": res.a_pref,
            "alloc_a_eval": res.a_eval,
        }
        return state, metrics

    def reward_corr(state):
        """Spearman(learned clip return, true clip return) over the valid pool."""
        pool = state.pool
        learned = jnp.sum(model.step_reward(state.reward.params, pool.obs, pool.act), axis=-1)
        return masked_spearman(learned, jnp.sum(pool.rew, axis=-1), pool.valid)

    return FeedbackParts(
        init_reward=init_reward,
        init_buffers=init_buffers,
        init_acquisition=init_acquisition,
        step_reward=step_reward,
        initial_labels=initial_labels,
        fit=fit,
        budget_used=budget_used,
        acquire_and_label=acquire_and_label,
        reward_corr=reward_corr,
    )

