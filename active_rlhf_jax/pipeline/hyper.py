"""Traced hyperparameters: config fields a run reads from its state instead of compiling
them in, so runs that differ only in them share one compiled program (issue #15).

``PipelineState.hyper`` holds them as ``{dotted field: [] float32}`` per seed; a batch of
runs (cells x seeds) is one ``vmap`` over ``(keys, hyper)``. So far the pipeline reads the
simulated teacher's noise, the reward model's optimiser and loss weights and the
acquisition's split and cost scalars from there (:data:`PIPELINE_TRACED`), and the
acquisition method, the allocation rule and the feedback kind (``run.feedback``:
preference / rating / both; ground truth always apart) as choices (:data:`CHOICES`): a
program built with
``choices={"acquisition.method": ("bald", "random")}`` computes both methods' scores and
keeps the one each run's index names (the hyper's ``acquisition.method``: its position in
``METHODS``, always present, read only by such a program); the reward model's dropout
rate likewise (:data:`ON_DEMAND`). PPO's step size, clip range
and loss coefficients are traced too; its other scalars (gamma, GAE lambda, gradient
clip, normaliser constants) are still compiled in, so a grid over them still needs one
program per value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from active_rlhf_jax.config import ConfigError, apply_hyper, leaf_values, traced_fields  # noqa: F401
from active_rlhf_jax.config.acquisition import ALLOCATIONS, METHODS
from active_rlhf_jax.config.run import FEEDBACK

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
    "acquisition.pref_fraction",
    "acquisition.cost_pref",
    "acquisition.cost_eval",
    "acquisition.eval_percentile",
    "ppo.learning_rate",
    "ppo.clip_eps",
    "ppo.vf_coef",
    "ppo.ent_coef",
)


#: Static alternatives of the same shapes that a program can choose among at run time:
#: ``{field: every value}``; the hyper holds the value's index (int32).
CHOICES = {"acquisition.method": METHODS, "acquisition.allocation": ALLOCATIONS,
           "run.feedback": FEEDBACK}

#: Static scalars a program reads from the hyper only when its runs differ in them
#: (``{field: ()}`` in ``program_choices``): the reward model's dropout rate, whose
#: compiled-in value lets a single run skip the mask at rate 0 and keeps its arithmetic
#: bitwise as before. Always in the hyper ([] float32).
ON_DEMAND = ("reward.dropout",)


def hyper_values(config) -> dict[str, jax.Array]:
    """``{field: [] float32}`` of :data:`PIPELINE_TRACED` for one config, and ``{field:
    [] int32}`` (the value's index) of :data:`CHOICES`."""
    values = leaf_values(config)
    out = {name: jnp.asarray(values[name], jnp.float32) for name in PIPELINE_TRACED}
    out.update({name: jnp.asarray(options.index(values[name]), jnp.int32)
                for name, options in CHOICES.items()})
    out.update({name: jnp.asarray(values[name], jnp.float32) for name in ON_DEMAND})
    return out


def program_choices(configs) -> dict[str, tuple]:
    """What the shared program of ``configs`` must read from the hyper: ``{field:
    options}`` of the :data:`CHOICES` fields in which they differ (options in
    :data:`CHOICES` order), and ``{field: ()}`` of the :data:`ON_DEMAND` ones."""
    choices = {}
    values = [leaf_values(c) for c in configs]
    for name, every in CHOICES.items():
        used = {v[name] for v in values}
        if len(used) > 1:
            choices[name] = tuple(v for v in every if v in used)
    for name in ON_DEMAND:
        if len({v[name] for v in values}) > 1:
            choices[name] = ()
    return choices


def program_key(config) -> tuple:
    """What one compiled program fixes of a config: every field but those the pipeline
    can read from its state (:data:`PIPELINE_TRACED`, :data:`CHOICES`, :data:`ON_DEMAND`)
    and the name. Configs with equal keys can share a program (:func:`stack_hyper`)."""
    shared = set(PIPELINE_TRACED) | set(CHOICES) | set(ON_DEMAND) | {"name"}
    fields = tuple((k, v) for k, v in sorted(leaf_values(config).items()) if k not in shared)
    # Sizes derived from several fields, a traced one among them (compat's budget charging
    # reads the fixed split's pref_fraction to size the query slots); the initial batch's
    # size (its split follows the feedback kind); whether there is a reward model at all.
    return fields + (("<query slots>", config.max_queries),
                     ("<initial labels>", sum(config.initial_labels)),
                     ("<ground truth>", config.run.feedback == "none"))


def static_differences(configs) -> list[str]:
    """Fields (sorted) that differ among ``configs`` and that a program compiles in."""
    keys = [dict(program_key(c)) for c in configs]
    names = {"<ground truth>": "run.feedback"}  # none against a learned reward
    return sorted({names.get(k, k) for k in keys[0]
                   if any(other[k] != keys[0][k] for other in keys[1:])})


def check_one_program(configs) -> None:
    """ConfigError naming the first field that differs between ``configs`` and that one
    shared program would compile in (:func:`program_key`)."""
    first = dict(program_key(configs[0]))
    traced = set(traced_fields(type(configs[0])))
    for cfg in configs[1:]:
        other = dict(program_key(cfg))
        if other["<ground truth>"] != first["<ground truth>"]:
            raise ConfigError("run.feedback", "none (ground truth, no reward model) cannot "
                              "share a program with a learned reward")
        for name, value in first.items():
            if other[name] != value:
                kind = ("traced, but not yet read from the state" if name in traced else
                        "derived from traced fields" if name.startswith("<") else "static")
                raise ConfigError(name, f"differs between the runs of one program "
                                        f"({value!r} vs {other[name]!r}); it is {kind}")


def stack_hyper(configs, repeat: int = 1) -> dict[str, jax.Array]:
    """The hyper of several configs as one batch: ``{field: [len(configs) * repeat]}``, each
    config's values repeated ``repeat`` times (its seeds), configs outermost.

    The configs must agree in every other field, since they share one compiled program:
    otherwise a ConfigError names the first field that differs (:func:`check_one_program`).
    """
    check_one_program(configs)
    rows = [hyper_values(c) for c in configs]
    return {k: jnp.repeat(jnp.stack([r[k] for r in rows]), repeat) for k in rows[0]}
