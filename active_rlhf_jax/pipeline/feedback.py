"""The feedback half of an RLHF iteration as stages: acquire, label, store, fit.

Each stage is a pure function of the sub-states it needs (the reward model's state, the
clip pool, the feedback buffers, the acquisition state) and of keys named by purpose; none
takes or returns the whole ``PipelineState`` and none advances a counter, so the
iteration in pipeline/train.py reads top to bottom. Data moves between stages as the
named batches of :mod:`active_rlhf_jax.batches`. Everything is fixed-shape: ``k_max``
query slots per modality, with masks.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from active_rlhf_jax import teachers
from active_rlhf_jax.acquisition import AdaptiveState
from active_rlhf_jax.acquisition import acquire as acquire_queries
from active_rlhf_jax.acquisition.choice import Choice
from active_rlhf_jax.batches import Clips, PreferenceBatch, Queries, RatingBatch
from active_rlhf_jax.buffers import add_preferences, add_ratings, make_feedback_buffers
from active_rlhf_jax.config import apply_hyper, effective_acquisition
from active_rlhf_jax.pipeline.hyper import CHOICES
from active_rlhf_jax.pipeline.masked_stats import masked_spearman
from active_rlhf_jax.pipeline.schedule import initial_label_counts
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
# 10 GB for the reference's grown HalfCheetah pool). Coherent masks give the same samples
# for any block (bitwise, measured on Hopper's 4,096-clip pool), so the block is small:
# 256 clips kept the posterior's buffers at 125 MB per run against 1,000 MB at 2,048 and
# ran in 0.55x the time (CPU, 2026-12-02); a sweep of 10 Hopper runs in one call had
# reached 11.6 GB. Under compat.elementwise_dropout the block's index enters the masks,
# so the reference's runs keep their 2,048-clip blocks and their recorded samples.
POSTERIOR_BLOCK = 256
POSTERIOR_BLOCK_ELEMENTWISE = 2048


def blocked_clip_posterior(model, params, key, obs, act, num_samples: int,
                           block: int | None = None, rating_round=None, dropout=None):
    """``model.clip_posterior`` over ``obs [N, L, o]`` in blocks of ``block`` clips.

    The same posterior: sample s uses the same key, hence the same coherent dropout masks,
    in every block (pools of at most ``block`` clips take the unblocked call, bitwise as
    before). Under ``compat.elementwise_dropout`` each block folds its index into the key,
    so masks stay independent across clips.
    """
    elementwise = model.compat.elementwise_dropout
    if block is None:
        block = POSTERIOR_BLOCK_ELEMENTWISE if elementwise else POSTERIOR_BLOCK
    n = obs.shape[0]
    if n <= block:
        return model.clip_posterior(params, key, obs, act, num_samples, rating_round, dropout)
    nb = -(-n // block)
    pad = nb * block - n
    padded = [jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1)).reshape((nb, block) + x.shape[1:])
              for x in (obs, act)]

    def one(args):
        b, o, a = args
        k = jax.random.fold_in(key, b) if elementwise else key
        return model.clip_posterior(params, k, o, a, num_samples, rating_round, dropout)

    out = jax.lax.map(one, (jnp.arange(nb), *padded))  # fields [nb, S, block, ...]

    def merge(x):
        x = jnp.moveaxis(x, 0, 1)  # [S, nb, block, ...]
        return x.reshape((x.shape[0], nb * block) + x.shape[3:])[:, :n]

    return jax.tree_util.tree_map(merge, out)


# Static draws per initial pair slot under compat.min_gap_filter (the reference's own BALD
# pool gives up after 50 draws per wanted pair; its initial sampler never gives up).
GAP_PAIR_ATTEMPTS = 50


class FeedbackStages(NamedTuple):
    """The feedback stages of one seed (see :func:`make_feedback_stages`).

    Attributes:
        init_reward: ``(key) -> RewardTrainState``.
        init_buffers: ``() -> FeedbackBuffers`` (capacity: the budget per used modality).
        init_acquisition: ``() -> AdaptiveState``.
        step_reward: ``(reward, obs [..., o], act [..., a]) -> [...]`` learned reward.
        initial_queries: ``(key_a, key_b, key_c, pool, hyper=None) -> Queries``, the
            random initial batch (``hyper`` names the kind under a feedback choice).
        acquire: ``(key_post, key_select, reward, pool, acq_state, counters, n,
            hyper=None) -> (Queries, acq_state, metrics)``.
        label: ``(key_pref, key_rating, pool, queries, round, hyper=None) ->
            (PreferenceBatch | None, RatingBatch | None)``, the simulated teacher (None:
            modality unused); ``round`` ([] int32: 0 initial, i iteration i) tags the
            ratings of a relative scale; ``hyper`` (pipeline/hyper.py) sets the teacher's
            traced noise fields (default: the config's).
        store: ``(key_pref, key_rating, buffers, prefs, ratings) -> buffers``.
        fit: ``(key, reward, buffers, initial, hyper=None) -> (reward, metrics)``.
        budget_used: ``(buffers, counters) -> int32 []`` labels charged so far.
        reward_corr: ``(reward, pool) -> []`` Spearman of learned vs true clip returns.
        clip_corr: ``(reward, clips) -> []`` the same over a :class:`Clips` batch.
        model: the RewardModel.
    """

    init_reward: Callable
    init_buffers: Callable
    init_acquisition: Callable
    step_reward: Callable
    initial_queries: Callable
    acquire: Callable
    label: Callable
    store: Callable
    fit: Callable
    budget_used: Callable
    reward_corr: Callable
    clip_corr: Callable
    model: object


def make_feedback_stages(config, env, choices: dict | None = None) -> FeedbackStages:
    """The feedback stages of ``config``; ``choices`` (pipeline/hyper.py's
    ``program_choices``) names the fields chosen at run time from the hyper
    (``acquisition.method``, ``acquisition.allocation``, ``run.feedback``: a
    :class:`Choice` each). With a feedback choice the stages hold and ask both
    modalities, and a run's kind (the hyper's ``run.feedback``) sets its initial batch's
    split and every acquisition's (a preference run's rating buffer stays empty)."""
    c, run, compat = config, config.run, config.compat
    choices = choices or {}
    kinds = choices.get("run.feedback")  # e.g. ("preference", "both"), or None
    model = make_reward_model(c.reward, env.observation_size, env.action_size, compat,
                              num_rounds=c.rating_rounds, absorbing=run.absorbing_clips)
    relative = c.teacher.rating_scale != "fixed"  # "pool" or "pool-rank": one round each
    traced_dropout = "reward.dropout" in choices  # a sweep's cells differ in it
    trainer = make_reward_trainer(c.reward, model, traced_dropout)
    acq_cfg = effective_acquisition(c)
    k_max = c.max_queries
    budget = run.budget
    if kinds is None:
        n_p0, n_e0 = c.initial_labels
        k0 = max(n_p0, n_e0, 1)
        use_pref = run.feedback in ("preference", "both")
        use_eval = run.feedback in ("rating", "both")
    else:
        # Both modalities' stages; each run's kind masks one of them (see feedback_kind).
        acq_cfg = dataclasses.replace(acq_cfg, rating_likelihood=c.reward.rating_likelihood,
                                      pairs=True)
        initial = [initial_label_counts(budget, run.initial_fraction, k) for k in kinds]
        k0 = max(max(counts) for counts in initial + [(1,)])
        use_pref = use_eval = True

    def feedback_kind(hyper) -> Choice:
        return Choice(kinds, hyper["run.feedback"], CHOICES["run.feedback"])

    def initial_counts(hyper):
        """(n_p0, n_e0): compiled in, or the hyper's kind's under a feedback choice."""
        if kinds is None:
            return n_p0, n_e0
        return feedback_kind(hyper).pick([tuple(jnp.int32(v) for v in counts)
                                          for counts in initial])

    def uses(hyper, kind_uses: tuple) -> jax.Array:
        """Whether the run's kind is one of ``kind_uses`` (traced bool under a choice)."""
        if kinds is None:
            return run.feedback in kind_uses
        return feedback_kind(hyper).pick([jnp.bool_(k in kind_uses) for k in kinds])

    def init_reward(key):
        return trainer.init(model.init(key))

    def init_buffers():
        return make_feedback_buffers(
            budget if use_pref else 1, budget if use_eval else 1,
            run.segment_length, env.observation_size, env.action_size,
        )

    def step_reward(reward, obs, act):
        return model.step_reward(reward.params, obs, act)

    def budget_used(buffers, counters):
        if compat.budget_counts_train_only:  # the reference charges training labels only (§19.1.8)
            return jnp.sum(buffers.pref_train_mask) + jnp.sum(buffers.rating_train_mask)
        return counters.labels_used

    def initial_queries(key_a, key_b, key_c, pool, hyper=None) -> Queries:
        """The reference's initial random batch: ``n_p0`` pairs and ``n_e0`` clips of the
        pool (under ``compat.min_gap_filter`` pairs below the gap are redrawn, as the
        reference does). A slot's pair and clip do not depend on ``k0``, so a program
        with more slots (a feedback choice) asks the same queries in its first ones."""
        n_p0, n_e0 = initial_counts(hyper)
        valid = pool.valid
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
            pair_idx, found = draw_gap_pairs(key_a, valid, pool.true_returns, k0,
                                             GAP_PAIR_ATTEMPTS * k0, c.teacher.min_gap)
            pair_mask = pair_mask & found
        # A pool of fewer than two clips (warm-up episodes all shorter than a clip, e.g. a
        # Walker2d that falls within 50 steps) has empty slots in its first two places:
        # no query may name one (the teacher would label all-zero clips and the budget
        # would count them), so those queries are masked and the budget waits for clips.
        clip_idx = order_c[slots % n_valid]
        pair_mask = pair_mask & valid[pair_idx[:, 0]] & valid[pair_idx[:, 1]]
        return Queries(pair_idx=pair_idx, pair_mask=pair_mask,
                       clip_idx=clip_idx, clip_mask=(slots < n_e0) & valid[clip_idx])

    def acquire(key_post, key_select, reward, pool, acq_state, counters, n, hyper=None):
        """Posterior samples of every pool clip's return, then acquisition of ``n``
        (traced) queries in ``k_max`` slots. On a relative rating scale the rating-bin
        probabilities use the newest fitted round's calibration (this iteration's round
        has no labels yet). With a method choice, ``hyper`` names the method."""
        post = blocked_clip_posterior(
            model, reward.params, key_post, pool.obs, pool.act, c.reward.num_posterior_samples,
            rating_round=jnp.maximum(counters.iteration - 1, 0) if relative else None,
            dropout=hyper["reward.dropout"] if traced_dropout else None,
        )
        acq = apply_hyper(acq_cfg, hyper, "acquisition")
        picked = {field.split(".")[1]: Choice(options, hyper[field], CHOICES[field])
                  for field, options in choices.items() if field in CHOICES}  # method=...
        res = acquire_queries(
            acq, key_select, post.returns, pool.valid, n, k_max,
            bin_probs=post.bin_probs, rating_mean=post.rating_mean, rating_var=post.rating_var,
            true_returns=pool.true_returns if acq_cfg.pair_mode == "reference" else None,
            pair_excluded_clips=pool.in_pair, rated_clips=pool.rated,
            n_pref_cum=counters.queries_pref, n_eval_cum=counters.queries_eval,
            adaptive_state=acq_state,
            **picked,
        )
        queries = Queries(pair_idx=res.pair_idx, pair_mask=res.pair_mask,
                          clip_idx=res.clip_idx, clip_mask=res.clip_mask)
        metrics = {
            "bald_pref": jnp.where(uses(hyper, ("preference", "both")), res.bald_pref_mean,
                                   jnp.nan),
            "bald_eval": jnp.where(uses(hyper, ("rating", "both")), res.bald_eval_mean,
                                   jnp.nan),
            "alloc_a_pref": res.a_pref,
            "alloc_a_eval": res.a_eval,
        }
        return queries, res.adaptive_state, metrics

    def label(key_pref, key_rating, pool, queries: Queries, round_idx, hyper=None):
        """The simulated teacher labels the asked queries from the true rewards. A label
        the teacher drops (a tie under ``min_gap``, say) leaves its slot masked. On a
        relative rating scale the bins span the pool's discounted true returns now (their
        range, or their quantiles under ``pool-rank``)."""
        prefs = ratings = None
        teacher = apply_hyper(c.teacher, hyper, "teacher")
        if use_pref:
            a, b = queries.pair_idx[:, 0], queries.pair_idx[:, 1]
            lab, ok = teachers.label_preferences(key_pref, pool.rew[a], pool.rew[b], teacher, compat)
            prefs = PreferenceBatch(obs_a=pool.obs[a], act_a=pool.act[a], obs_b=pool.obs[b],
                                    act_b=pool.act[b], label=lab, mask=queries.pair_mask & ok)
        if use_eval:
            i = queries.clip_idx
            scale = {"fixed": lambda: None,
                     "pool": lambda: teachers.pool_rating_range(pool.rew, pool.valid,
                                                               c.reward.gamma),
                     "pool-rank": lambda: teachers.pool_rank_scale(pool.rew, pool.valid,
                                                                   c.reward.gamma),
                     }[c.teacher.rating_scale]()
            rating, ok = teachers.label_ratings(key_rating, pool.rew[i], teacher, compat,
                                                num_bins=c.reward.num_bins, gamma=c.reward.gamma,
                                                scale=scale)
            ratings = RatingBatch(obs=pool.obs[i], act=pool.act[i], rating=rating,
                                  mask=queries.clip_mask & ok,
                                  round=jnp.full(i.shape, round_idx, jnp.int32))
        return prefs, ratings

    def store(key_pref, key_rating, buffers, prefs, ratings):
        if prefs is not None:
            buffers = add_preferences(buffers, key_pref, prefs, compat)
        if ratings is not None:
            buffers = add_ratings(buffers, key_rating, ratings, compat)
        return buffers

    def fit(key, reward, buffers, initial: bool, hyper=None):
        epochs = c.reward.init_epochs if initial else c.reward.refit_epochs
        patience = c.reward.init_patience if initial else c.reward.refit_patience
        reward, m = trainer.fit(reward, buffers, key, epochs, patience, hyper)
        return reward, {
            "rm_train_loss": m["train_loss"],
            "rm_val_loss": m["val_loss"],
            "rm_train_acc": m["train_acc"],
            "rm_val_acc": m["val_acc"],
            "rm_epochs": m["epochs"],
        }

    def clip_corr(reward, clips):
        """Spearman(learned, true clip return) over masked clips (``Clips`` or the pool:
        anything with ``obs [M, L, o]``, ``act``, ``rew [M, L]`` and a ``[M]`` mask)."""
        mask = clips.mask if isinstance(clips, Clips) else clips.valid
        learned = jnp.sum(model.step_reward(reward.params, clips.obs, clips.act), axis=-1)
        return masked_spearman(learned, jnp.sum(clips.rew, axis=-1), mask)

    def reward_corr(reward, pool):
        """Spearman(learned clip return, true clip return) over the valid pool."""
        return clip_corr(reward, pool)

    return FeedbackStages(
        init_reward=init_reward,
        init_buffers=init_buffers,
        init_acquisition=AdaptiveState.create,
        step_reward=step_reward,
        initial_queries=initial_queries,
        acquire=acquire,
        label=label,
        store=store,
        fit=fit,
        budget_used=budget_used,
        reward_corr=reward_corr,
        clip_corr=clip_corr,
        model=model,
    )
