"""What a step alive is worth under a run's final learned reward, in true-reward units.

On Hopper-v5 and Walker2d-v5 the true reward pays 1 per healthy step (plus forward speed,
minus control cost) and an episode ends on a fall, after which nothing is paid: whether
staying alive pays is set by the reward's offset, which preference labels between clips of
equal length cannot identify. ``run.absorbing_clips`` pins the offset (absorbing steps are
worth exactly 0); ``run.learned_reward_shift=pool-min`` sets it by adding minus the pool's
lowest per-step learned reward. This script reads a run's newest checkpoint and measures
what each did, per seed:

- fit ``r_hat = a r + b`` by least squares over the pool's live steps (``r``: the true
  per-step reward, ``r_hat``: the learned one, as PPO reads it: ``step_reward`` of the
  fitted model, the pool-min shift added where the run used it);
- the alive value ``1 + b / a``: what the learned reward pays a live step beyond what its
  true reward explains, in units of the true reward (the true reward's own is 1.0; 0 means
  a fall costs nothing);
- the per-step Pearson correlation of ``r_hat`` with ``r`` (the clip-level ranking that
  ``reward_corr`` logs is coarser).

With ``--episodes N`` it also runs each seed's final deterministic policy for N episodes in
Gymnasium's env and, on those steps, reads the learned reward against the same fit: the
residual ``(r_hat - b) / a - r`` (true-reward units: what the learned reward pays a step
beyond what the fit explains) over the last ``--window`` steps before each fall, against
the episodes' other steps. A positive residual before falls is a learned reward that pays
the moves that end in a fall, which PPO can exploit.

Nothing is trained; only ``config.json``, ``checkpoints/<newest>/default`` and (with
``--episodes``) ``policy/final`` are read, so the run must still have its checkpoints
(they are not committed).

Usage::

    python -m benchmarks.alive_value runs/walker_abs/pref-random+run.absorbing_clips=true \\
        [--episodes 2 --window 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.rating_resolution import newest_checkpoint


def alive_fit(r_true: np.ndarray, r_hat: np.ndarray) -> dict:
    """Least-squares ``r_hat = a r + b`` over live steps.

    Args:
        r_true, r_hat: [n] true and learned per-step rewards of the same live steps.

    Returns:
        ``{"slope": a, "intercept": b, "alive_value": 1 + b / a, "step_corr": Pearson}``.
    """
    x, y = np.asarray(r_true, np.float64), np.asarray(r_hat, np.float64)
    a, b = np.polyfit(x, y, 1)
    return {"slope": float(a), "intercept": float(b), "alive_value": float(1.0 + b / a),
            "step_corr": float(np.corrcoef(x, y)[0, 1])}


def measure_run(run_dir: Path, episodes: int = 0, window: int = 20) -> dict:
    """Per-seed :func:`alive_fit` of a run directory's newest checkpoint (and, with
    ``episodes``, :func:`policy_residuals` of its final policy)."""
    import warnings

    import jax
    import jax.numpy as jnp
    import orbax.checkpoint as ocp

    from active_rlhf_jax.batches import absorbing_steps
    from active_rlhf_jax.pipeline.runner import load_config
    from active_rlhf_jax.reward.model import make_reward_model

    cfg = load_config(run_dir)
    path = newest_checkpoint(run_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = ocp.PyTreeCheckpointer().restore(path.resolve())
    pool, params = state["pool"], state["reward"]["params"]
    obs_size, act_size = np.asarray(pool["obs"]).shape[-1], np.asarray(pool["act"]).shape[-1]
    model = make_reward_model(cfg.reward, obs_size, act_size, cfg.compat,
                              num_rounds=cfg.rating_rounds, absorbing=cfg.run.absorbing_clips)
    shifted = cfg.run.learned_reward_shift != "none"
    seeds = []
    for s in range(np.asarray(pool["valid"]).shape[0]):
        member = jax.tree_util.tree_map(lambda x, s=s: jnp.asarray(x[s]), params)
        obs, act = jnp.asarray(pool["obs"][s]), jnp.asarray(pool["act"][s])
        r_hat = np.asarray(model.step_reward(member, obs, act), np.float64)  # [P, L]
        live = np.asarray(pool["valid"][s])[:, None] & ~np.asarray(absorbing_steps(obs))
        y = r_hat[live]
        if y.size < 2:  # an empty pool (e.g. Walker2d seed 105's warm-up): nothing to fit
            seeds.append({"slope": None, "intercept": None, "alive_value": None,
                          "step_corr": None, "absorbing_share": None, "live_steps": int(y.size)})
            continue
        if shifted:  # what PPO adds: minus the pool's lowest live learned step reward
            y = y - y.min()
        fit = alive_fit(np.asarray(pool["rew"][s])[live], y)
        fit["absorbing_share"] = float(1.0 - live[np.asarray(pool["valid"][s])].mean())
        if episodes:
            offset = -float(r_hat[live].min()) if shifted else 0.0
            fit.update(policy_residuals(
                run_dir, s, episodes, window, fit,
                lambda o, a_, m=member, c=offset: np.asarray(
                    model.step_reward(m, jnp.asarray(o), jnp.asarray(a_)), np.float64) + c))
        seeds.append(fit)
    return {"run": str(run_dir), "checkpoint": str(path), "env_id": cfg.env.env_id,
            "shift": cfg.run.learned_reward_shift, "absorbing_clips": cfg.run.absorbing_clips,
            "seeds": seeds}


def policy_residuals(run_dir: Path, seed_index: int, episodes: int, window: int, fit: dict,
                     learned) -> dict:
    """Residual of the learned reward on the final policy's own deterministic episodes.

    Args:
        seed_index: row of the run's seeds; fit: that seed's :func:`alive_fit`.
        learned: ``(obs [n, o], act [n, a]) -> [n]`` learned reward as PPO reads it.

    Returns:
        ``{"episode_lengths", "falls", "residual_before_fall", "residual_elsewhere"}``:
        mean residual ``(r_hat - b) / a - r`` over the last ``window`` steps of episodes
        that ended in a fall (None without falls), and over every other step.
    """
    from active_rlhf_jax.evaluation import _load_policy, make_gym_env

    policy = _load_policy(run_dir, None)
    import jax
    import jax.numpy as jnp

    state = jax.tree_util.tree_map(lambda x: x[seed_index], policy.state)
    act = jax.jit(lambda o: policy.ppo.act(state, o, jax.random.PRNGKey(0), True))
    env = make_gym_env(policy.env_id, policy.env_options, None, verbose=False)
    low, high = env.action_space.low, env.action_space.high
    before, elsewhere, lengths, falls = [], [], [], 0
    for ep in range(episodes):
        o, _ = env.reset(seed=10_000 + ep)
        obs, acts, rews, done, fell = [], [], [], False, False
        while not done:
            a = np.clip(np.asarray(act(jnp.asarray(o, jnp.float32)), np.float64), low, high)
            o2, r, term, trunc, _ = env.step(a)
            obs.append(o), acts.append(a), rews.append(r)
            o, done, fell = o2, term or trunc, term
        res = (learned(np.asarray(obs), np.asarray(acts)) - fit["intercept"]) / fit["slope"]
        res = res - np.asarray(rews)
        lengths.append(len(rews))
        if fell:
            falls += 1
            before.extend(res[-window:]), elsewhere.extend(res[:-window])
        else:
            elsewhere.extend(res)
    env.close()
    return {"episode_lengths": lengths, "falls": falls,
            "residual_before_fall": float(np.mean(before)) if before else None,
            "residual_elsewhere": float(np.mean(elsewhere)) if elsewhere else None}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="run directories (with checkpoints)")
    p.add_argument("--episodes", type=int, default=0,
                   help="final-policy episodes per seed in Gymnasium's env (0: none)")
    p.add_argument("--window", type=int, default=20, help="steps before a fall")
    p.add_argument("--json", type=Path, help="also write the figures here")
    a = p.parse_args(argv)
    out = []
    for run in a.runs:
        try:
            res = measure_run(run, a.episodes, a.window)
        except (FileNotFoundError, KeyError) as e:
            print(f"alive_value: {run}: {e}", file=sys.stderr)
            return 2
        out.append(res)
        fmt = lambda v: "n/a" if v is None else f"{v:+.2f}"  # noqa: E731
        vals = [fmt(x["alive_value"]) for x in res["seeds"]]
        corr = [fmt(x["step_corr"]) for x in res["seeds"]]
        fitted = [x["alive_value"] for x in res["seeds"] if x["alive_value"] is not None]
        mean = f"{np.mean(fitted):+.2f} over {len(fitted)} seeds" if fitted else "n/a"
        print(f"{run}: alive value per seed {', '.join(vals)} (mean {mean}; true 1.00); "
              f"per-step corr {', '.join(corr)}")
        if a.episodes:
            for i, x in enumerate(res["seeds"]):
                if "episode_lengths" not in x:
                    continue
                print(f"  seed row {i}: episode lengths {x['episode_lengths']}, falls "
                      f"{x['falls']}; residual before falls {fmt(x['residual_before_fall'])}, "
                      f"elsewhere {fmt(x['residual_elsewhere'])}")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
