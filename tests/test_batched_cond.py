"""``any_in_batch``: the auto-reset and bootstrap conds stay conds under the seed vmap, and
give exactly what each seed run alone gives."""

import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax.batched_cond import any_in_batch
from active_rlhf_jax.envs import TrainingEnv, make


def test_any_in_batch_is_the_or_over_the_vmapped_batch_and_unbatched():
    x = jnp.array([False, True, False])
    assert bool(any_in_batch(jnp.bool_(True))) and not bool(any_in_batch(jnp.bool_(False)))
    out = jax.vmap(lambda p: any_in_batch(p))(x)
    # The rule returns an unbatched OR; vmap broadcasts it back to every element.
    np.testing.assert_array_equal(out, [True, True, True])
    np.testing.assert_array_equal(jax.vmap(any_in_batch)(jnp.zeros(3, bool)), [False] * 3)
    # A cond on it is still a cond under vmap, not a select of both branches.
    jaxpr = jax.make_jaxpr(jax.vmap(
        lambda p, v: jax.lax.cond(any_in_batch(p), lambda u: u + 1.0, lambda u: u, v)))(
            x, jnp.zeros(3))
    assert "cond[" in str(jaxpr) and "select_n" not in str(jaxpr)


def _rollout(env, key, steps):
    """Random-action rollout of a TrainingEnv: per-step rewards, dones and observations."""
    k_reset, k_act = jax.random.split(key)
    state = env.reset(k_reset)

    def body(s, k):
        a = jax.random.uniform(k, (env.num_envs, env.action_size), minval=-1.0, maxval=1.0)
        s = env.step(s, a)
        return s, (s.reward, s.done, s.obs)

    return jax.lax.scan(body, state, jax.random.split(k_act, steps))[1]


def test_seed_vmap_of_auto_resets_equals_each_seed_alone():
    """Hopper on the C backend with termination: random actions make episodes end at other
    steps in each seed, so the batched cond resets seeds whose envs did not end; they must
    come out exactly as when each seed runs alone (unbatched cond)."""
    env = TrainingEnv(make("Hopper-v5", backend="mujoco", terminate_when_unhealthy=True), 2)
    keys = jax.random.split(jax.random.PRNGKey(3), 3)
    run = jax.jit(lambda k: _rollout(env, k, 120))
    together = jax.jit(jax.vmap(lambda k: _rollout(env, k, 120)))(keys)
    dones = np.asarray(together[1])
    # The test means something only if the seeds' resets fall on different steps.
    assert dones.sum() >= 3
    assert len({tuple(np.flatnonzero(dones[i].any(axis=1))) for i in range(3)}) == 3
    for i in range(3):
        alone = run(keys[i])
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b[i]))
