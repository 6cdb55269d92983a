"""``Choice``: one of several same-shape alternatives, chosen at run time.

A sweep's cells that differ only in, say, their acquisition method share one compiled
program when the method is a traced index instead of a compiled-in string: the program
computes every alternative the cells use (``options``, static) and keeps the one each
run's index names. Under ``vmap`` a ``lax.switch`` on a batched index would run every
branch anyway, so the choice is an elementwise select, which also keeps the single-run
programs (a plain string) unchanged.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class Choice(NamedTuple):
    """``index`` ([] int32, traced) is the chosen value's position in ``every`` (the
    field's whole tuple of values, e.g. ``METHODS``); ``options`` (static) are the values
    the program computes."""

    options: tuple
    index: jax.Array
    every: tuple

    def pick(self, values: list):
        """``values[k]`` (any pytree) of ``options[k]`` -> the chosen one's, leaf by leaf."""
        out = values[0]
        for name, value in zip(self.options[1:], values[1:]):
            hit = self.index == self.every.index(name)
            out = jax.tree_util.tree_map(lambda v, o, hit=hit: jnp.where(hit, v, o), value, out)
        return out
