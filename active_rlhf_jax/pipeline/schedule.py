"""The reference's feedback schedule: initial batch and per-iteration pacing.

Reference (seed_spec §8.3): after PPO iteration ``it`` (1-based) of ``K``,
``iters_left = K - it`` and ``n = max(0, round(remaining / iters_left))`` if
``iters_left > 0`` else 0, with ``remaining = budget - labels_used``. Python's ``round``
rounds halves to even, as ``jnp.round`` does. The last iteration therefore acquires
nothing and the whole budget is spent by iteration ``K - 1``.

By default every label counts against the budget (validation labels included); the
reference counts only training labels (``compat.budget_counts_train_only``).
"""

from __future__ import annotations

import jax.numpy as jnp


def initial_label_counts(budget: int, initial_fraction: float, feedback: str) -> tuple[int, int]:
    """(n_pref, n_eval) of the initial random batch: ``int(budget * frac)`` split 50/50.

    The reference gives ``floor(n/2)`` to preferences and the rest to ratings.
    Single-modality runs give the whole batch to their modality.
    """
    n = int(budget * initial_fraction)
    if feedback == "preference":
        return n, 0
    if feedback == "rating":
        return 0, n
    if feedback == "none":
        return 0, 0
    return n // 2, n - n // 2


def compute_queries_this_iteration(iteration, num_iterations: int, budget: int, used):
    """Traced pacing: ``iteration`` is 1-based; ``used`` labels charged so far. -> int32 []."""
    iters_left = num_iterations - iteration
    remaining = jnp.maximum(budget - used, 0).astype(jnp.float32)
    n = jnp.where(iters_left > 0, jnp.round(remaining / jnp.maximum(iters_left, 1)), 0.0)
    return jnp.maximum(n, 0).astype(jnp.int32)


def pacing_oracle(num_iterations: int, budget: int, used0: int) -> list[int]:
    """Plain-Python pacing, assuming every requested label is acquired. -> n per iteration."""
    used, out = used0, []
    for it in range(1, num_iterations + 1):
        iters_left = num_iterations - it
        n = max(0, round(max(budget - used, 0) / iters_left)) if iters_left > 0 else 0
        out.append(n)
        used += n
    return out


def max_queries_per_iteration(num_iterations: int, budget: int, used0: int) -> int:
    """Static bound on n used to size the per-iteration query slots (at least 1)."""
    return max([1] + pacing_oracle(num_iterations, budget, used0))
