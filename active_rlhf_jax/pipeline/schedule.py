"""The reference's feedback schedule: initial batch and per-iteration pacing.

Reference (seed_spec §8.3): after PPO iteration ``it`` (1-based) of ``K``,
``iters_left = K - it`` and ``n = max(0, round(remaining / iters_left))`` if
``iters_left > 0`` else 0, with ``remaining = budget - labels_used``. Python's ``round``
rounds halves to even, as ``jnp.round`` does. The last iteration therefore acquires
nothing and the whole budget is spent by iteration ``K - 1``.

By default every label counts against the budget (validation labels included); the
reference counts only training labels (``compat.budget_counts_train_only``). The
plain-Python oracle below takes the charging rule as a function, so the static query
slots (``max_queries_per_iteration``) are sized from the pacing that really runs.
"""

from __future__ import annotations

import math
from typing import Callable

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


def fixed_split(n: int, pref_fraction: float, min_pref: int) -> tuple[int, int]:
    """Plain-Python twin of ``acquisition.fixed_allocation``: (n_pref, n_eval)."""
    base = math.floor(pref_fraction * n + 1e-4)
    n_pref = min(max(base, min_pref), n)
    return n_pref, n - n_pref


def charged_labels(n_pref: int, n_eval: int, train_only: bool, reference_val_split: bool) -> int:
    """Labels the pacing charges for one add of ``n_pref`` preferences and ``n_eval`` ratings.

    All of them by default; under ``train_only`` (the reference) only those that go to
    training, which with the reference's split is ``n - n // 5`` per modality and call.

    Raises:
        ValueError: train-only charging with the one-in-five block split, where the charge
            of a call depends on the labels before it.
    """
    if not train_only:
        return n_pref + n_eval
    if not reference_val_split:
        raise ValueError("the block validation split has no per-call charge")
    return n_pref - n_pref // 5 + n_eval - n_eval // 5


def pacing_oracle(num_iterations: int, budget: int, used0: int,
                  charge: Callable[[int], int] | None = None) -> list[int]:
    """Plain-Python pacing, assuming every requested label is acquired. -> n per iteration.

    Args:
        used0: labels charged for the initial batch.
        charge: labels charged for an iteration that asks ``n`` (default ``n``).
    """
    charge = charge or (lambda n: n)
    used, out = used0, []
    for it in range(1, num_iterations + 1):
        iters_left = num_iterations - it
        n = max(0, round(max(budget - used, 0) / iters_left)) if iters_left > 0 else 0
        out.append(n)
        used += charge(n)
    return out


def max_queries_per_iteration(num_iterations: int, budget: int, used0: int,
                              charge: Callable[[int], int] | None = None) -> int:
    """Static bound on n used to size the per-iteration query slots (at least 1).

    Exact when ``charge`` is the run's charging rule; an upper bound when ``charge(n)`` is
    a lower bound of it that does not decrease with n (less charged keeps more remaining,
    so every later n can only grow).
    """
    return max([1] + pacing_oracle(num_iterations, budget, used0, charge))


def max_labels_supplied(num_iterations: int, budget: int, initial: tuple[int, int],
                        initial_segments: int, segments_per_iteration: int, pool_capacity: int,
                        modalities: tuple[bool, bool], disjoint: bool, exclusive: bool) -> int:
    """Upper bound on the labels a run can spend: the pacing against the pool's supply.

    Each iteration adds ``segments_per_iteration`` fresh clips (the pool holds at most
    ``pool_capacity``). With ``exclusive`` (``acquisition.exclude_labelled``) a clip joins
    at most one pair over the run and is rated at most once, so an iteration can ask at
    most ``m // 2`` pairs (``disjoint`` selection; ``m (m - 1) / 2`` with top-k) of its ``m``
    unpaired clips plus one rating per unrated clip, and never more than the pacing's ``n``
    (capped at the static slot count). The bound is optimistic: clips are assumed to be
    evicted used-first and the adaptive split to pick whatever is left, so a budget above
    it can never be spent, while one below it may still fall short (the run says so).

    Args:
        initial: (n_pref, n_eval) of the initial random batch (always spent).
        modalities: (preferences asked, ratings asked).
    Returns:
        the largest number of labels the run can charge, initial batch included.
    """
    use_pref, use_eval = modalities
    k_max = max_queries_per_iteration(num_iterations, budget, sum(initial))
    used = sum(initial)
    pool = min(initial_segments, pool_capacity)
    # The initial pairs' first clips are min(n_pref, pool) distinct clips, at least.
    unpaired = pool - min(pool, initial[0]) if exclusive else pool
    unrated = pool - min(pool, initial[1]) if exclusive else pool
    for it in range(1, num_iterations + 1):
        pool = min(pool + segments_per_iteration, pool_capacity)
        unpaired = pool if not exclusive else min(unpaired + segments_per_iteration, pool)
        unrated = pool if not exclusive else min(unrated + segments_per_iteration, pool)
        iters_left = num_iterations - it
        n = round(max(budget - used, 0) / iters_left) if iters_left > 0 else 0
        n = min(max(n, 0), k_max)
        pairs_cap = (unpaired // 2 if disjoint else unpaired * (unpaired - 1) // 2) if use_pref else 0
        p = min(n, pairs_cap)
        r = min(n - p, unrated if use_eval else 0)
        used += p + r
        if exclusive:
            # clips consumed by p pairs: 2p when disjoint, else the fewest m with
            # m (m - 1) / 2 >= p.
            m = 2 * p if disjoint else next(k for k in range(unpaired + 1)
                                            if k * (k - 1) // 2 >= p)
            unpaired -= m
            unrated -= r
    return used
