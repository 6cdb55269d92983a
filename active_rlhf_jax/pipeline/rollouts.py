"""The PPO half of an RLHF iteration: rollout-and-update cycles on the learned reward,
and fresh-episode collection for the clip pool.

``make_rollouts`` returns pure functions of one seed's :class:`PipelineState`; the
iteration in pipeline/train.py calls them. Both return the transitions they saw as a
per-env :class:`~active_rlhf_jax.batches.Series` for the clip pool.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from active_rlhf_jax.batches import Series, absorbing_steps
from active_rlhf_jax.envs import TrainingEnv
from active_rlhf_jax.pipeline.masked_stats import masked_line_fit, masked_pearson
from active_rlhf_jax.pipeline.state import PipelineState, ZScoreState
from active_rlhf_jax.ppo.episodes import compute_episode_returns


def compute_zscore(zs: ZScoreState, raw: jax.Array) -> tuple[ZScoreState, jax.Array]:
    """Sliding-window z-scoring of learned rewards ``raw [T, B]`` (a reference option).

    The window ``[W]`` takes the whole rollout first, then the rollout is normalised with
    the window's mean and population std (+1e-8), batched instead of per step. A window
    holding one reward leaves ``raw`` as it is.

    Returns:
        ``(updated window, normalised rewards [T, B])``.
    """
    window = zs.window.shape[0]
    flat = raw.reshape(-1)
    n = flat.shape[0]
    idx = (zs.ptr + jnp.arange(n)) % window
    win = zs.window.at[idx].set(flat)
    count = jnp.minimum(zs.count + n, window)
    mask = jnp.arange(window) < count
    mean = jnp.sum(win * mask) / count
    std = jnp.sqrt(jnp.sum(((win - mean) * mask) ** 2) / count)
    out = jnp.where(count > 1, (raw - mean) / (std + 1e-8), raw)
    return ZScoreState(window=win, ptr=(zs.ptr + n) % window, count=count), out


def pool_min_step_reward(step_reward, reward, pool) -> jax.Array:
    """Lowest per-step learned reward over the pool's valid clips (0 for an empty pool),
    absorbing steps (``run.absorbing_clips``) left out.

    Args:
        step_reward: ``(reward_state, obs [..., o], act [..., a]) -> [...]``.
        pool: a ClipPool (``obs [P, L, o]``, ``act [P, L, a]``, ``valid [P]``).

    Returns:
        ``[]`` float.
    """
    r = step_reward(reward, pool.obs, pool.act)  # [P, L]
    return _live_min(r, pool)


def _live_steps(pool) -> jax.Array:
    """``[P, L]`` bool: the pool's steps that count (valid slots, absorbing steps out)."""
    return pool.valid[:, None] & ~absorbing_steps(pool.obs)


def _live_min(r, pool) -> jax.Array:
    """Lowest of ``r [P, L]`` over the pool's live steps (0 for an empty pool)."""
    low = jnp.min(jnp.where(_live_steps(pool), r, jnp.inf))
    return jnp.where(jnp.any(pool.valid), low, 0.0)


def reward_shape(step_reward, reward, pool, shifted: bool) -> dict:
    """How the learned reward, as PPO reads it, relates to the true one, step by step, over
    the pool's live steps (diagnostics logged every iteration, so a finished run answers
    these without its checkpoints; ``benchmarks/alive_value.py`` reads the same from one).

    Args:
        step_reward: ``(reward_state, obs [..., o], act [..., a]) -> [...]``.
        pool: a ClipPool (``obs [P, L, o]``, ``act``, ``rew [P, L]``, ``valid [P]``).
        shifted: the run adds ``run.learned_reward_shift=pool-min``'s shift (a z-scoring
            ``run.reward_norm_window`` is not applied here).

    Returns:
        ``{"reward_step_corr": Pearson of learned vs true per-step reward,
        "alive_value": 1 + b / a}`` for the least-squares fit ``learned = a true + b``:
        what the learned reward pays a live step beyond what its true reward explains, in
        true-reward units (Hopper's and Walker2d's own is 1.0: their healthy reward). NaN
        where the pool holds fewer than two live steps or a constant true reward.
    """
    r = step_reward(reward, pool.obs, pool.act)  # [P, L]
    live = _live_steps(pool)
    if shifted:  # what PPO adds: minus pool_min_step_reward
        r = r - _live_min(r, pool)
    slope, intercept = masked_line_fit(pool.rew, r, live)
    return {"reward_step_corr": masked_pearson(r.ravel(), pool.rew.ravel(), live.ravel()),
            "alive_value": 1.0 + intercept / slope}


class Rollouts(NamedTuple):
    """``cycles(state, key, num_cycles, train_on_true, update) -> (state, Series, metrics)``
    runs PPO rollouts (and updates); ``collect(state, key, env) -> Series`` runs fresh
    episodes of the current stochastic policy without touching PPO."""

    cycles: Callable
    collect: Callable


