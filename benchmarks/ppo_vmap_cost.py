"""Cost of a seeds vmap on PPO's pieces: rollout and update, plain vs vmap of 1 and 4.

Uses the ``--preset`` pipeline config's PPO sizes and env (C backend). Each function is
compiled and warmed once, then the mean of ``--repeats`` calls is printed in ms.

Usage::

    python -m benchmarks.ppo_vmap_cost --preset default --repeats 5
"""

from __future__ import annotations

import argparse
import time


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="default")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", default="1,4")
    a = p.parse_args(argv)

    import jax

    from active_rlhf_jax.envs.registry import make
    from active_rlhf_jax.envs.wrappers import TrainingEnv
    from active_rlhf_jax.ppo import make_ppo
    from configs.presets import get_preset

    config = get_preset(a.preset)
    cfg = config.ppo
    tenv = TrainingEnv(make(config.env.env_id, backend="mujoco"), cfg.num_envs)
    ppo = make_ppo(cfg, tenv)

    def init(k):
        return ppo.init(k), tenv.reset(k)

    def rollout(st, es, k):
        return ppo.rollout(st, es, k)

    def update(st, tr, k):
        return ppo.update(st, tr, tr.true_reward, k)[0]

    def bench(name, f, *args):
        jax.block_until_ready(f(*args))
        t = time.perf_counter()
        for _ in range(a.repeats):
            jax.block_until_ready(f(*args))
        print(f"{name}: {(time.perf_counter() - t) / a.repeats * 1000:.1f} ms", flush=True)

    k = jax.random.PRNGKey(0)
    st, es = jax.jit(init)(k)
    _, tr = jax.jit(rollout)(st, es, k)
    bench("rollout plain", jax.jit(rollout), st, es, k)
    bench("update plain", jax.jit(update), st, tr, k)
    for b in (int(x) for x in a.batches.split(",")):
        ks = jax.random.split(k, b)
        stb, esb = jax.jit(jax.vmap(init))(ks)
        _, trb = jax.jit(jax.vmap(rollout))(stb, esb, ks)
        bench(f"rollout vmap({b})", jax.jit(jax.vmap(rollout)), stb, esb, ks)
        bench(f"update vmap({b})", jax.jit(jax.vmap(update)), stb, trb, ks)


if __name__ == "__main__":
    main()
