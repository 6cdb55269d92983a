"""PPO from scratch on a finished RLHF run's final learned reward, held fixed.

An RLHF arm's shortfall against ground truth has two possible sources: the reward model
it ends with (its shape, whatever its ranking of the pool), and the path (PPO optimised a
reward that changed every iteration, from a poor early model to the final one). This
trains PPO again on each seed's *final* reward model, frozen from the first update, and
compares the final return with the online run's on the same seed:

- frozen ~ ground truth: the final reward is good enough; the online run lost on the way;
- frozen ~ online: the final reward itself caps the return.

Everything but the reward's history is the run's own, seed by seed: its config, its PRNG
key (``PRNGKey(seed)``, so the same initial policy, the same warm-up on the true reward
and the same PPO update keys), its PPO schedule (``num_iterations x
cycles_per_iteration`` updates after the warm-up, learning-rate annealing over the same
horizon), and the learned reward as PPO read it at the end (the reward model and, for
``run.learned_reward_shift=pool-min``, the shift of the final pool; the z-scoring of
``run.reward_norm_window`` is not supported). The reward model and the pool come from the
run's newest checkpoint, which must be its last iteration.

Writes ``OUT/metrics.jsonl`` (per seed and iteration: ``true_return``, ``learned_return``,
``env_steps``), the final policies (``OUT/policy``), ``OUT/final_eval_gymnasium.json``
(deterministic, Gymnasium's env) and ``OUT/frozen_reward.json`` (per seed: frozen, online
and their paired difference with a Student-t 95% CI). ``OUT`` must not hold a run; the
checkpoint is only read.

``--iterations N`` trains for N iterations instead of the run's own number, with the PPO
schedule (learning-rate horizon, update keys) of an online run of N iterations; the initial
phase stays the run's own.

The two-phase schedule built on this (an online run, then this on its final reward) is one
run now: ``run.retrain_fraction`` (pipeline/train.py), which equals the composition bit for
bit (with ``--iterations`` set to the second phase's length where the split is not half).

Usage::

    python -m benchmarks.frozen_reward RUN_DIR --out OUT [--gym-eval-episodes 10]
        [--chunk 5] [--iterations N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from active_rlhf_jax.analysis.stats import compute_mean_ci
from active_rlhf_jax.config import ConfigError


def restore_final(run_dir: Path, pipe, keys):
    """The run's newest checkpoint as a PipelineState batched over seeds, and its step.

    Raises:
        ConfigError: no checkpoint, or one before the run's last iteration (field
            ``run_dir``).
    """
    import jax
    import orbax.checkpoint as ocp

    from active_rlhf_jax.pipeline import rundir

    abstract = jax.eval_shape(jax.vmap(pipe.init), keys)
    manager = ocp.CheckpointManager((run_dir / "checkpoints").resolve())
    try:
        step = manager.latest_step()
        if step is None:
            raise ConfigError("run_dir", f"{run_dir} has no checkpoints (they are not "
                              "committed; rerun the arm to get them)")
        if step != pipe.config.num_iterations:
            raise ConfigError("run_dir", f"{run_dir}'s newest checkpoint is iteration "
                              f"{step} of {pipe.config.num_iterations}: the run has not finished")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            restored = manager.restore(
                step, args=ocp.args.StandardRestore(rundir.savable(abstract)))
    finally:
        manager.close()
    return rundir.unsaved_filled(restored, abstract), int(step)


def make_frozen_chunk(pipe, length: int):
    """``chunk(state) -> (state, metrics [length])``: ``length`` iterations of the PPO half
    alone (``cycles_per_iteration`` rollout-and-update cycles each) on the state's reward
    model and pool, which nothing changes. One seed; vmap it."""
    import jax

    c = pipe.config
    K, T, B = c.cycles_per_iteration, c.ppo.num_steps, c.ppo.num_envs

    def iteration(state, _):
        state, _series, m = pipe.rollouts.cycles(state, state.key, K, False, True)
        ctr = state.counters
        it = ctr.iteration + 1
        state = state.replace(counters=ctr.replace(iteration=it, env_steps=ctr.env_steps + K * T * B))
        return state, {"iteration": it, "env_steps": state.counters.env_steps,
                       "true_return": m["true_return"], "learned_return": m["learned_return"]}

    return lambda state: jax.lax.scan(iteration, state, None, length=length)


def online_finals(run_dir: Path) -> dict[int, float]:
    """``{seed: mean return}`` of the run's own Gymnasium evaluation (else its
    ``final_eval.json``)."""
    for name in ("final_eval_gymnasium.json", "final_eval.json"):
        f = run_dir / name
        if f.is_file():
            return {int(s["seed"]): float(s["mean"]) for s in json.loads(f.read_text())["seeds"]}
    raise ConfigError("run_dir", f"{run_dir} has no final evaluation (final_eval*.json)")


def paired(frozen: dict[int, float], online: dict[int, float]) -> dict:
    """Per seed and mean frozen - online with a Student-t 95% CI over the common seeds."""
    seeds = sorted(set(frozen) & set(online))
    d = np.array([frozen[s] - online[s] for s in seeds], np.float64)
    mean, lo, hi, n = compute_mean_ci(d)
    return {"seeds": seeds, "difference": d.tolist(), "mean": float(mean),
            "ci95": [float(lo), float(hi)], "n": int(n), "ahead": int(np.sum(d > 0))}


def run(run_dir: Path, out: Path, gym_eval_episodes: int, chunk: int,
        iterations: int | None = None) -> dict:
    """The frozen-reward run of ``run_dir`` into ``out`` -> its ``frozen_reward.json``
    record. ``iterations``: PPO iterations on the final reward (default the run's
    ``num_iterations``)."""
    import dataclasses

    import jax

    from active_rlhf_jax.config import to_dict
    from active_rlhf_jax.envs.host_call import raise_pending
    from active_rlhf_jax.evaluation import evaluate
    from active_rlhf_jax.pipeline.hyper import program_choices
    from active_rlhf_jax.pipeline.runner import load_config, seed_keys
    from active_rlhf_jax.pipeline.train import make_train
    from active_rlhf_jax.policy_io import save_policy

    cfg = load_config(run_dir, field="run_dir")
    if cfg.run.feedback == "none":
        raise ConfigError("run_dir", f"{run_dir} is a ground-truth run: it has no learned reward")
    if cfg.run.reward_norm_window > 0:
        raise ConfigError("run_dir", "run.reward_norm_window > 0 (z-scored learned rewards) "
                          "is not supported: the window's history is not the final reward's")
    if chunk <= 0:
        raise ConfigError("chunk", f"must be positive, got {chunk}")
    n_iter = cfg.num_iterations if iterations is None else iterations
    if n_iter <= 0:
        raise ConfigError("iterations", f"must be positive, got {n_iter}")
    if (out / "metrics.jsonl").exists():
        raise ConfigError("out", f"{out} already holds a frozen-reward run")
    online = online_finals(run_dir)
    pipe = make_train(cfg, program_choices([cfg]))
    # The PPO half of an online run of n_iter iterations: its learning-rate horizon and
    # update keys (the run's own when it is one of that length).
    ppo_cfg = dataclasses.replace(cfg, run=dataclasses.replace(
        cfg.run, total_ppo_timesteps=n_iter * cfg.run.ppo_timesteps_per_iteration,
        retrain_fraction=0.0))
    try:
        ppo_pipe = (pipe if ppo_cfg.num_iterations == cfg.num_iterations
                    == cfg.learning_iterations
                    else make_train(ppo_cfg, program_choices([ppo_cfg])))
    except ConfigError as e:
        raise ConfigError("iterations", f"{n_iter}: an online run of that length is not a "
                          f"valid config ({e})") from None
    keys = seed_keys(cfg)
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    t0 = time.time()
    final, step = restore_final(run_dir, pipe, keys)
    # The run's own initial phase (same keys: initial policy, warm-up on the true reward),
    # then the final reward model and pool in place of the initial ones.
    state = jax.jit(jax.vmap(pipe.init))(keys)
    state = state.replace(reward=final.reward, pool=final.pool)
    del final
    print(f"frozen_reward: {run_dir.name}: initial phase and checkpoint {step} in "
          f"{time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(to_dict(cfg), indent=2))
    programs = {}
    done, rows = 0, []
    with open(out / "metrics.jsonl", "w") as fh:
        while done < n_iter:
            length = min(chunk, n_iter - done)
            if length not in programs:
                programs[length] = jax.jit(jax.vmap(make_frozen_chunk(ppo_pipe, length)))
            t = time.time()
            state, m = programs[length](state)
            m = jax.tree_util.tree_map(np.asarray, m)  # [seeds, length]
            raise_pending()
            done += length
            for i, s in enumerate(seeds):
                for j in range(length):
                    tr = float(m["true_return"][i, j])
                    row = {"seed": s, "iteration": int(m["iteration"][i, j]),
                           "env_steps": int(m["env_steps"][i, j]),
                           "true_return": tr if np.isfinite(tr) else None,
                           "learned_return": float(m["learned_return"][i, j])
                           if np.isfinite(m["learned_return"][i, j]) else None}
                    fh.write(json.dumps(row) + "\n")
                    rows.append(row)
            fh.flush()
            print(f"frozen_reward: iteration {done}/{n_iter} ({time.time() - t:.0f} s), "
                  f"training return {np.nanmean(m['true_return'][:, -1]):.1f}",
                  file=sys.stderr, flush=True)
    save_policy(out, cfg.env.env_id, cfg.env.options(), to_dict(cfg.ppo), state.ppo,
                seeds=seeds, env=pipe.env)
    record = {"run": str(run_dir), "checkpoint_step": step, "env_id": cfg.env.env_id,
              "iterations": n_iter, "seconds": time.time() - t0}
    if gym_eval_episodes > 0:
        ev = evaluate(out, episodes=gym_eval_episodes, backend="gymnasium")
        (out / "final_eval_gymnasium.json").write_text(json.dumps(ev, indent=1))
        frozen = {int(s["seed"]): float(s["mean"]) for s in ev["seeds"]}
        record.update(frozen=frozen, online={s: online[s] for s in frozen if s in online},
                      frozen_minus_online=paired(frozen, online),
                      frozen_lengths={int(s["seed"]): float(np.mean(s["lengths"]))
                                      for s in ev["seeds"]})
    (out / "frozen_reward.json").write_text(json.dumps(record, indent=1))
    return record


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.frozen_reward",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path, help="a finished RLHF run (an arm directory) "
                    "with its checkpoints")
    ap.add_argument("--out", type=Path, required=True, help="output directory")
    ap.add_argument("--gym-eval-episodes", type=int, default=10,
                    help="deterministic episodes per seed in Gymnasium's env (0: none)")
    ap.add_argument("--chunk", type=int, default=5, help="iterations per compiled call")
    ap.add_argument("--iterations", type=int, default=None,
                    help="PPO iterations on the final reward (default: the run's own)")
    args = ap.parse_args(argv)
    try:
        rec = run(args.run_dir, args.out, args.gym_eval_episodes, args.chunk,
                  args.iterations)
    except (ConfigError, FileNotFoundError) as e:
        print(f"frozen_reward: error: {e}", file=sys.stderr)
        return 2
    if "frozen_minus_online" in rec:
        p = rec["frozen_minus_online"]
        print(f"frozen {np.mean(list(rec['frozen'].values())):.1f}, online "
              f"{np.mean(list(rec['online'].values())):.1f}; frozen - online {p['mean']:+.1f} "
              f"[{p['ci95'][0]:+.1f}, {p['ci95'][1]:+.1f}] over {p['n']} seeds, "
              f"{p['ahead']} ahead")
    return 0


if __name__ == "__main__":
    sys.exit(main())
