"""PPO training throughput vs raw env stepping vs brax's PPO trainer, one process.

Three rates at the same env and batch (``num_envs`` x ``num_steps`` per update):

* ``raw``: a jitted ``lax.scan`` of ``TrainingEnv.step`` with uniform random actions
  (the action draw is part of the program), ``updates * num_steps`` steps;
* ``ours``: ``make_ppo_train`` with the same sizes (rollout + obs-norm + update epochs);
* ``brax``: ``brax.training.agents.ppo.train`` on the same env (through a thin
  ``brax.envs.Env`` adapter), same num_envs / unroll / minibatch / epochs, 64-64 nets.
  Its own ``training/sps`` of the last of 4 epochs is reported (its first two epochs
  include compiles); evaluation is off (``run_evals=False``). brax's policy is a
  tanh-squashed Gaussian and it resets to the episode's first state, so costs differ
  slightly.

Ours and raw are timed on a second call of the compiled function (compile excluded).

Usage::

    python -m benchmarks.ppo_throughput --env probe/target --num-envs 64 --num-steps 32
    python -m benchmarks.ppo_throughput --env HalfCheetah-v5 --backend mujoco \\
        --num-envs 64 --num-steps 32 --minibatch 512 --updates 10
"""

from __future__ import annotations

import argparse
import functools
import json
import time

import jax
import jax.numpy as jnp

from active_rlhf_jax.config import PPOConfig, TrainConfig
from active_rlhf_jax.envs import TrainingEnv, make
from active_rlhf_jax.envs.brax_env import as_brax_env
from active_rlhf_jax.ppo import make_ppo_train


def _args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="probe/target")
    p.add_argument("--backend", default="auto")
    p.add_argument("--num-envs", type=int, default=64)
    p.add_argument("--num-steps", type=int, default=32)
    p.add_argument("--minibatch", type=int, default=512)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--updates", type=int, default=20)
    p.add_argument("--no-brax", action="store_true")
    p.add_argument("--json", default=None)
    return p.parse_args(argv)


def _time(fn, *args):
    jax.block_until_ready(fn(*args))  # compile + warm-up
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    return time.perf_counter() - t


def raw_rate(env, num_envs, steps):
    benv = TrainingEnv(env, num_envs)
    low, high = jnp.asarray(env.action_low), jnp.asarray(env.action_high)

    @jax.jit
    def run(key):
        key_reset, key_loop = jax.random.split(key)

        def step(state, k):
            a = jax.random.uniform(k, (num_envs, env.action_size), minval=low, maxval=high)
            state = benv.step(state, a)
            return state, state.reward

        return jax.lax.scan(step, benv.reset(key_reset), jax.random.split(key_loop, steps))[1]

    return num_envs * steps / _time(run, jax.random.PRNGKey(0))


def ours_rate(env, cfg: TrainConfig):
    train = jax.jit(make_ppo_train(cfg, env=env))
    return cfg.env_steps / _time(train, jax.random.PRNGKey(0))


def brax_rate(env, pc: PPOConfig, updates: int):
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as brax_ppo

    unrolls_per_mb = pc.minibatch_size // pc.num_steps
    num_minibatches = pc.num_envs // unrolls_per_mb
    per_update = pc.num_envs * pc.num_steps
    # brax jits its epoch twice (the first two epochs include compiles); report the
    # last of 5 epochs.
    num_evals = 5
    rates = []
    brax_ppo.train(
        environment=as_brax_env(env),
        num_timesteps=per_update * updates * (num_evals - 1),
        num_evals=num_evals,
        run_evals=False,
        episode_length=env.episode_length,
        num_envs=pc.num_envs,
        unroll_length=pc.num_steps,
        batch_size=unrolls_per_mb,
        num_minibatches=num_minibatches,
        num_updates_per_batch=pc.update_epochs,
        learning_rate=pc.learning_rate,
        entropy_cost=pc.ent_coef,
        discounting=pc.gamma,
        gae_lambda=pc.gae_lambda,
        clipping_epsilon=pc.clip_eps,
        max_grad_norm=pc.max_grad_norm,
        normalize_observations=True,
        bootstrap_on_timeout=False,  # needs info["time_out"], absent here
        network_factory=functools.partial(
            ppo_networks.make_ppo_networks,
            policy_hidden_layer_sizes=(64, 64),
            value_hidden_layer_sizes=(64, 64),
        ),
        progress_fn=lambda step, m: rates.append(float(m.get("training/sps", float("nan")))),
    )
    rates = [r for r in rates if r == r]
    return rates[-1] if rates else float("nan")


def main(argv=None):
    a = _args(argv)
    env = make(a.env, backend=a.backend)
    pc = PPOConfig(
        num_envs=a.num_envs,
        num_steps=a.num_steps,
        minibatch_size=a.minibatch,
        update_epochs=a.epochs,
        ent_coef=0.01,
    )
    cfg = TrainConfig(
        env_id=a.env, backend=a.backend, ppo=pc, total_timesteps=a.updates * pc.batch_size
    ).validate()
    rec = dict(
        env=a.env,
        backend=env.backend,
        num_envs=a.num_envs,
        num_steps=a.num_steps,
        minibatch=a.minibatch,
        epochs=a.epochs,
        updates=a.updates,
        device=jax.devices()[0].device_kind,
    )
    rec["raw_sps"] = raw_rate(env, a.num_envs, a.updates * a.num_steps)
    rec["ppo_sps"] = ours_rate(env, cfg)
    rec["ppo_over_raw"] = rec["ppo_sps"] / rec["raw_sps"]
    if not a.no_brax:
        rec["brax_ppo_sps"] = brax_rate(env, pc, a.updates)
        rec["ppo_over_brax"] = rec["ppo_sps"] / rec["brax_ppo_sps"]
    print(json.dumps(rec))
    if a.json:
        with open(a.json, "a") as f:
            f.write(json.dumps(rec) + "\n")
    return rec


if __name__ == "__main__":
    main()
