"""A ``lax.cond`` predicate that stays a scalar under an outer ``vmap``.

Under ``vmap``, a ``lax.cond`` whose predicate is batched becomes a ``select``: both
branches run for every batch element on every call. Two conds in the training loop exist
only to skip rare work: the auto-reset of finished envs (``envs/wrappers.py``, a C MuJoCo
host call on the CPU backend) and the critic pass on truncated observations
(``ppo/learner.py``). Under the seed ``vmap`` every run of a sweep paid for both on
every env step; with one env per seed (the tuned Hopper and Walker2d learner) the reset's
host call cost as much as the step itself.

:func:`any_in_batch` returns its boolean argument unchanged when called unbatched, and
under a ``vmap`` the OR of it over that vmap's batch, *unbatched*, so the cond stays a
cond: it runs its expensive branch for the whole batch on the steps where any element
needs it, and skips it on the others. That is only correct where the branch is a no-op
for an element whose own predicate is false; both conds above are written so (the
reset picks fresh states only where an env ended; the bootstrap value is multiplied by
the truncation flag).

Only the innermost ``vmap`` around the call is reduced; further ``vmap`` levels around
it turn the cond into a select again, which gives the same values, only slower.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.custom_batching import custom_vmap


@custom_vmap
def any_in_batch(pred):
    """``pred`` (bool ``[]``), or under ``vmap`` its OR over the batch (unbatched ``[]``)."""
    return pred


@any_in_batch.def_vmap
def _any_in_batch_vmap(axis_size, in_batched, pred):
    del axis_size
    (batched,) = in_batched
    return (jnp.any(pred, axis=0) if batched else pred), False
