"""``make_train(config) -> Pipeline``: the whole RLHF experiment as pure JAX functions.

One RLHF iteration (seed_spec §8.3), all inside one jitted function:

1. ``K`` rollout-and-update PPO cycles under ``lax.scan``, the reward model frozen; every
   rollout is relabelled by the learned reward in one batched call (the true reward for
   ``feedback="none"``).
2. Harvest of ``segments_per_iteration`` fixed-length segments at random offsets of the
   iteration's per-env trajectories into the FIFO clip pool.
3. Pacing ``n = round(remaining / iterations_left)``; acquisition over the pool.
4. The simulated teacher labels the chosen queries from the true rewards.
5. Feedback buffers, then a warm-started reward-model refit.

Iterations run under an outer ``lax.scan`` in chunks (``iterations_per_chunk``); the host
only sees the state between chunks. Seeds are a ``vmap`` axis of everything.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from active_rlhf_jax.config import Config
from active_rlhf_jax.envs import TrainingEnv, make
from active_rlhf_jax.pipeline import feedback as fb
from active_rlhf_jax.pipeline.pool import ClipPool, harvest_segments
from active_rlhf_jax.pipeline.schedule import compute_queries_this_iteration
from active_rlhf_jax.pipeline.state import Counters, PipelineState, RewardNormState
from active_rlhf_jax.ppo import make_ppo


class Pipeline(NamedTuple):
    """Pure functions of one seed; ``vmap`` them over seeds.

    ``init(key) -> PipelineState`` runs the initial phase (warm-up, initial pool, initial
    random labels, initial fit). ``run_chunk(state) -> (state, metrics)`` runs
    ``iterations_per_chunk`` iterations (metrics ``[chunk]`` per key). ``evaluate(state, key)``
    returns the deterministic policy's true returns ``[eval_episodes]``.
    ``train(key)`` chains them all (for ``jax.jit(jax.vmap(train))(keys)``).
    ``first_nonfinite(state)`` is the NaN/Inf guard: int32 ``[]``, 0 when every quantity
    named in ``guarded_names`` is finite, else 1 + the index of the first that is not;
    each iteration logs it as the ``nonfinite`` metric.
    """

    init: Callable
    run_chunk: Callable
    evaluate: Callable
    train: Callable
    config: Config
    env: object
    first_nonfinite: Callable
    guarded_names: tuple


#: (sub-state, field) pairs the NaN/Inf guard checks, in reporting order. The reward
#: model's ``best_val_loss`` is left out: it starts at +inf by design.
GUARDED = (
    ("ppo", "actor_params"),
    ("ppo", "critic_params"),
    ("ppo", "opt_state"),
    ("ppo", "obs_norm"),
    ("reward", "params"),
    ("reward", "best_params"),
    ("reward", "opt_state"),
)


#: Losses guarded besides the state: a reward-model fit whose every epoch's loss is NaN
#: leaves a finite state behind (the best epoch's weights and Adam state are restored), so
#: a state check alone lets a never-training reward model run on silently.
GUARDED_LOSSES = (
    ("ppo.loss", ("ppo_policy_loss", "ppo_value_loss")),
    ("reward.fit_loss", ("rm_train_loss",)),
)


def make_guard(ground_truth: bool):
    """-> (first_nonfinite(state, metrics) -> int32 [], names): the NaN/Inf guard.

    Reductions over the state's float leaves and the iteration's losses, traced into the
    iteration, so the check costs no host round-trip: the host reads the flag with the
    chunk's metrics. Code k > 0 names ``names[k - 1]``; with ``metrics=None`` only the state
    is checked (the initial phase).
    """
    guarded = tuple(g for g in GUARDED if not (ground_truth and g[0] == "reward"))
    losses = tuple(g for g in GUARDED_LOSSES if not (ground_truth and g[0].startswith("reward")))
    names = tuple(f"{a}.{b}" for a, b in guarded) + tuple(n for n, _ in losses)

    def first_nonfinite(state: PipelineState, metrics: dict | None = None) -> jax.Array:
        finite = []
        for group, field in guarded:
            leaves = [
                x for x in jax.tree_util.tree_leaves(getattr(getattr(state, group), field))
                if jnp.issubdtype(x.dtype, jnp.inexact)
            ]
            finite.append(jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
                          if leaves else jnp.array(True))
        for _, keys in losses:
            present = [metrics[k] for k in keys if metrics is not None and k in metrics]
            finite.append(jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in present]))
                          if present else jnp.array(True))
        bad = ~jnp.stack(finite)
        return jnp.where(jnp.any(bad), jnp.argmax(bad) + 1, 0).astype(jnp.int32)

    return first_nonfinite, names


def _episode_returns(rewards, dones, acc):
    """Per-env running returns over a rollout.

    Args:
        rewards, dones: ``[T, B]``; acc: ``[B]`` running return carried in.
    Returns:
        (acc after the rollout ``[B]``, sum of completed returns ``[]``, count ``[]``).
    """

    def step(carry, x):
        acc, total, count = carry
        r, d = x
        acc = acc + r
        total = total + jnp.sum(acc * d)
        count = count + jnp.sum(d)
        return (jnp.where(d > 0, 0.0, acc), total, count), None

    zero = jnp.zeros((), acc.dtype)
    (acc, total, count), _ = jax.lax.scan(step, (acc, zero, zero), (rewards, dones))
    return acc, total, count


def _zscore(norm_state: RewardNormState, raw, window: int):
    """Sliding-window z-scoring of learned rewards ``raw [T, B]`` (reference option).

    The window is updated with the whole rollout first, then the rollout is normalised
    with the window's mean and population std (+1e-8), batched instead of per step.
    """
    flat = raw.reshape(-1)
    n = flat.shape[0]
    idx = (norm_state.ptr + jnp.arange(n)) % window
    win = norm_state.window.at[idx].set(flat)
    count = jnp.minimum(norm_state.count + n, window)
    mask = jnp.arange(window) < count
    mean = jnp.sum(win * mask) / count
    std = jnp.sqrt(jnp.sum(((win - mean) * mask) ** 2) / count)
    out = jnp.where(count > 1, (raw - mean) / (std + 1e-8), raw)
    new = RewardNormState(window=win, ptr=(norm_state.ptr + n) % window, count=count)
    return new, out


def make_train(config: Config) -> Pipeline:
    """Build the pipeline's pure functions for ``config`` (validated here)."""
    config.validate()
    c, run = config, config.run
    env = make(c.env.env_id, backend=c.env.backend, **c.env.options())
    tenv = TrainingEnv(env, c.ppo.num_envs)
    num_updates = c.warmup_cycles + c.cycles_per_iteration * c.num_iterations
    # The run's PPO updates (warm-up + every iteration's cycles) set anneal_lr's horizon.
    ppo = make_ppo(c.ppo, tenv, num_updates=num_updates)
    ground_truth = run.feedback == "none"
    parts = None if ground_truth else fb.make_feedback_parts(config, env)
    num_iterations = c.num_iterations
    K = c.cycles_per_iteration
    T, B = c.ppo.num_steps, c.ppo.num_envs
    L = run.segment_length
    dtype = jnp.zeros(()).dtype
    window = max(run.reward_norm_window, 1)
    first_nonfinite, guarded_names = make_guard(ground_truth)

    def learned_reward(state: PipelineState, tr):
        if ground_truth:
            return state.reward_norm, tr.true_reward, tr.true_reward
        raw = parts.step_reward(state.reward, tr.raw_obs, tr.env_action)
        if run.reward_norm_window > 0:
            norm_state, used = _zscore(state.reward_norm, raw, window)
            return norm_state, raw, used
        return state.reward_norm, raw, raw

    def ppo_cycles(state: PipelineState, key, num_cycles: int, train_on_true: bool, update: bool):
        """``num_cycles`` rollouts (and updates) -> (state, per-env trajectories, metrics).

        Updating cycles draw their key as ``ppo.make_train`` does:
        ``split(key_loop, num_updates)[u]`` for the ``u``-th update of the run, so the
        ground-truth pipeline is exactly the PPO trainer. Collection cycles (no update)
        split ``key`` instead.
        """

        def cycle(carry, key_cycle):
            st = carry
            if update:
                key_cycle = jax.random.split(st.ppo_key, num_updates)[st.ppo.update_step]
            key_roll, key_upd = jax.random.split(key_cycle)
            env_state, tr = ppo.rollout(st.ppo, st.env_state, key_roll)
            norm_state, raw_learned, ppo_reward = learned_reward(st, tr)
            if train_on_true:
                ppo_reward = tr.true_reward
            ppo_state = ppo.update_obs_norm(st.ppo, tr.raw_obs)
            if update:
                ppo_state, m = ppo.update(ppo_state, tr, ppo_reward, key_upd)
            else:
                m = {}
            ep_true, true_sum, n_done = _episode_returns(tr.true_reward, tr.done, st.ep_true)
            ep_learned, learned_sum, _ = _episode_returns(raw_learned, tr.done, st.ep_learned)
            st = st.replace(
                env_state=env_state,
                ppo=ppo_state,
                reward_norm=norm_state,
                ep_true=ep_true,
                ep_learned=ep_learned,
            )
            out = (tr.raw_obs, tr.env_action, tr.true_reward, tr.done)
            stats = dict(m, ep_true_sum=true_sum, ep_learned_sum=learned_sum, ep_count=n_done)
            return st, (out, stats)

        state, ((obs, act, rew, done), stats) = jax.lax.scan(
            cycle, state, jax.random.split(key, num_cycles)
        )
        # [C, T, B, ...] -> per-env time series [B, C*T, ...]
        to_series = lambda x: jnp.swapaxes(x.reshape((num_cycles * T, B) + x.shape[3:]), 0, 1)
        traj = (to_series(obs), to_series(act), to_series(rew), to_series(done))
        count = jnp.sum(stats["ep_count"])
        summary = {
            "true_return": jnp.where(count > 0, jnp.sum(stats["ep_true_sum"]) / count, jnp.nan),
            "learned_return": jnp.where(
                count > 0, jnp.sum(stats["ep_learned_sum"]) / count, jnp.nan
            ),
        }
        for k, v in stats.items():
            if not k.startswith("ep_"):
                summary["ppo_" + k] = jnp.mean(v)
        return state, traj, summary

    def init(key: jax.Array) -> PipelineState:
        # The PPO keys split as in ppo.make_train; the feedback keys come from a fold.
        key_ppo, key_env, key_loop = jax.random.split(key, 3)
        key_rm, key_warm, key_coll, key_harv, key_lab, key_fit, key_next = jax.random.split(
            jax.random.fold_in(key, 1), 7
        )
        env_state = tenv.reset(key_env)
        state = PipelineState(
            env_state=env_state,
            ppo=ppo.init(key_ppo),
            reward=None if ground_truth else parts.init_reward(key_rm),
            pool=ClipPool.create(
                c.pool_slots if not ground_truth else 1,
                L,
                env.observation_size,
                env.action_size,
                dtype,
            ),
            buffers=None if ground_truth else parts.init_buffers(),
            acquisition=None if ground_truth else parts.init_acquisition(),
            reward_norm=RewardNormState(
                window=jnp.zeros((window,), dtype),
                ptr=jnp.zeros((), jnp.int32),
                count=jnp.zeros((), jnp.int32),
            ),
            ep_true=jnp.zeros((B,), dtype),
            ep_learned=jnp.zeros((B,), dtype),
            counters=Counters(*(jnp.zeros((), jnp.int32) for _ in range(7))),
            key=key_next,
            ppo_key=key_loop,
        )
        # Warm-up on the true reward (the reference's INITIAL_POLICY_TS, whole rollouts).
        state, _, _ = ppo_cycles(state, key_warm, c.warmup_cycles, True, True)
        counters = state.counters.replace(warmup_steps=jnp.int32(c.warmup_cycles * T * B))
        state = state.replace(counters=counters)
        if ground_truth:
            return state.replace(ep_true=jnp.zeros_like(state.ep_true))
        # Initial pool from an explicit collection with the warm-up policy (no updates):
        # its PPO rollouts, or (reference) fresh whole episodes.
        if run.initial_collection_episodes > 0:
            traj = collect_episodes(state, key_coll, init_coll_env)
            coll_steps = run.initial_collection_episodes * env.episode_length
        else:
            state, traj, _ = ppo_cycles(state, key_coll, c.collection_cycles, True, False)
            coll_steps = c.collection_cycles * T * B
        seg = harvest_segments(key_harv, *traj, run.initial_segments, L)
        state = state.replace(
            pool=state.pool.add(*seg),
            counters=state.counters.replace(collection_steps=jnp.int32(coll_steps)),
        )
        # Initial random labels, then the initial fit.
        state = parts.initial_labels(state, key_lab)
        state = parts.fit(state, key_fit, initial=True)
        return state.replace(
            ep_true=jnp.zeros_like(state.ep_true), ep_learned=jnp.zeros_like(state.ep_learned)
        )

    num_coll = run.collection_episodes_per_iteration
    coll_env = TrainingEnv(env, num_coll) if num_coll > 0 else None
    num_coll0 = run.initial_collection_episodes
    init_coll_env = TrainingEnv(env, num_coll0) if num_coll0 > 0 else None

    def collect_episodes(state: PipelineState, key: jax.Array, coll_env=coll_env):
        """``coll_env.num_envs`` fresh episodes of the current stochastic policy (§2.1).

        A separate batch of envs, reset here, so the PPO envs' episodes are untouched;
        neither PPO nor its observation normaliser is updated. Auto-reset envs whose
        episode ends early start a new one (segments never cross the reset).

        Returns:
            per-env series ``(raw_obs [E, H, o], env_action [E, H, a], true_reward [E, H],
            done [E, H])`` with ``H = env.episode_length``.
        """
        key_reset, key_act = jax.random.split(key)

        def step(env_state, k):
            action = ppo.act(state.ppo, env_state.obs, k)
            nxt = coll_env.step(env_state, action)
            return nxt, (env_state.obs, action, nxt.reward, nxt.done)

        _, out = jax.lax.scan(step, coll_env.reset(key_reset),
                              jax.random.split(key_act, env.episode_length))
        return tuple(jnp.swapaxes(x, 0, 1) for x in out)

    def iteration(state: PipelineState, _):
        key, key_ppo, key_harv, key_acq, key_fit = jax.random.split(state.key, 5)
        state = state.replace(key=key)
        state, traj, metrics = ppo_cycles(state, key_ppo, K, False, True)
        it = state.counters.iteration + 1
        counters = state.counters.replace(iteration=it, env_steps=state.counters.env_steps + K * T * B)
        state = state.replace(counters=counters)
        if not ground_truth:
            if num_coll > 0:
                key_coll, key_harv = jax.random.split(key_harv)
                traj = collect_episodes(state, key_coll)
                state = state.replace(counters=state.counters.replace(
                    collection_steps=state.counters.collection_steps
                    + num_coll * env.episode_length))
            seg = harvest_segments(key_harv, *traj, run.segments_per_iteration, L)
            state = state.replace(pool=state.pool.add(*seg))
            n = compute_queries_this_iteration(
                it, num_iterations, run.budget, parts.budget_used(state)
            )
            n = jnp.minimum(n, c.max_queries)
            state, acq_metrics = parts.acquire_and_label(state, key_acq, n)
            state, fit_metrics = parts.fit(state, key_fit, initial=False, with_metrics=True)
            metrics.update(acq_metrics)
            metrics.update(fit_metrics)
            metrics["reward_corr"] = parts.reward_corr(state)
        ctr = state.counters
        metrics.update(
            iteration=ctr.iteration,
            env_steps=ctr.env_steps,
            queries_pref=ctr.queries_pref,
            queries_eval=ctr.queries_eval,
            queries_total=ctr.queries_pref + ctr.queries_eval,
            labels_used=ctr.labels_used,
            collection_steps=ctr.collection_steps,
        )
        metrics["nonfinite"] = first_nonfinite(state, metrics)
        return state, metrics

    def run_chunk(state: PipelineState, length: int | None = None):
        """``length`` (static; default ``iterations_per_chunk``) iterations -> (state, metrics)."""
        return jax.lax.scan(iteration, state, None, length=length or run.iterations_per_chunk)

    eval_env = TrainingEnv(env, run.eval_episodes)

    def evaluate(state: PipelineState, key: jax.Array):
        """Deterministic policy, ``eval_episodes`` episodes -> true returns ``[E]``."""
        env_state = eval_env.reset(key)

        def step(carry, _):
            env_state, ret, alive = carry
            action = ppo.act(state.ppo, env_state.obs, key, deterministic=True)
            nxt = eval_env.step(env_state, action)
            ret = ret + alive * nxt.reward
            alive = alive * (1.0 - nxt.done)
            return (nxt, ret, alive), None

        zeros = jnp.zeros((run.eval_episodes,), dtype)
        (_, ret, _), _ = jax.lax.scan(
            step, (env_state, zeros, jnp.ones_like(zeros)), None, length=env.episode_length
        )
        return ret

    def train(key: jax.Array):
        """Whole run for one seed -> (final state, metrics ``[num_chunks * chunk]``, eval)."""
        key_init, key_eval = jax.random.split(key)
        state = init(key_init)

        # Every iteration under one scan; the runner splits the same loop into chunks.
        state, metrics = run_chunk(state, num_iterations)
        return state, metrics, evaluate(state, key_eval)

    return Pipeline(
        init=init, run_chunk=run_chunk, evaluate=evaluate, train=train, config=config, env=env,
        first_nonfinite=first_nonfinite, guarded_names=guarded_names,
    )
