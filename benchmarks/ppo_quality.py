"""Learning quality: true return after N env steps, S seeds in one vmapped call, vs SB3.

Ours: ``jax.jit(jax.vmap(make_ppo_train(preset(env_id, N))))(keys)``. A seed's score is the
mean true return of the training episodes that finished in the last 5% of updates
(episodes weighted equally); the initial policy's score (first update) is the
random-policy reference. The table gives the mean over seeds with a 95% Student-t CI.

SB3 (``--sb3``): ``PPO("MlpPolicy", n_steps=2048, batch_size=64, n_epochs=10,
ent_coef=0.01, learning_rate=lr)`` on Gymnasium's env in ``Monitor`` +
``VecNormalize(norm_reward=False, clip_obs=10)``, scored the same way (episodes that
finished in the last 5% of its steps). Needs the ``bench`` extra (torch, SB3).

With ``--gym-eval-episodes N`` (the results protocol: 10) each seed's final policy is also
run deterministically (Gaussian mean, the seed's observation statistics) for N episodes in
Gymnasium's own environment with the run's task options; ``gym_eval`` holds the per-seed
means and their 95% CI. The ``tuned`` preset trains Hopper and Walker2d with Gymnasium's
default ``terminate_when_unhealthy=True``.

Usage::

    python -m benchmarks.ppo_quality --env HalfCheetah-v5 --backend mujoco \\
        --steps 1000000 --seeds 4 --preset sb3 --sb3 --sb3-seeds 1
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np


def ci95(x):
    from scipy import stats

    x = np.asarray(x, float)
    m = float(x.mean())
    if len(x) < 2:
        return m, (math.nan, math.nan)
    h = float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return m, (m - h, m + h)


def gym_eval(cfg, train_fn, ppo_state, seeds, episodes, seed=0):
    """Deterministic final evaluation of every seed in Gymnasium's env -> record dict."""
    from types import SimpleNamespace

    from active_rlhf_jax.evaluation import evaluate_gymnasium

    policy = SimpleNamespace(
        seeds=list(range(seeds)),
        env_id=cfg.env_id,
        env_options=dict(cfg.env_options),
        ppo=train_fn.ppo,
        state=ppo_state,
    )
    t = time.perf_counter()
    returns, lengths = evaluate_gymnasium(policy, episodes, seed=seed)
    means = returns.mean(axis=1)
    return dict(
        episodes=episodes,
        per_seed=means.tolist(),
        mean_ci95=ci95(means),
        mean_length=float(lengths.mean()),
        eval_s=time.perf_counter() - t,
    )


