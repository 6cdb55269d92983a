"""Jittable reward-model training: unified preference + rating objective, early stopping.

One ``fit`` call runs up to ``max_epochs`` epochs under ``lax.while_loop``. Each epoch
shuffles only the valid training items of both modalities into one stream (sort keys
``uniform(fold_in(key, slot))`` with invalid slots last, so the order of the valid items
does not depend on the buffer capacity) and steps Adam on minibatches of ``batch_size``
mixed items; the number of minibatches is ``ceil(n_train / batch_size)``, so a buffer of
capacity C holding n items trains exactly like a buffer of size n. A minibatch with no
valid item leaves params and optimiser state bitwise unchanged. Early stopping follows
the reference (strict improvement resets the patience counter) but restores the best
validation weights and their Adam state unless ``compat.keep_last_weights``. In the first fit of a fresh state
the first ``warmup_epochs`` epochs are not candidates and do not count towards patience.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import optax

from active_rlhf_jax.buffers import FeedbackBuffers
from active_rlhf_jax.config import apply_hyper
from active_rlhf_jax.reward import likelihoods as lik
from active_rlhf_jax.reward.fit_state import (  # noqa: F401  (re-exported)
    Batch,
    FitCarry,
    FitStats,
    RewardTrainer,
    RewardTrainState,
)
from active_rlhf_jax.reward.model import RewardModel
from active_rlhf_jax.reward.posterior import compute_rating_nll


def _gather(buffers: FeedbackBuffers, pj, pmask, rj, rmask) -> Batch:
    return Batch(buffers.pref_obs_a[pj], buffers.pref_act_a[pj], buffers.pref_obs_b[pj],
                 buffers.pref_act_b[pj], buffers.pref_label[pj], pmask,
                 buffers.rating_obs[rj], buffers.rating_act[rj], buffers.rating_value[rj], rmask,
                 buffers.rating_round[rj])


def _bootstrap(key, mask):
    """Resample the n valid slots with replacement into slots 0..n-1 (capacity-stable)."""
    cap = mask.shape[0]
    order = jnp.argsort(~mask, stable=True)
    n = jnp.sum(mask)
    draws = jax.vmap(lambda j: jax.random.randint(jax.random.fold_in(key, j), (), 0,
                                                  jnp.maximum(n, 1)))(jnp.arange(cap))
    return order[draws], jnp.arange(cap) < n


def round_walk_penalty(p: dict) -> jax.Array:
    """Random-walk prior on a relative rating scale's per-round calibration: the summed
    squared change of ``round_shift`` and ``round_log_gain`` (each ``[R]``) from each
    round to the next. Round ``r``'s bins span the pool's returns at round ``r``, and the
    pool changes by a few percent per round, so neighbouring rounds' calibrations are
    close; each round alone holds a few ratings (400 labels over 50 rounds), too few to
    fit two parameters well. Rounds without ratings sit between their neighbours."""
    return (jnp.sum(jnp.square(jnp.diff(p["round_shift"])))
            + jnp.sum(jnp.square(jnp.diff(p["round_log_gain"]))))


def _mean_losses(stats: FitStats, rating_weight, per_item: bool):
    """Objective and accuracy from :class:`FitStats` (one minibatch or a whole pass)."""
    acc = stats.num_correct / jnp.maximum(stats.num_decided, 1.0)
    if per_item:
        return ((stats.pref_nll_sum + rating_weight * stats.rating_nll_sum)
                / jnp.maximum(stats.num_pref + stats.num_rating, 1.0), acc)
    pref = stats.pref_nll_sum / jnp.maximum(stats.num_pref, 1.0)
    rating = stats.rating_nll_sum / jnp.maximum(stats.num_rating, 1.0)
    return pref + rating_weight * rating, acc


def make_reward_trainer(config, model: RewardModel, traced_dropout: bool = False
                        ) -> RewardTrainer:
    """Trainer for ``model`` (its config and compat flags are used; ``config`` must match).

    Args:
        config: RewardModelConfig (validated).
        model: from ``make_reward_model``.
        traced_dropout: ``fit`` trains at the dropout rate ``hyper["reward.dropout"]``
            instead of the config's (a sweep's cells that differ in it share the program).
    """
    config.validate()
    cfg = config
    compat = model.compat
    pref_only = compat.pref_only_unified
    per_item = cfg.modality_weighting == "per_item"
    ensemble = cfg.posterior == "ensemble"
    bsz = cfg.batch_size

    def optimizer_for(lr, weight_decay):
        """Coupled L2 + Adam at (possibly traced) ``lr`` and ``weight_decay``: the state's
        structure does not depend on them, so one ``init`` serves every value."""
        return optax.chain(
            optax.add_decayed_weights(weight_decay),  # coupled L2, as torch Adam
            optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8),
            optax.scale(-lr),
        )

    optimizer = optimizer_for(cfg.lr, cfg.weight_decay)

    # ``hp``: the RewardModelConfig whose lr, weight_decay, reg_weight and rating_weight a
    # call uses (a run's traced values, via apply_hyper), the trainer's own by default.
    def loss(params, key, batch: Batch, train: bool = True, hp=None):
        hp = cfg if hp is None else hp
        keys = jax.random.split(key, 3) if key is not None else (None, None, None)
        rate = hp.dropout if traced_dropout else None
        mu_a, _ = model.apply(params, batch.obs_a, batch.act_a, keys[0], rate)
        mu_b, _ = model.apply(params, batch.obs_b, batch.act_b, keys[1], rate)
        ra, rb = jnp.sum(mu_a, -1), jnp.sum(mu_b, -1)
        pm = batch.pref_mask.astype(bool)
        nll_p = jnp.where(pm, lik.compute_preference_nll(ra, rb, batch.label), 0.0)
        n_p = jnp.sum(pm).astype(jnp.float32)
        decided = pm & (batch.label != 0.5)
        correct = decided & ((ra > rb) == (batch.label > 0.5))
        if pref_only:
            r_sum = n_r = jnp.zeros((), jnp.float32)
        else:
            mu, var = model.apply(params, batch.obs, batch.act, keys[2], rate)
            rm = batch.rating_mask.astype(bool)
            nll_r = jnp.where(rm, compute_rating_nll(params, mu, var, batch.rating, cfg, compat,
                                                       batch.rating_round), 0.0)
            r_sum, n_r = jnp.sum(nll_r), jnp.sum(rm).astype(jnp.float32)
        # The six sums leave as one stacked array (in FitStats field order) and are named
        # after: as six separate outputs XLA fuses the reductions differently, which moved
        # the vmapped ensemble's validation loss by 1 ulp against the positional version.
        sums = jnp.stack([jnp.sum(nll_p), n_p, r_sum, n_r,
                          jnp.sum(correct).astype(jnp.float32), jnp.sum(decided).astype(jnp.float32)])
        stats = FitStats(*sums)
        total, _ = _mean_losses(stats, hp.rating_weight, per_item)
        if train:
            total = total + hp.reg_weight * (lik.compute_return_norm_reg(ra, pm)
                                              + lik.compute_return_norm_reg(rb, pm))
            if cfg.round_smoothing > 0 and "round_shift" in params["params"]:
                total = total + cfg.round_smoothing * round_walk_penalty(params["params"])
        return total, stats

    def step(params, opt_state, key, batch: Batch, hp=None):
        hp = cfg if hp is None else hp
        grads, stats = jax.grad(loss, has_aux=True)(params, key, batch, True, hp)
        opt = optimizer_for(hp.lr, hp.weight_decay)
        updates, new_opt = opt.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        any_valid = stats.num_pref + stats.num_rating > 0

        def keep(new, old):
            return jax.tree_util.tree_map(lambda n, o: jnp.where(any_valid, n, o), new, old)

        return keep(new_params, params), keep(new_opt, opt_state), stats

    def fit_member(state: RewardTrainState, buffers: FeedbackBuffers, key, p_idx, p_mask,
                   r_idx, r_mask, max_epochs, patience, hp):
        cp, cr = p_mask.shape[0], r_mask.shape[0]
        if pref_only:
            r_mask = jnp.zeros_like(r_mask)
        n_train = jnp.sum(p_mask) + jnp.sum(r_mask)
        n_batches = (n_train + bsz - 1) // bsz
        pv = buffers.pref_valid & buffers.pref_is_val
        rv = buffers.rating_valid & buffers.rating_is_val
        if pref_only:
            rv = jnp.zeros_like(rv)
        n_pv, n_rv = jnp.sum(pv), jnp.sum(rv)
        pv_order = jnp.argsort(~pv, stable=True)
        rv_order = jnp.argsort(~rv, stable=True)
        n_val_batches = (jnp.maximum(n_pv, n_rv) + bsz - 1) // bsz
        arange_b = jnp.arange(bsz)
        # A fresh network's first fit: its first warmup_epochs epochs are not early-stopping
        # candidates (a tiny validation set can rank the barely trained network best).
        warmup = jnp.where(state.num_steps == 0, cfg.warmup_epochs, 0)

        def val_stats(params):
            def body(b, acc):
                pos = b * bsz + arange_b
                batch = _gather(buffers, pv_order[jnp.minimum(pos, cp - 1)], pos < n_pv,
                                rv_order[jnp.minimum(pos, cr - 1)], pos < n_rv)
                return acc + loss(params, None, batch, False, hp)[1]

            return jax.lax.fori_loop(0, n_val_batches, body, FitStats.zeros())

        def epoch(carry: FitCarry) -> FitCarry:
            ep = carry.epoch
            k_perm, k_drop = jax.random.split(jax.random.fold_in(key, ep))
            kp, kr = jax.random.split(k_perm)
            up = jax.vmap(lambda j: jax.random.uniform(jax.random.fold_in(kp, j)))(jnp.arange(cp))
            ur = jax.vmap(lambda j: jax.random.uniform(jax.random.fold_in(kr, j)))(jnp.arange(cr))
            order = jnp.argsort(jnp.concatenate([jnp.where(p_mask, up, 2.0),
                                                 jnp.where(r_mask, ur, 2.0)]), stable=True)

            def body(b, c):
                params, opt, acc = c
                pos = b * bsz + arange_b
                inr = pos < n_train
                slot = order[jnp.minimum(pos, cp + cr - 1)]
                is_p = slot < cp
                batch = _gather(buffers, p_idx[jnp.clip(slot, 0, cp - 1)], inr & is_p,
                                r_idx[jnp.clip(slot - cp, 0, cr - 1)], inr & ~is_p)
                params, opt, stats = step(params, opt, jax.random.fold_in(k_drop, b), batch, hp)
                return params, opt, acc + stats

            params, opt, tstats = jax.lax.fori_loop(
                0, n_batches, body, (carry.params, carry.opt_state, FitStats.zeros()))
            vstats = val_stats(params)
            train_loss, train_acc = _mean_losses(tstats, hp.rating_weight, per_item)
            val_loss, val_acc = _mean_losses(vstats, hp.rating_weight, per_item)
            # Without validation items, early-stop on the training loss.
            crit = jnp.where(n_pv + n_rv > 0, val_loss, train_loss)
            eligible = (ep >= warmup) | (ep + 1 >= max_epochs)
            improved = eligible & (crit < carry.best_val_loss)

            def pick(new, old):
                return jax.tree_util.tree_map(lambda n, o: jnp.where(improved, n, o), new, old)

            return FitCarry(
                epoch=ep + 1, params=params, opt_state=opt,
                best_params=pick(params, carry.best_params),
                best_opt_state=pick(opt, carry.best_opt_state),
                best_val_loss=jnp.where(improved, crit, carry.best_val_loss),
                patience_count=jnp.where(improved | ~eligible, 0, carry.patience_count + 1),
                num_steps=carry.num_steps + n_batches,
                train_loss=train_loss, val_loss=val_loss, train_acc=train_acc, val_acc=val_acc)

        def cond(carry: FitCarry):
            return (carry.epoch < max_epochs) & (carry.patience_count < patience) & (n_train > 0)

        zero_i, zero_f = jnp.zeros((), jnp.int32), jnp.zeros((), jnp.float32)
        init = FitCarry(
            epoch=zero_i, params=state.params, opt_state=state.opt_state,
            best_params=state.params, best_opt_state=state.opt_state,
            best_val_loss=jnp.asarray(jnp.inf, jnp.float32), patience_count=zero_i,
            num_steps=zero_i, train_loss=zero_f, val_loss=zero_f, train_acc=zero_f,
            val_acc=zero_f)
        c = jax.lax.while_loop(cond, epoch, init)
        # Restoring the best weights restores the Adam state of that epoch too, so the next
        # refit continues from moments (and a bias-correction count) that belong to the
        # weights it starts from. The reference keeps both from the last epoch.
        if compat.keep_last_weights:
            out, out_opt = c.params, c.opt_state
        else:
            out, out_opt = c.best_params, c.best_opt_state
        new_state = RewardTrainState(
            params=out, opt_state=out_opt, best_params=c.best_params,
            best_val_loss=c.best_val_loss,
            num_steps=state.num_steps + c.num_steps.astype(jnp.int32),
            num_epochs=state.num_epochs + c.epoch, num_fits=state.num_fits + 1)
        metrics = dict(train_loss=c.train_loss, val_loss=c.val_loss, train_acc=c.train_acc,
                       val_acc=c.val_acc, epochs=c.epoch.astype(jnp.float32),
                       best_val_loss=c.best_val_loss)
        return new_state, metrics

    def init(params) -> RewardTrainState:
        def one(p):
            z = jnp.zeros((), jnp.int32)
            return RewardTrainState(p, optimizer.init(p), p, jnp.asarray(jnp.inf, jnp.float32),
                                    z, z, z)

        return jax.vmap(one)(params) if ensemble else one(params)

    def fit(state: RewardTrainState, buffers: FeedbackBuffers, key, max_epochs, patience,
            hyper=None):
        hp = apply_hyper(cfg, hyper, "reward")
        if traced_dropout:
            hp = dataclasses.replace(hp, dropout=hyper["reward.dropout"])
        p_train, r_train = buffers.pref_train_mask, buffers.rating_train_mask
        if not ensemble:
            cp, cr = p_train.shape[0], r_train.shape[0]
            return fit_member(state, buffers, key, jnp.arange(cp), p_train, jnp.arange(cr),
                              r_train, max_epochs, patience, hp)

        def member(st, k):
            k_fit, kbp, kbr = jax.random.split(k, 3)
            p_idx, p_mask = _bootstrap(kbp, p_train)
            r_idx, r_mask = _bootstrap(kbr, r_train)
            return fit_member(st, buffers, k_fit, p_idx, p_mask, r_idx, r_mask, max_epochs,
                              patience, hp)

        new_state, metrics = jax.vmap(member)(state, jax.random.split(key, cfg.ensemble_size))
        return new_state, jax.tree_util.tree_map(jnp.mean, metrics)

    return RewardTrainer(init, fit, step, loss, optimizer)
