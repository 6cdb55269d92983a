"""The experiment configuration: one frozen dataclass composed of the subsystems' configs.

Static fields fix shapes and trace structure (sizes, lengths, counts, choices); float
hyperparameters are plain leaves. Derived sizes are properties, never written back.
Presets live in ``configs/`` and are built with ``dataclasses.replace`` on the defaults.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from active_rlhf_jax.acquisition import AcquisitionConfig, check_information_units
from active_rlhf_jax.compat import CompatConfig
from active_rlhf_jax.config_utils import (
    ConfigError,
    check_choice,
    check_in_range,
    check_nonnegative_int,
    check_positive_int,
    prefix_errors,
)
from active_rlhf_jax.pipeline.schedule import (
    charged_labels,
    fixed_split,
    initial_label_counts,
    max_labels_supplied,
    max_queries_per_iteration,
)
from active_rlhf_jax.ppo import PPOConfig
from active_rlhf_jax.reward import RewardModelConfig
from active_rlhf_jax.teachers import TeacherConfig

FEEDBACK = ("none", "preference", "rating", "both")


@dataclass(frozen=True)
class EnvConfig:
    """Which task and physics backend.

    Attributes:
        env_id: Gymnasium id (HalfCheetah-v5, Hopper-v4, ...), alias, or probe/... id.
        backend: physics backend: auto (C MuJoCo on CPU, MJX on accelerators), mjx, mujoco.
        terminate_when_unhealthy: end episodes when the robot is unhealthy (reference: False).
        fidelity: MJX solver settings: gymnasium (exact) or fast (fewer iterations).
    """

    env_id: str = "HalfCheetah-v5"
    backend: str = "auto"
    terminate_when_unhealthy: bool = False
    fidelity: str = "gymnasium"

    def validate(self):
        from active_rlhf_jax.envs import BACKENDS, known_ids

        if self.env_id not in known_ids():
            raise ConfigError("env_id", f"unknown environment {self.env_id!r}")
        check_choice("backend", self.backend, BACKENDS)
        check_choice("fidelity", self.fidelity, ("gymnasium", "fast"))

    def options(self) -> dict:
        if self.env_id.startswith("probe/"):
            return {}
        options = {"fidelity": self.fidelity}
        if self.terminate_when_unhealthy:  # tasks without a health check reject the option
            options["terminate_when_unhealthy"] = True
        return options


@dataclass(frozen=True)
class RunConfig:
    """The RLHF schedule (seed_spec §8) and the pipeline's fixed sizes.

    Attributes:
        feedback: which feedback trains the reward: none (ground-truth PPO), preference, rating, both.
        total_ppo_timesteps: nominal PPO env steps of the run (TOTAL_PPO_TIMESTEPS).
        ppo_timesteps_per_iteration: nominal PPO steps per RLHF iteration (20000); whole rollouts are run, so the real count is rounded up to a multiple of the rollout size.
        warmup_timesteps: PPO steps on the true reward before the loop (INITIAL_POLICY_TS), rounded up to whole rollouts.
        initial_collection_timesteps: env steps collected with the warm-up policy's PPO rollouts to fill the initial pool (logged apart from env_steps); unused when initial_collection_episodes > 0.
        initial_collection_episodes: 0 (default) fills the initial pool from PPO rollouts; E > 0 instead runs E fresh whole episodes of the warm-up policy (the reference's NUM_EPISODES_TO_COLLECT_INITIAL = 200, seed_spec §8.2) and cuts the initial segments from those.
        budget: total labels of both modalities (TOTAL_TARGET_PAIRS); every label counts, validation ones included.
        initial_fraction: fraction of the budget bought at random before the loop (INITIAL_COLLECTION_FRACTION).
        segment_length: clip length L in env steps (SEGMENT_LEN).
        initial_segments: clips cut from the initial collection (1000).
        segments_per_iteration: clips harvested each iteration (200), from the PPO rollouts or, with collection_episodes_per_iteration, from the separate episodes.
        collection_episodes_per_iteration: 0 (default) harvests each iteration's clips from its PPO rollouts; E > 0 instead runs E fresh episodes of the current stochastic policy per iteration (the reference's 200, NUM_EPISODES_TO_COLLECT_PER_UPDATE) and harvests from those; their env steps are logged apart as collection_steps, and they neither update PPO nor its observation normaliser.
        pool_capacity: clip pool size (FIFO ring buffer); 0 sizes it to hold every clip of the run, initial_segments + segments_per_iteration * iterations (``Config.pool_slots``), so nothing is ever overwritten and the pool only grows, as the reference's (51,000 slots for HalfCheetah: the bound our fixed shapes need).
        iterations_per_chunk: RLHF iterations per jitted call; the host logs and checkpoints between chunks.
        eval_episodes: deterministic episodes per seed in the final evaluation.
        reward_norm_window: sliding-window z-scoring of the learned reward over this many steps (0 = off; the reference's option used 5000).
    """

    feedback: str = "both"
    total_ppo_timesteps: int = 5_000_000
    ppo_timesteps_per_iteration: int = 20_000
    warmup_timesteps: int = 1
    initial_collection_timesteps: int = 20_480
    initial_collection_episodes: int = 0
    budget: int = 750
    initial_fraction: float = 0.1
    segment_length: int = 40
    initial_segments: int = 1000
    segments_per_iteration: int = 200
    collection_episodes_per_iteration: int = 0
    pool_capacity: int = 4096
    iterations_per_chunk: int = 5
    eval_episodes: int = 10
    reward_norm_window: int = 0

    def validate(self):
        check_choice("feedback", self.feedback, FEEDBACK)
        for name in (
            "total_ppo_timesteps",
            "ppo_timesteps_per_iteration",
            "warmup_timesteps",
            "initial_collection_timesteps",
            "segment_length",
            "initial_segments",
            "segments_per_iteration",
            "iterations_per_chunk",
            "eval_episodes",
        ):
            check_positive_int(name, getattr(self, name))
        check_nonnegative_int("budget", self.budget)
        check_nonnegative_int("reward_norm_window", self.reward_norm_window)
        check_nonnegative_int("pool_capacity", self.pool_capacity)
        check_nonnegative_int("initial_collection_episodes", self.initial_collection_episodes)
        check_nonnegative_int(
            "collection_episodes_per_iteration", self.collection_episodes_per_iteration
        )
        check_in_range("initial_fraction", self.initial_fraction, 0.0, 1.0)
        if self.feedback != "none" and self.budget <= 0:
            raise ConfigError("budget", f"must be positive with feedback={self.feedback!r}")
        if self.total_ppo_timesteps < self.ppo_timesteps_per_iteration:
            raise ConfigError("total_ppo_timesteps", "must be at least ppo_timesteps_per_iteration")


@dataclass(frozen=True)
class Config:
    """A whole experiment. ``seeds`` seeds run in one vmapped call, from ``seed`` upward.

    Attributes:
        name: the run's name (the progress bar's label; presets set it).
        seed: first seed; seed i of the run uses seed + i.
        seeds: seeds run side by side in one vmapped call (``--seeds``).
    """

    name: str = "default"
    seed: int = 0
    seeds: int = 1
    env: EnvConfig = field(default_factory=EnvConfig)
    run: RunConfig = field(default_factory=RunConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    reward: RewardModelConfig = field(default_factory=RewardModelConfig)
    # Exact teachers by default; the ``noisy`` preset modifier adds noise.
    teacher: TeacherConfig = field(default_factory=lambda: TeacherConfig(rating_noise_std=0.0))
    acquisition: AcquisitionConfig = field(default_factory=AcquisitionConfig)
    compat: CompatConfig = field(default_factory=CompatConfig)

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
    def warmup_cycles(self) -> int:
        return math.ceil(self.run.warmup_timesteps / self.rollout_steps)

    @property
    def collection_cycles(self) -> int:
        return math.ceil(self.run.initial_collection_timesteps / self.rollout_steps)

    @property
    def initial_labels(self) -> tuple[int, int]:
        return initial_label_counts(self.run.budget, self.run.initial_fraction, self.run.feedback)

    @property
    def pool_slots(self) -> int:
        """Clip pool slots: ``run.pool_capacity``, or (0) every clip the run harvests."""
        if self.run.pool_capacity > 0:
            return self.run.pool_capacity
        return self.run.initial_segments + self.run.segments_per_iteration * self.num_iterations

    def query_split(self):
        """``n -> (n_pref, n_eval)`` where the config alone fixes it, else None (scores)."""
        acq = self.acquisition
        if self.run.feedback == "preference":
            return lambda n: (n, 0)
        if self.run.feedback == "rating":
            return lambda n: (0, n)
        if acq.allocation == "fixed":
            return lambda n: fixed_split(n, acq.pref_fraction, acq.min_pref)
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
        used0 = charged_labels(n_p0, n_e0, True, True)
        split = self.query_split()
        if split is None:
            return used0, (lambda n: n - n // 5)
        return used0, (lambda n: charged_labels(*split(n), True, True))

    @property
    def max_queries(self) -> int:
        """Static per-iteration query slots: the largest n of the pacing that runs."""
        used0, charge = self.budget_charging()
        if charge is None:
            return max(1, self.run.budget)
        return max_queries_per_iteration(self.num_iterations, self.run.budget, used0, charge)

    @property
    def num_chunks(self) -> int:
        return math.ceil(self.num_iterations / self.run.iterations_per_chunk)

    def validate(self) -> "Config":
        """Check every field; raises ConfigError naming it. Returns self."""
        check_positive_int("seeds", self.seeds)
        check_nonnegative_int("seed", self.seed)
        for name in ("env", "run", "ppo", "reward", "teacher", "acquisition", "compat"):
            sub = getattr(self, name)
            if hasattr(sub, "validate"):
                prefix_errors(name, sub.validate)
        from active_rlhf_jax.compat import check_compat

        check_compat(self.compat, self.reward.rating_likelihood, self.teacher.min_gap)
        prefix_errors("acquisition", lambda: check_information_units(
            self.acquisition.method, self.acquisition.allocation, self.run.feedback == "both"))
        if tuple(self.reward.rating_range) != tuple(self.teacher.rating_range):
            raise ConfigError(
                "reward.rating_range",
                f"{self.reward.rating_range} differs from teacher.rating_range "
                f"{self.teacher.rating_range}: the model must bin what the teacher bins",
            )
        if self.reward.num_bins != self.teacher.num_bins:
            raise ConfigError("reward.num_bins", "differs from teacher.num_bins")
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
        _check_posterior_spread(self)
        self._check_budget_supply()
        return self

    def _check_budget_supply(self):
        """A budget the clip pool cannot supply is an error, not a silent shortfall."""
        if self.run.feedback == "none" or self.compat.budget_counts_train_only:
            return  # nothing to spend / the pacing charges only a part of the labels
        r = self.run
        bound = max_labels_supplied(
            self.num_iterations, r.budget, self.initial_labels, r.initial_segments,
            r.segments_per_iteration, r.pool_capacity,
            (r.feedback in ("preference", "both"), r.feedback in ("rating", "both")),
            self.acquisition.selection == "disjoint", self.acquisition.exclude_labelled)
        if r.budget > bound:
            raise ConfigError(
                "run.budget",
                f"{r.budget} labels cannot be spent: the clip pool supplies at most {bound} "
                f"({r.initial_segments} initial clips, {r.segments_per_iteration} new per "
                f"iteration over {self.num_iterations - 1} acquiring iterations; a clip is "
                "paired once and rated once); lower run.budget or raise "
                "run.segments_per_iteration")


#: Acquisition scores that are functions of the posterior's spread over samples.
SPREAD_METHODS = ("bald", "variance", "entropy")


def _check_posterior_spread(cfg: "Config") -> None:
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


def replace(cfg, **changes):
    """dataclasses.replace with dotted keys: replace(cfg, **{"ppo.learning_rate": 1e-4})."""
    nested: dict[str, dict] = {}
    flat = {}
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    for head, sub in nested.items():
        if not hasattr(cfg, head):
            raise ConfigError(head, f"unknown config group for {type(cfg).__name__}")
        flat[head] = replace(getattr(cfg, head), **sub)
    names = {f.name for f in dataclasses.fields(cfg)}
    for key in flat:
        if key not in names:
            raise ConfigError(key, f"unknown field of {type(cfg).__name__}")
    return dataclasses.replace(cfg, **flat)