def _with_ppo_changes(ppo, changes):
    """``ppo`` with ``["log_std_init=0", ...]`` applied, each value parsed as the field's type
    (one-factor ablations of a preset; a bad name or value exits naming it)."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(ppo)}
    out = {}
    for item in changes:
        name, sep, text = item.partition("=")
        if not sep or name not in fields:
            raise SystemExit(f"--ppo-set: expected FIELD=VALUE with a PPOConfig field, got {item!r}")
        old = getattr(ppo, name)
        try:
            if isinstance(old, bool):
                if text.lower() not in ("true", "false"):
                    raise ValueError(text)
                out[name] = text.lower() == "true"
            elif isinstance(old, tuple):
                out[name] = tuple(int(x) for x in text.split(","))
            else:
                out[name] = type(old)(text)
        except ValueError:
            raise SystemExit(
                f"--ppo-set: {name}: cannot read {text!r} as {type(old).__name__}") from None
    return dataclasses.replace(ppo, **out)


def run_ours(env_id, backend, steps, seeds, preset, key=0, gym_episodes=0, num_envs=None,
             ppo_set=()):
    import dataclasses

    import jax

    from active_rlhf_jax.ppo import make_ppo_train
    from configs.ppo_presets import PRESETS

    kw = {} if num_envs is None else {"num_envs": num_envs}
    if kw and preset not in ("tuned", "rl-zoo"):
        raise SystemExit(f"--num-envs: only the tuned and rl-zoo presets take it, not {preset!r}")
    cfg = PRESETS[preset](env_id, steps, backend=backend, **kw)
    if ppo_set:
        cfg = dataclasses.replace(cfg, ppo=_with_ppo_changes(cfg.ppo, ppo_set))
    train_fn = make_ppo_train(cfg)
    train = jax.jit(jax.vmap(train_fn))
    keys = jax.random.split(jax.random.PRNGKey(key), seeds)
    t = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    ts, m = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - t
    ret = np.asarray(m["episode_return"])
    cnt = np.asarray(m["episodes"])
    # Episodes that finished in the last 5% of updates; with many synchronised envs (the
    # parallel preset: all 256 episodes end in the same update) that window may hold none,
    # so it is extended back to the last update in which episodes finished. That scores
    # the parallel preset's policy from an earlier step (conservative); score_from_step
    # records where each seed's window starts.
    window = max(1, int(math.ceil(0.05 * cfg.num_updates)))
    finals, score_from = [], []
    for s in range(seeds):
        done = np.nonzero(cnt[s] > 0)[0]
        start = min(cfg.num_updates - window, int(done[-1]))
        finals.append(float(np.nansum(ret[s, start:] * cnt[s, start:]) / cnt[s, start:].sum()))
        score_from.append(start * cfg.ppo.batch_size)
    first = [float(ret[s][cnt[s] > 0][0]) for s in range(seeds)]
    evaluation = gym_eval(cfg, train_fn, ts.ppo, seeds, gym_episodes) if gym_episodes else None
    return dict(
        learner=f"ours/{preset}",
        ppo_set=list(ppo_set),
        num_envs=cfg.ppo.num_envs,
        num_steps=cfg.ppo.num_steps,
        env=env_id,
        backend=backend,
        key=key,
        env_options=dict(cfg.env_options),
        gym_eval=evaluation,
        env_steps=cfg.env_steps,
        seeds=seeds,
        per_seed=finals,
        score_from_step=score_from,
        mean_ci95=ci95(finals),
        initial_policy=ci95(first),
        compile_s=compile_s,
        run_s=run_s,
        sps_all_seeds=cfg.env_steps * seeds / run_s,
        # Learning curve: per update, the env steps so far and each seed's mean return of
        # the episodes that finished in that update (NaN where none finished).
        curve_steps=[(i + 1) * cfg.ppo.batch_size for i in range(ret.shape[1])],
        curve_returns=np.where(cnt > 0, ret, np.nan).tolist(),
    )


def run_sb3(env_id, steps, seed, lr):
    import gymnasium as gym
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    torch.set_num_threads(1)
    venv = VecNormalize(
        DummyVecEnv([lambda: Monitor(gym.make(env_id))]), norm_reward=False, clip_obs=10.0
    )
    model = PPO(
        "MlpPolicy",
        venv,
        n_steps=2048,
        batch_size=64,
        n_epochs=10,
        ent_coef=0.01,
        learning_rate=lr,
        seed=seed,
        device="cpu",
        verbose=0,
    )
    t = time.perf_counter()
    model.learn(total_timesteps=steps)
    run_s = time.perf_counter() - t
    mon = venv.venv.envs[0]
    rets = np.asarray(mon.get_episode_rewards())
    ends = np.cumsum(mon.get_episode_lengths())
    last = rets[ends > 0.95 * ends[-1]]
    return dict(
        learner="sb3",
        env=env_id,
        env_steps=int(model.num_timesteps),
        seed=seed,
        final=float(last.mean()),
        initial=float(rets[0]),
        run_s=run_s,
        sps=model.num_timesteps / run_s,
        # Learning curve: each finished episode's return at the env step it ended.
        curve_steps=ends.tolist(),
        curve_returns=rets.tolist(),
    )


def _brief(rec):
    return {k: v for k, v in rec.items() if not k.startswith("curve_")}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="HalfCheetah-v5")
    p.add_argument("--backend", default="auto")
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--preset", default="sb3")
    p.add_argument("--key", type=int, default=0, help="PRNGKey of the seeds (split into --seeds)")
    p.add_argument(
        "--gym-eval-episodes", type=int, default=0,
        help="deterministic episodes per seed in Gymnasium's env after training (0: none)",
    )
    p.add_argument(
        "--num-envs", type=int, default=None,
        help="tuned and rl-zoo presets only: parallel envs per seed (a divisor of the task's "
        "transitions per update; default per task)",
    )
    p.add_argument(
        "--ppo-set", action="append", default=[], metavar="FIELD=VALUE",
        help="change one PPOConfig field of the preset (repeatable), e.g. log_std_init=0",
    )
    p.add_argument("--no-ours", action="store_true")
    p.add_argument("--sb3", action="store_true")
    p.add_argument("--sb3-seeds", type=int, default=1)
    p.add_argument("--sb3-first-seed", type=int, default=0)
    p.add_argument("--json", default=None)
    a = p.parse_args(argv)
    recs = []
    if not a.no_ours:
        recs.append(
            run_ours(
                a.env, a.backend, a.steps, a.seeds, a.preset, a.key, a.gym_eval_episodes,
                a.num_envs, a.ppo_set,
            )
        )
        print(json.dumps(_brief(recs[-1])), flush=True)
    if a.sb3:
        from configs.ppo_presets import SB3_LEARNING_RATES

        lr = SB3_LEARNING_RATES.get(a.env, 3e-4)
        finals = []
        for s in range(a.sb3_first_seed, a.sb3_first_seed + a.sb3_seeds):
            recs.append(run_sb3(a.env, a.steps, s, lr))
            finals.append(recs[-1]["final"])
            print(json.dumps(_brief(recs[-1])), flush=True)
        print(json.dumps({"learner": "sb3", "mean_ci95": ci95(finals)}))
    if a.json:
        with open(a.json, "a") as f:
            for r in recs:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