def make_rollouts(config, env, tenv: TrainingEnv, ppo, step_reward, num_updates: int) -> Rollouts:
    """Build the rollout functions.

    Args:
        config: the pipeline Config.
        env: the unbatched Env; tenv: its PPO batch (``B`` envs).
        ppo: the PPO bundle (``make_ppo``).
        step_reward: ``step_reward(reward_state, obs [T, B, o], act [T, B, a]) -> [T, B]``
            learned reward, or None for the ground-truth pipeline.
        num_updates: PPO updates of the whole run (warm-up + every iteration's cycles).
    """
    run = config.run
    T, B = config.ppo.num_steps, config.ppo.num_envs
    ground_truth = step_reward is None
    shifted = not ground_truth and run.learned_reward_shift != "none"

    def shift(state: PipelineState) -> jax.Array:
        """``[]``: what PPO adds to every learned reward step this iteration
        (``run.learned_reward_shift``)."""
        if not shifted:
            return jnp.zeros(())
        return -pool_min_step_reward(step_reward, state.reward, state.pool)  # pool-min

    def relabel(state: PipelineState, tr, offset):
        """-> (z-score window, raw learned reward [T, B], reward PPO trains on [T, B])."""
        if ground_truth:
            return state.reward_zscore, tr.true_reward, tr.true_reward
        raw = step_reward(state.reward, tr.raw_obs, tr.env_action)
        if run.reward_norm_window > 0:
            zs, used = compute_zscore(state.reward_zscore, raw)
            return zs, raw, used
        if shifted:
            return state.reward_zscore, raw, raw + offset
        return state.reward_zscore, raw, raw

    def cycles(state: PipelineState, key, num_cycles: int, train_on_true: bool, update: bool):
        """``num_cycles`` rollouts (and updates) -> (state, Series [B, C*T], metrics).

        Updating cycles draw their key as ``ppo.make_ppo_train`` does:
        ``split(ppo_key, num_updates)[u]`` for the ``u``-th update of the run, so the
        ground-truth pipeline is exactly the PPO trainer; ``key`` is then unused.
        Collection cycles (no update) split ``key`` instead. The learned reward's shift is
        computed once, from the state's reward model and pool (fixed during the cycles).
        """
        offset = jnp.zeros(()) if train_on_true else shift(state)

        def cycle(st, key_cycle):
            if update:
                key_cycle = jax.random.split(st.ppo_key, num_updates)[st.ppo.update_step]
            key_roll, key_upd = jax.random.split(key_cycle)
            env_state, tr = ppo.rollout(st.ppo, st.env_state, key_roll)
            zscore, raw_learned, ppo_reward = relabel(st, tr, offset)
            if train_on_true:
                ppo_reward = tr.true_reward
            ppo_state = ppo.update_obs_norm(st.ppo, tr.raw_obs)
            m = {}
            if update:
                ppo_state, m = ppo.update(ppo_state, tr, ppo_reward, key_upd, st.hyper)
            true_sum, n_done, ep_true = compute_episode_returns(tr.true_reward, tr.done, st.ep_true)
            learned_sum, _, ep_learned = compute_episode_returns(
                raw_learned, tr.done, st.ep_learned)
            st = st.replace(env_state=env_state, ppo=ppo_state, reward_zscore=zscore,
                            ep_true=ep_true, ep_learned=ep_learned)
            out = Series(obs=tr.raw_obs, act=tr.env_action, rew=tr.true_reward, done=tr.done,
                         trunc=tr.truncation)
            stats = dict(m, ep_true_sum=true_sum, ep_learned_sum=learned_sum, ep_count=n_done)
            return st, (out, stats)

        state, (steps, stats) = jax.lax.scan(cycle, state, jax.random.split(key, num_cycles))
        # [C, T, B, ...] -> per-env time series [B, C*T, ...]
        series = jax.tree_util.tree_map(
            lambda x: jnp.swapaxes(x.reshape((num_cycles * T, B) + x.shape[3:]), 0, 1), steps)
        count = jnp.sum(stats["ep_count"])
        metrics = {
            "true_return": jnp.where(count > 0, jnp.sum(stats["ep_true_sum"]) / count, jnp.nan),
            "learned_return": jnp.where(
                count > 0, jnp.sum(stats["ep_learned_sum"]) / count, jnp.nan),
        }
        for k, v in stats.items():
            if not k.startswith("ep_"):
                metrics["ppo_" + k] = jnp.mean(v)
        if shifted:
            metrics["learned_reward_shift"] = offset
        return state, series, metrics

    def collect(state: PipelineState, key: jax.Array, coll_env: TrainingEnv) -> Series:
        """``coll_env.num_envs`` fresh episodes of the current stochastic policy (§2.1).

        A separate batch of envs, reset here, so the PPO envs' episodes are untouched;
        neither PPO nor its observation normaliser is updated. Auto-reset envs whose
        episode ends early start a new one (segments never cross the reset).

        Returns:
            :class:`Series` ``[E, H]`` with ``H = env.episode_length``.
        """
        key_reset, key_act = jax.random.split(key)

        def step(env_state, k):
            action = ppo.act(state.ppo, env_state.obs, k)
            nxt = coll_env.step(env_state, action)
            return nxt, Series(obs=env_state.obs, act=action, rew=nxt.reward, done=nxt.done,
                               trunc=nxt.info["truncation"])

        _, out = jax.lax.scan(step, coll_env.reset(key_reset),
                              jax.random.split(key_act, env.episode_length))
        return jax.tree_util.tree_map(lambda x: jnp.swapaxes(x, 0, 1), out)

    return Rollouts(cycles=cycles, collect=collect)
