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

The two-phase schedule (``run.retrain_fraction > 0``): the first
``config.learning_iterations`` iterations are the above, with the labels paced over them;
the last ``config.retrain_iterations`` run step 1 alone, on the final reward model and
pool (never changed again), with the PPO policy, optimiser and envs put back to where
they stood after the initial phase (kept in ``PipelineState.restart``) and a learning-rate
schedule over the second phase's own updates. It equals an online run of the first phase's
length followed by ``benchmarks/frozen_reward.py`` on its final reward, bit for bit
(tests/test_frozen_reward.py).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from active_rlhf_jax.batches import Queries
from active_rlhf_jax.config import Config
from active_rlhf_jax.envs import TrainingEnv, make
from active_rlhf_jax.pipeline.feedback import make_feedback_stages
from active_rlhf_jax.pipeline.guard import make_guard
from active_rlhf_jax.pipeline.hyper import hyper_values
from active_rlhf_jax.pipeline.pool import ClipPool, harvest_segments
from active_rlhf_jax.pipeline.rollouts import make_rollouts, reward_shape
from active_rlhf_jax.pipeline.schedule import compute_queries_this_iteration
from active_rlhf_jax.pipeline.state import Counters, PipelineState, ZScoreState
from active_rlhf_jax.ppo import deterministic_episodes, make_ppo


class Pipeline(NamedTuple):
    """Pure functions of one seed; ``vmap`` them over seeds.

    ``init(key, hyper=None) -> PipelineState`` runs the initial phase (warm-up, initial
    pool, initial random labels, initial fit); ``hyper`` (pipeline/hyper.py; default the
    config's values) is kept in the state, so runs that differ only in it are one ``vmap``
    over ``(keys, hyper)`` of one program. ``run_chunk(state, length, retrain) -> (state, metrics)``
    runs ``length`` iterations (default ``iterations_per_chunk``; metrics ``[length]`` per
    key) of the first phase, or with ``retrain`` of the two-phase schedule's second. ``evaluate(state, key)``
    returns the deterministic policy's true returns and lengths, ``[eval_episodes]`` each.
    ``train(key, hyper=None)`` chains them all (for ``jax.jit(jax.vmap(train))(keys)``).
    ``first_nonfinite(state)`` is the NaN/Inf guard: int32 ``[]``, 0 when every quantity
    named in ``guarded_names`` is finite, else 1 + the index of the first that is not;
    each iteration logs it as the ``nonfinite`` metric. ``rollouts`` is the PPO half
    (pipeline/rollouts.py), for diagnostics that train PPO on a given reward model
    without the feedback half (``benchmarks/frozen_reward.py``).
    """

    init: Callable
    run_chunk: Callable
    evaluate: Callable
    train: Callable
    config: Config
    env: object
    first_nonfinite: Callable
    guarded_names: tuple
    rollouts: object = None


