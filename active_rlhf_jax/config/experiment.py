"""A whole experiment: :class:`Config`, composed of the sections, with its derived sizes,
its cross-section checks, the acquisition settings it implies, and the reading of saved
configs (``config.json``) of earlier versions.

Presets live in ``configs/`` and are built with :func:`replace` on the defaults.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass

from active_rlhf_jax.config.acquisition import (
    AcquisitionConfig,
    EffectiveAcquisition,
    check_epig_ratings,
    check_information_units,
)
from active_rlhf_jax.config.base import (
    ConfigError,
    check_nonnegative_int,
    check_positive_int,
    from_dict,
    option,
    prefix_errors,
)
from active_rlhf_jax.config.compat import CompatConfig, check_compat
from active_rlhf_jax.config.env import EnvConfig
from active_rlhf_jax.config.ppo import PPOConfig
from active_rlhf_jax.config.reward import RewardModelConfig
from active_rlhf_jax.config.run import RunConfig
from active_rlhf_jax.config.teacher import TeacherConfig


def _schedule():
    """``pipeline.schedule``, imported on use: it imports JAX, and the config package is
    imported (for ConfigError) by command-line paths that must fail before JAX loads."""
    from active_rlhf_jax.pipeline import schedule

    return schedule


#: The sections of :class:`Config` (``--SECTION.FIELD`` flags), in order.
SECTIONS = ("env", "run", "ppo", "reward", "teacher", "acquisition", "compat")


@dataclass(frozen=True)
class Config:
    """A whole experiment. ``seeds`` seeds run in one vmapped call, from ``seed`` upward."""

    name: str = option("default", help="the run's name (the progress bar's label; presets "
                       "set it).")
    seed: int = option(0, help="first seed; seed i of the run uses seed + i.")
    seeds: int = option(1, help="seeds run side by side in one vmapped call.")
    env: EnvConfig = option(default_factory=EnvConfig, help="the task.")
    run: RunConfig = option(default_factory=RunConfig, help="the schedule.")
    ppo: PPOConfig = option(default_factory=PPOConfig, help="the PPO learner.")
    reward: RewardModelConfig = option(default_factory=RewardModelConfig,
                                       help="the reward model.")
    # Exact teachers by default; the ``noisy`` preset modifier adds noise.
    teacher: TeacherConfig = option(default_factory=lambda: TeacherConfig(rating_noise_std=0.0),
                                    help="the simulated teacher.")
    acquisition: AcquisitionConfig = option(default_factory=AcquisitionConfig,
                                            help="query selection.")
    compat: CompatConfig = option(default_factory=CompatConfig,
                                  help="reference behaviours.")

    # ---- derived sizes (never stored) -------------------------------------------------
    @property
    def rollout_steps(self) -> int:
        """Env steps of one PPO rollout, all envs: num_steps * num_envs."""
        return self.ppo.num_steps * self.ppo.num_envs

    @property
    def cycles_per_iteration(self) -> int:
        """Rollout-and-update cycles per RLHF iteration (SB3 runs whole rollouts)."""
        return math.ceil(self.run.ppo_timesteps_per_iteration / self.rollout_steps)

    @property
    def steps_per_iteration(self) -> int:
        return self.cycles_per_iteration * self.rollout_steps

    @property
    def num_iterations(self) -> int:
        """RLHF iterations K = total // per-iteration (nominal), as the reference loops."""
        return self.run.total_ppo_timesteps // self.run.ppo_timesteps_per_iteration

    @property
    def retrain_iterations(self) -> int:
        """Iterations of the two-phase schedule's second phase (PPO afresh on the final
        reward, held fixed): ``run.retrain_fraction * num_iterations`` rounded half up; 0
        online."""
        if self.run.retrain_fraction <= 0:
            return 0
        return math.floor(self.run.retrain_fraction * self.num_iterations + 0.5)  # half up

    @property
    def learning_iterations(self) -> int:
        """Iterations that acquire labels and refit the reward model (all but the second
        phase's); the label pacing, the pool and the rating rounds are sized by them."""
        return self.num_iterations - self.retrain_iterations

    @property
    def warmup_cycles(self) -> int:
        return math.ceil(self.run.warmup_timesteps / self.rollout_steps)

    @property
    def collection_cycles(self) -> int:
        return math.ceil(self.run.initial_collection_timesteps / self.rollout_steps)

    @property
    def initial_labels(self) -> tuple[int, int]:
        return _schedule().initial_label_counts(self.run.budget, self.run.initial_fraction, self.run.feedback)

    @property
    def pool_slots(self) -> int:
        """Clip pool slots: ``run.pool_capacity``, or (0) every clip the run harvests."""
        if self.run.pool_capacity > 0:
            return self.run.pool_capacity
        return (self.run.initial_segments
                + self.run.segments_per_iteration * self.learning_iterations)

    def query_split(self):
        """``n -> (n_pref, n_eval)`` where the config alone fixes it, else None (scores)."""
        acq = self.acquisition
        if self.run.feedback == "preference":
            return lambda n: (n, 0)
        if self.run.feedback == "rating":
            return lambda n: (0, n)
        if acq.allocation == "fixed":
            return lambda n: _schedule().fixed_split(n, acq.pref_fraction, acq.min_pref)
        return None

    def budget_charging(self):
        """How the pacing charges labels: ``(used0, charge)``, the initial batch's charge
        and ``charge(n)`` for an iteration asking n (see ``schedule.pacing_oracle``).

        Default: every label. ``compat.budget_counts_train_only`` with the reference split:
        training labels only, exact for a split the config fixes; for a split chosen by
        the scores, ``n - n // 5`` (the smallest charge of any split; sizes the slots from
        above). With the block split: ``(0, None)``, i.e. up to the whole budget per call.
        """
        n_p0, n_e0 = self.initial_labels
        cp = self.compat
        if not cp.budget_counts_train_only:
            return n_p0 + n_e0, (lambda n: n)
        if not cp.reference_val_split:
            return 0, None
        used0 = _schedule().charged_labels(n_p0, n_e0, True, True)
        split = self.query_split()
        if split is None:
            return used0, (lambda n: n - n // 5)
        return used0, (lambda n: _schedule().charged_labels(*split(n), True, True))

    @property
    def max_queries(self) -> int:
        """Static per-iteration query slots: the largest n of the pacing that runs."""
        used0, charge = self.budget_charging()
        if charge is None:
            return max(1, self.run.budget)
        return _schedule().max_queries_per_iteration(self.learning_iterations, self.run.budget,
                                                     used0, charge)

    @property
    def num_chunks(self) -> int:
        """Chunks the runner calls: each phase's iterations in whole chunks, the last short."""
        c = self.run.iterations_per_chunk
        return (math.ceil(self.learning_iterations / c)
                + math.ceil(self.retrain_iterations / c))

    @property
    def rating_rounds(self) -> int:
        """Labelling rounds with their own rating calibration: the initial batch and one
        per iteration on a relative scale (``teacher.rating_scale="pool"`` or
        ``"pool-rank"``); 0 (none) on the fixed scale."""
        return self.learning_iterations + 1 if self.teacher.rating_scale != "fixed" else 0

    def validate(self) -> Config:
        """Check every field; raises ConfigError naming it. Returns self."""
        check_positive_int("seeds", self.seeds)
        check_nonnegative_int("seed", self.seed)
        for name in SECTIONS:
            prefix_errors(name, getattr(self, name).validate)
        check_compat(self.compat, self.reward.rating_likelihood, self.teacher.min_gap)
        prefix_errors("acquisition", lambda: check_information_units(
            self.acquisition.method, self.acquisition.allocation, self.run.feedback == "both"))
        prefix_errors("acquisition", lambda: check_epig_ratings(
            self.acquisition.allocation, self.reward.rating_likelihood,
            self.run.feedback == "both"))
        horizon = _episode_length(self.env.env_id)
        if self.run.segment_length > horizon:
            raise ConfigError(
                "run.segment_length",
                f"{self.run.segment_length} is longer than the {horizon}-step episode",
            )
        if self.run.segment_length > self.cycles_per_iteration * self.ppo.num_steps:
            raise ConfigError(
                "run.segment_length",
                "longer than the steps one env takes per iteration "
                f"({self.cycles_per_iteration * self.ppo.num_steps})",
            )
        if self.run.feedback != "none" and self.run.budget < sum(self.initial_labels):
            raise ConfigError("run.budget", "smaller than the initial batch")
        if self.run.feedback != "none" and self.run.initial_segments > self.pool_slots:
            raise ConfigError("run.initial_segments", "exceeds run.pool_capacity")
        if self.run.feedback != "none" and self.num_iterations < 2:
            raise ConfigError("run.total_ppo_timesteps", "gives fewer than 2 RLHF iterations")
        if self.run.retrain_fraction > 0 and self.retrain_iterations < 1:
            raise ConfigError("run.retrain_fraction", f"{self.run.retrain_fraction} of "
                              f"{self.num_iterations} iterations rounds to none")
        if self.run.feedback != "none" and self.learning_iterations < 2:
            raise ConfigError("run.retrain_fraction", f"leaves {self.learning_iterations} of "
                              f"{self.num_iterations} iterations to learn the reward in "
                              "(at least 2)")
        if self.teacher.rating_scale != "fixed" and self.reward.rating_likelihood != "ordinal":
            raise ConfigError("teacher.rating_scale", f"{self.teacher.rating_scale} needs "
                              "reward.rating_likelihood=ordinal (its per-round calibration shifts and scales the "
                              "ordinal link's input)")
        _check_posterior_spread(self)
        self._check_budget_supply()
        return self

    def _check_budget_supply(self):
        """A budget the clip pool cannot supply is an error, not a silent shortfall."""
        if self.run.feedback == "none" or self.compat.budget_counts_train_only:
            return  # nothing to spend / the pacing charges only a part of the labels
        r = self.run
        bound = _schedule().max_labels_supplied(
            self.learning_iterations, r.budget, self.initial_labels, r.initial_segments,
            r.segments_per_iteration, r.pool_capacity,
            (r.feedback in ("preference", "both"), r.feedback in ("rating", "both")),
            self.acquisition.selection == "disjoint", self.acquisition.exclude_labelled)
        if r.budget > bound:
            raise ConfigError(
                "run.budget",
                f"{r.budget} labels cannot be spent: the clip pool supplies at most {bound} "
                f"({r.initial_segments} initial clips, {r.segments_per_iteration} new per "
                f"iteration over {self.learning_iterations - 1} acquiring iterations; a clip is "
                "paired once and rated once); lower run.budget or raise "
                "run.segments_per_iteration")


def effective_acquisition(config: Config) -> EffectiveAcquisition:
    """The acquisition settings a run of ``config`` uses: ``config.acquisition`` plus the
    rating likelihood (``reward.rating_likelihood``; ``"none"`` when no clip is rated),
    whether pairs are asked (not with ``run.feedback="rating"``: every query is a clip),
    and the reference pool's gap (``teacher.min_gap``, None = 0)."""
    feedback = config.run.feedback
    acq = config.acquisition
    return EffectiveAcquisition(
        **{f.name: getattr(acq, f.name) for f in dataclasses.fields(AcquisitionConfig)},
        rating_likelihood=("none" if feedback == "preference"
                           else config.reward.rating_likelihood),
        pairs=feedback != "rating",
        min_gap=float(config.teacher.min_gap or 0.0))


#: Acquisition scores that are functions of the posterior's spread over samples.
SPREAD_METHODS = ("bald", "variance", "entropy")


def _check_posterior_spread(cfg: Config) -> None:
    """An MC-dropout posterior with dropout 0 has no spread: its S samples are one network.

    BALD and the variance score are then 0 for every candidate, and predictive entropy
    reduces to the noise model's (no epistemic part), so the queries are chosen by ties,
    not by uncertainty; the reference-adaptive split compares two zero BALD means. Running
    that silently looked like active learning and was not (Hopper's reference dropout is
    0), so it is an error naming the field.
    """
    r, a = cfg.reward, cfg.acquisition
    if cfg.run.feedback == "none" or r.posterior != "mc_dropout" or r.dropout > 0:
        return
    uses = []
    if a.method in SPREAD_METHODS:
        uses.append(f"acquisition.method={a.method!r}")
    if a.allocation == "reference-adaptive" and cfg.run.feedback == "both":
        uses.append("acquisition.allocation='reference-adaptive' (BALD means)")
    if uses:
        raise ConfigError(
            "reward.dropout",
            f"0 gives the mc_dropout posterior no spread (its samples are one network), so "
            f"{' and '.join(uses)} cannot measure what the model does not know; "
            "set reward.dropout > 0 (the BALD presets use 0.4), "
            "reward.posterior='ensemble', or acquisition.method='random'",
        )


def _episode_length(env_id: str) -> int:
    from active_rlhf_jax.envs import make

    # Probes are cheap; MuJoCo tasks read their horizon from the class, no physics built.
    return make(env_id, backend="mujoco").episode_length


# ---- saved configs of earlier versions ------------------------------------------------

def _differs(a, b) -> bool:
    norm = (lambda v: tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else v)
    return norm(a) != norm(b)


def upgrade_config_dict(data: dict) -> dict:
    """A saved ``config.json`` in today's field names (a copy; today's files pass as is).

    Earlier versions held the rating scale, the min gap and the acquisition's rating
    likelihood twice. Each old duplicate is dropped when it agrees with the value kept (or
    was never read); one that disagrees where both were read cannot be reproduced and is
    a ConfigError naming it.

    * ``teacher.num_bins``, ``teacher.gamma`` -> ``reward.num_bins``, ``reward.gamma``.
    * ``reward.rating_range`` -> ``teacher.rating_range``.
    * ``acquisition.rating_likelihood``: always replaced by the glue; dropped.
    * ``acquisition.min_gap``: read only with ``acquisition.pair_mode="reference"``;
      ``teacher.min_gap`` only with ``compat.min_gap_filter``; both now read
      ``teacher.min_gap``.
    """
    data = copy.deepcopy(data)
    teacher, reward = data.get("teacher", {}), data.get("reward", {})
    acq, compat = data.get("acquisition", {}), data.get("compat", {})
    defaults = RewardModelConfig()
    for old, kept in (("num_bins", "num_bins"), ("gamma", "gamma")):
        if old in teacher:
            value = teacher.pop(old)
            have = reward.get(kept, getattr(defaults, kept))
            if _differs(value, have):
                raise ConfigError(f"teacher.{old}", f"{value!r} differs from reward.{kept} "
                                  f"{have!r}; both are reward.{kept} now")
    if "rating_range" in reward:
        value = reward.pop("rating_range")
        have = teacher.get("rating_range", TeacherConfig().rating_range)
        if _differs(value, have):
            raise ConfigError("reward.rating_range", f"{value!r} differs from "
                              f"teacher.rating_range {have!r}")
    acq.pop("rating_likelihood", None)
    if "min_gap" in acq:
        gap = acq.pop("min_gap")
        if acq.get("pair_mode", AcquisitionConfig().pair_mode) == "reference":
            have = teacher.get("min_gap")
            if not compat.get("min_gap_filter", False):
                teacher["min_gap"] = None if (gap == 0 and have is None) else gap
            elif _differs(gap, 0.0 if have is None else have):
                raise ConfigError("acquisition.min_gap", f"{gap!r} differs from teacher.min_gap "
                                  f"{have!r}; both are teacher.min_gap now")
    return data


def load_config_dict(data: dict) -> Config:
    """A Config from a saved ``config.json`` dict, of this version or an earlier one."""
    return from_dict(Config, upgrade_config_dict(data))
