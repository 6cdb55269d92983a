"""Traced hyperparameters: config fields a run reads from its state instead of compiling
them in, so runs that differ only in them share one compiled program (issue #15).

``PipelineState.hyper`` holds them as ``{dotted field: [] float32}`` per seed; a batch of
runs (cells x seeds) is one ``vmap`` over ``(keys, hyper)``. So far the pipeline reads the
simulated teacher's noise and the reward model's optimiser and loss weights from there
(:data:`PIPELINE_TRACED`); the other fields marked ``traced`` in the config (PPO's
coefficients, the preference fraction) are still compiled in, so a grid over them still
needs one program per value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from active_rlhf_jax.config import ConfigError, apply_hyper, leaf_values, traced_fields  # noqa: F401

#: Traced fields the pipeline reads from ``PipelineState.hyper``.
PIPELINE_TRACED = (
    "teacher.beta",
    "teacher.mistake_prob",
    "teacher.myopic_gamma",
    "teacher.equal_threshold",
    "teacher.rating_noise_std",
    "teacher.rating_beta",
    "reward.lr",
    "reward.weight_decay",
    "reward.reg_weight",
    "reward.rating_weight",
)


def hyper_values(config) -> dict[str, jax.Array]:
    """``{field: [] float32}`` of :data:`PIPELINE_TRACED` for one config."""
    values = leaf_values(config)
    return {name: jnp.asarray(values[name], jnp.float32) for name in PIPELINE_TRACED}


def stack_hyper(configs, repeat: int = 1) -> dict[str, jax.Array]:
    """The hyper of several configs as one batch: ``{field: [len(configs) * repeat]}``, each
    config's values repeated ``repeat`` times (its seeds), configs outermost.

    The configs must agree in every other field, since they share one compiled program:
    otherwise a ConfigError names the first field that differs.
    """
    first = leaf_values(configs[0])
    shared = set(PIPELINE_TRACED) | {"name"}
    traced = set(traced_fields(type(configs[0])))
    for cfg in configs[1:]:
        other = leaf_values(cfg)
        for name, value in first.items():
            if name not in shared and other[name] != value:
                kind = "traced, but not yet read from the state" if name in traced else "static"
                raise ConfigError(name, f"differs between the runs of one program "
                                        f"({value!r} vs {other[name]!r}); it is {kind}")
    rows = [hyper_values(c) for c in configs]
    return {k: jnp.repeat(jnp.stack([r[k] for r in rows]), repeat) for k in PIPELINE_TRACED}