def make_train(config: Config, choices: dict | None = None) -> Pipeline:
    """Build the pipeline's pure functions for ``config`` (validated here).

    ``choices`` (``pipeline/hyper.py``'s ``program_choices``): fields the program chooses
    at run time from the state's hyper instead of compiling ``config``'s value in, so runs
    that differ in them share it (a sweep's cells).
    """
    config.validate()
    c, run = config, config.run
    env = make(c.env.env_id, backend=c.env.backend, **c.env.options())
    tenv = TrainingEnv(env, c.ppo.num_envs)
    num_updates = c.warmup_cycles + c.cycles_per_iteration * c.learning_iterations
    # The run's PPO updates (warm-up + every iteration's cycles; the first phase's under
    # the two-phase schedule) set anneal_lr's horizon.
    ppo = make_ppo(c.ppo, tenv, num_updates=num_updates)
    ground_truth = run.feedback == "none"
    fb = None if ground_truth else make_feedback_stages(config, env, choices)
    rollouts = make_rollouts(config, env, tenv, ppo, None if ground_truth else fb.step_reward,
                             num_updates)
    K = c.cycles_per_iteration
    T, B = c.ppo.num_steps, c.ppo.num_envs
    L = run.segment_length
    n_learn, n_retrain = c.learning_iterations, c.retrain_iterations
    if n_retrain:
        # The second phase is PPO afresh: its learning-rate schedule (and the key table of
        # its updates) spans its own updates, as a run of that length would.
        updates2 = c.warmup_cycles + K * n_retrain
        rollouts2 = rollouts if updates2 == num_updates else make_rollouts(
            config, env, tenv, make_ppo(c.ppo, tenv, num_updates=updates2), fb.step_reward,
            updates2)
    dtype = jnp.zeros(()).dtype
    first_nonfinite, guarded_names = make_guard(ground_truth)
    # Fresh-episode collection (the reference's): initial pool, and per iteration.
    init_coll_env = (TrainingEnv(env, run.initial_collection_episodes)
                     if run.initial_collection_episodes > 0 else None)
    coll_env = (TrainingEnv(env, run.collection_episodes_per_iteration)
                if run.collection_episodes_per_iteration > 0 else None)
    eval_env = TrainingEnv(env, run.eval_episodes)

    def ask(state: PipelineState, key_label, queries: Queries) -> tuple[PipelineState, dict]:
        """Teacher labels for ``queries`` into the buffers; the pool marks the asked clips;
        the counters charge every asked query (a query the teacher drops costs too)."""
        key_pref, key_rating, key_store_pref, key_store_rating = jax.random.split(key_label, 4)
        prefs, ratings = fb.label(key_pref, key_rating, state.pool, queries,
                                  state.counters.iteration, state.hyper)
        buffers = fb.store(key_store_pref, key_store_rating, state.buffers, prefs, ratings)
        n_pref = jnp.sum(queries.pair_mask).astype(jnp.int32)
        n_eval = jnp.sum(queries.clip_mask).astype(jnp.int32)
        ctr = state.counters
        counters = ctr.replace(labels_used=ctr.labels_used + n_pref + n_eval,
                               queries_pref=ctr.queries_pref + n_pref,
                               queries_eval=ctr.queries_eval + n_eval)
        state = state.replace(buffers=buffers, pool=state.pool.mark_asked(queries),
                              counters=counters)
        return state, {"n_pref": n_pref, "n_eval": n_eval}

    def init(key: jax.Array, hyper: dict | None = None) -> PipelineState:
        """Initial phase: warm-up on the true reward, initial pool, random labels, first fit."""
        hyper = hyper_values(config) if hyper is None else hyper
        # The PPO keys split as in ppo.make_ppo_train; the feedback keys come from a fold.
        key_ppo, key_env, key_loop = jax.random.split(key, 3)
        key_rm, key_warm, key_coll, key_harv, key_lab, key_fit, key_next = jax.random.split(
            jax.random.fold_in(key, 1), 7
        )
        state = PipelineState(
            env_state=tenv.reset(key_env),
            ppo=ppo.init(key_ppo),
            reward=None if ground_truth else fb.init_reward(key_rm),
            pool=ClipPool.create(1 if ground_truth else c.pool_slots, L,
                                 env.observation_size, env.action_size, dtype),
            buffers=None if ground_truth else fb.init_buffers(),
            acquisition=None if ground_truth else fb.init_acquisition(),
            reward_zscore=ZScoreState.create(max(run.reward_norm_window, 1), dtype),
            ep_true=jnp.zeros((B,), dtype),
            ep_learned=jnp.zeros((B,), dtype),
            counters=Counters.zeros(),
            key=key_next,
            ppo_key=key_loop,
            hyper=hyper,
        )
        # 1. Warm-up on the true reward (the reference's INITIAL_POLICY_TS, whole rollouts).
        state, _, _ = rollouts.cycles(state, key_warm, c.warmup_cycles, True, True)
        state = state.replace(counters=state.counters.replace(
            warmup_steps=jnp.int32(c.warmup_cycles * T * B)))
        if ground_truth:
            return state.replace(ep_true=jnp.zeros_like(state.ep_true))
        # 2. The initial pool, from the warm-up policy without updates: its PPO rollouts,
        # or (reference) fresh whole episodes.
        if init_coll_env is not None:
            series = rollouts.collect(state, key_coll, init_coll_env)
            coll_steps = run.initial_collection_episodes * env.episode_length
        else:
            state, series, _ = rollouts.cycles(state, key_coll, c.collection_cycles, True, False)
            coll_steps = c.collection_cycles * T * B
        state = state.replace(
            pool=state.pool.add(harvest_segments(key_harv, series, run.initial_segments, L,
                                                 absorbing=run.absorbing_clips)),
            counters=state.counters.replace(collection_steps=jnp.int32(coll_steps)),
        )
        # 3. Random initial labels, then the initial fit.
        key_a, key_b, key_c, key_label = jax.random.split(key_lab, 4)
        state, _ = ask(state, key_label, fb.initial_queries(key_a, key_b, key_c, state.pool,
                                                           state.hyper))
        reward, _ = fb.fit(key_fit, state.reward, state.buffers, initial=True, hyper=state.hyper)
        return state.replace(reward=reward, ep_true=jnp.zeros_like(state.ep_true),
                             ep_learned=jnp.zeros_like(state.ep_learned),
                             restart=(state.env_state, state.ppo) if n_retrain else None)

    def ppo_cycles(state: PipelineState, key, rollouts_fn) -> tuple:
        """Step 1: K PPO cycles on the learned reward, the iteration and env-step counters
        advanced -> (state, Series, metrics)."""
        state, series, metrics = rollouts_fn.cycles(state, key, K, False, True)
        ctr = state.counters
        state = state.replace(counters=ctr.replace(iteration=ctr.iteration + 1,
                                                   env_steps=ctr.env_steps + K * T * B))
        return state, series, metrics

    def counter_metrics(ctr: Counters) -> dict:
        """The counters every iteration logs."""
        return dict(iteration=ctr.iteration, env_steps=ctr.env_steps,
                    queries_pref=ctr.queries_pref, queries_eval=ctr.queries_eval,
                    queries_total=ctr.queries_pref + ctr.queries_eval,
                    labels_used=ctr.labels_used, collection_steps=ctr.collection_steps)

    def iteration(state: PipelineState, _):
        """One RLHF iteration (the module docstring's steps 1-5) -> (state, metrics)."""
        # key_unused: the PPO cycles take their keys from ppo_key; the 5-way split stays
        # so that every other key, and so every recorded run, is unchanged.
        key, _key_unused, key_harv, key_acq, key_fit = jax.random.split(state.key, 5)
        state = state.replace(key=key)
        # 1. K PPO cycles on the learned reward.
        state, series, metrics = ppo_cycles(state, _key_unused, rollouts)
        it = state.counters.iteration
        if not ground_truth:
            # 2. Harvest clips into the pool (from fresh episodes under the reference).
            if coll_env is not None:
                key_coll, key_harv = jax.random.split(key_harv)
                series = rollouts.collect(state, key_coll, coll_env)
                ctr = state.counters
                state = state.replace(counters=ctr.replace(
                    collection_steps=ctr.collection_steps + coll_env.num_envs * env.episode_length))
            clips = harvest_segments(key_harv, series, run.segments_per_iteration, L,
                                     absorbing=run.absorbing_clips)
            state = state.replace(pool=state.pool.add(clips))
            # How well the reward PPO just optimised ranks the policy's own new clips
            # (before any of them is labelled or fitted), next to reward_corr on the pool.
            fresh_corr = fb.clip_corr(state.reward, clips)
            # 3. Pacing, then acquisition over the pool.
            n = compute_queries_this_iteration(
                it, n_learn, run.budget, fb.budget_used(state.buffers, state.counters))
            n = jnp.minimum(n, c.max_queries)
            key_post, key_select, key_label = jax.random.split(key_acq, 3)
            queries, acq_state, acq_metrics = fb.acquire(
                key_post, key_select, state.reward, state.pool, state.acquisition,
                state.counters, n, state.hyper)
            state = state.replace(acquisition=acq_state)
            # 4. The teacher labels them into the buffers.
            state, ask_metrics = ask(state, key_label, queries)
            # 5. Warm-started refit of the reward model.
            reward, fit_metrics = fb.fit(key_fit, state.reward, state.buffers, initial=False,
                                         hyper=state.hyper)
            state = state.replace(reward=reward)
            metrics.update(n_requested=n, **ask_metrics, **acq_metrics, **fit_metrics,
                           reward_corr=fb.reward_corr(state.reward, state.pool),
                           reward_corr_fresh=fresh_corr,
                           **reward_shape(fb.step_reward, state.reward, state.pool,
                                          run.learned_reward_shift != "none"))
        metrics.update(counter_metrics(state.counters))
        metrics["nonfinite"] = first_nonfinite(state, metrics)
        if n_retrain:
            metrics["phase"] = jnp.int32(1)
        return state, metrics

    def retrain_iteration(state: PipelineState, template: dict):
        """One iteration of the two-phase schedule's second phase -> (state, metrics): K PPO
        cycles on the fixed final reward, nothing else changed. Its metrics have the keys
        of ``template`` (the first phase's): the reward model's fixed figures on the pool,
        ``reward_corr_fresh`` on clips of this iteration (cut with a key the state never
        sees, so the run is the same without them), counts of 0 asked, and NaN for what
        only a refit or an acquisition has."""
        state, series, metrics = ppo_cycles(state, state.key, rollouts2)
        clips = harvest_segments(jax.random.fold_in(state.key, state.counters.iteration),
                                 series, run.segments_per_iteration, L,
                                 absorbing=run.absorbing_clips)
        metrics.update(reward_corr=fb.reward_corr(state.reward, state.pool),
                       reward_corr_fresh=fb.clip_corr(state.reward, clips),
                       **reward_shape(fb.step_reward, state.reward, state.pool,
                                      run.learned_reward_shift != "none"),
                       **counter_metrics(state.counters))
        metrics["nonfinite"] = first_nonfinite(state, metrics)
        metrics["phase"] = jnp.int32(2)
        for name, shape in template.items():
            if name not in metrics:
                fill = jnp.nan if jnp.issubdtype(shape.dtype, jnp.inexact) else 0
                metrics[name] = jnp.full(shape.shape, fill, shape.dtype)
        return state, {name: metrics[name].astype(shape.dtype)
                       for name, shape in template.items()}

    def restarted(state: PipelineState) -> PipelineState:
        """``state`` with PPO and the envs put back to ``state.restart`` if its first phase
        has just ended (iteration ``n_learn``), else unchanged."""
        at_switch = state.counters.iteration == n_learn
        env_state, ppo_state = state.restart

        def pick(new, old):
            return jnp.where(at_switch, new, old)

        return state.replace(
            env_state=jax.tree_util.tree_map(pick, env_state, state.env_state),
            ppo=jax.tree_util.tree_map(pick, ppo_state, state.ppo),
            ep_true=pick(jnp.zeros_like(state.ep_true), state.ep_true),
            ep_learned=pick(jnp.zeros_like(state.ep_learned), state.ep_learned))

    def run_chunk(state: PipelineState, length: int | None = None, retrain: bool = False):
        """``length`` (static; default ``iterations_per_chunk``) iterations -> (state, metrics).

        ``retrain`` (static): iterations of the two-phase schedule's second phase; the
        chunk starts by putting PPO back if it is the phase's first. A chunk never spans
        the two phases (the runner splits them)."""
        length = length or run.iterations_per_chunk
        if not retrain:
            return jax.lax.scan(iteration, state, None, length=length)
        template = jax.eval_shape(iteration, state, None)[1]
        return jax.lax.scan(lambda st, _: retrain_iteration(st, template), restarted(state),
                            None, length=length)

    def evaluate(state: PipelineState, key: jax.Array):
        """Deterministic policy, ``eval_episodes`` episodes -> (true returns ``[E]``,
        lengths ``[E]``), the rollout ``active-rlhf evaluate`` uses too."""
        return deterministic_episodes(ppo.act, state.ppo, eval_env, key, env.episode_length)

    def train(key: jax.Array, hyper: dict | None = None):
        """Whole run for one seed -> (final state, metrics ``[num_iterations]``,
        (eval returns ``[E]``, eval lengths ``[E]``))."""
        key_init, key_eval = jax.random.split(key)
        state = init(key_init, hyper)
        # Every iteration under one scan (a scan per phase); the runner splits the same
        # loops into chunks.
        state, metrics = run_chunk(state, n_learn)
        if n_retrain:
            state, second = run_chunk(state, n_retrain, retrain=True)
            metrics = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]),
                                             metrics, second)
        return state, metrics, evaluate(state, key_eval)

    return Pipeline(
        init=init, run_chunk=run_chunk, evaluate=evaluate, train=train, config=config, env=env,
        first_nonfinite=first_nonfinite, guarded_names=guarded_names, rollouts=rollouts,
    )
