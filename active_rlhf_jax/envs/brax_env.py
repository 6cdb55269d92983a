"""Our environments as brax ``Env``s, so brax's training agents (and MuJoCo Playground's,
which take the same interface) run on them.

    from brax.training.agents.ppo import train as brax_ppo
    env = as_brax_env(make("HalfCheetah-v5", backend="mujoco"))
    make_policy, params, metrics = brax_ppo.train(environment=env, ...)

Our envs already follow brax's functional style (``reset(key)``, ``step(state, action)``,
pure and vmappable), so the adapter only moves fields between the two state types: brax's
``pipeline_state`` carries our physics data (C MuJoCo's callback state or ``mjx.Data``).
Every backend works, the C backend included. brax adds the horizon and auto-reset
(``episode_length``), as our ``TrainingEnv`` does; ``done`` is 1.0 only on termination.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from active_rlhf_jax.envs.base import Env, EnvState


def _shim_device_put_replicated() -> None:
    """brax 0.14.2's trainers call ``jax.device_put_replicated``, which jax 0.10 removed:
    put it back (stack per device; one device: a plain ``device_put``)."""
    if hasattr(jax, "device_put_replicated"):
        return

    def device_put_replicated(x, devices):
        stacked = jax.tree.map(lambda a: jnp.stack([jnp.asarray(a)] * len(devices)), x)
        return jax.device_put(stacked, devices[0]) if len(devices) == 1 else stacked

    jax.device_put_replicated = device_put_replicated


def as_brax_env(env: Env):
    """``env`` (any backend) -> a ``brax.envs.base.Env`` with the same dynamics and reward."""
    from brax.envs.base import Env as BraxEnv
    from brax.envs.base import State

    _shim_device_put_replicated()

    class BraxAdapter(BraxEnv):
        def reset(self, rng: jax.Array) -> State:
            s = env.reset(rng)
            return State(s.data, s.obs, s.reward, s.done, dict(s.metrics), {})

        def step(self, state: State, action: jax.Array) -> State:
            ours = EnvState(state.pipeline_state, state.obs, state.reward, state.done,
                            dict(state.metrics), {})
            nxt = env.step(ours, action)
            return state.replace(pipeline_state=nxt.data, obs=nxt.obs, reward=nxt.reward,
                                 done=nxt.done, metrics={**state.metrics, **nxt.metrics})

        @property
        def observation_size(self) -> int:
            return env.observation_size

        @property
        def action_size(self) -> int:
            return env.action_size

        @property
        def backend(self) -> str:
            return env.backend

        def __repr__(self) -> str:
            return f"BraxAdapter({env!r})"

    return BraxAdapter()
