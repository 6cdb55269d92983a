"""The NaN/Inf guard: a check traced into every iteration, read by the host with the
chunk's metrics (no extra round-trip); the runner stops a run whose flag is set."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from active_rlhf_jax.pipeline.state import PipelineState

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
