"""The RLHF schedule and the pipeline's fixed sizes (``--run.*``)."""

from __future__ import annotations

from dataclasses import dataclass

from active_rlhf_jax.config.base import (
    ConfigError,
    check_bool,
    check_choice,
    check_in_range,
    check_nonnegative_int,
    check_positive_int,
    option,
)

FEEDBACK = ("none", "preference", "rating", "both")
LEARNED_REWARD_SHIFTS = ("none", "pool-min")


@dataclass(frozen=True)
class RunConfig:
    """The RLHF schedule and the pipeline's fixed sizes."""

    feedback: str = option("both", help="which feedback trains the reward: none (ground-truth "
                           "PPO), preference, rating, both.")
    total_ppo_timesteps: int = option(5_000_000, help="nominal PPO env steps of the run "
                                      "(TOTAL_PPO_TIMESTEPS).")
    ppo_timesteps_per_iteration: int = option(
        20_000, help="nominal PPO steps per RLHF iteration; whole rollouts are run, so the "
        "real count is rounded up to a multiple of the rollout size.")
    warmup_timesteps: int = option(1, help="PPO steps on the true reward before the loop "
                                   "(INITIAL_POLICY_TS), rounded up to whole rollouts.")
    initial_collection_timesteps: int = option(
        20_480, help="env steps collected with the warm-up policy's PPO rollouts to fill the "
        "initial pool (logged apart from env_steps); unused when "
        "initial_collection_episodes > 0.")
    initial_collection_episodes: int = option(
        0, help="0 fills the initial pool from PPO rollouts; E > 0 instead runs E fresh whole "
        "episodes of the warm-up policy (the reference's 200) and cuts the initial segments "
        "from those.")
    budget: int = option(750, help="total labels of both modalities (TOTAL_TARGET_PAIRS); "
                         "every label counts, validation ones included.")
    initial_fraction: float = option(0.1, help="fraction of the budget bought at random "
                                     "before the loop (INITIAL_COLLECTION_FRACTION).")
    segment_length: int = option(40, help="clip length L in env steps (SEGMENT_LEN).")
    initial_segments: int = option(1000, help="clips cut from the initial collection.")
    segments_per_iteration: int = option(
        200, help="clips harvested each iteration, from the PPO rollouts or, with "
        "collection_episodes_per_iteration, from the separate episodes.")
    collection_episodes_per_iteration: int = option(
        0, help="0 harvests each iteration's clips from its PPO rollouts; E > 0 instead runs "
        "E fresh episodes of the current stochastic policy per iteration (the reference's "
        "200) and harvests from those; their env steps are logged apart as "
        "collection_steps, and they neither update PPO nor its observation normaliser.")
    pool_capacity: int = option(
        4096, help="clip pool size (FIFO ring buffer); 0 sizes it to hold every clip of the "
        "run, initial_segments + segments_per_iteration x iterations, so nothing is ever "
        "overwritten, as the reference's pool (51,000 slots for HalfCheetah).")
    iterations_per_chunk: int = option(5, help="RLHF iterations per jitted call; the host "
                                       "logs and checkpoints between chunks.")
    eval_episodes: int = option(10, help="deterministic episodes per seed in the final "
                                "evaluation.")
    reward_norm_window: int = option(0, help="sliding-window z-scoring of the learned reward "
                                     "over this many steps (0 = off; the reference's option "
                                     "used 5000).")
    learned_reward_shift: str = option(
        "none", help="constant PPO adds to the learned reward: none, or pool-min (minus the "
        "lowest per-step learned reward over the pool's clips, recomputed each iteration, "
        "so no step the pool holds costs reward). Preferences and ratings of equal-length "
        "clips that never cross an episode end cannot identify a constant per-step reward; "
        "where episodes end when the robot falls (Hopper, Walker2d under Gymnasium's "
        "termination) that constant decides whether staying alive pays.")
    absorbing_clips: bool = option(
        False, help="let clips run past the step where their episode terminated: the steps "
        "after it are the absorbing state, true and learned reward exactly 0 (the value PPO "
        "gives after a termination), so a clip in which the robot falls is worth less than "
        "one in which it stays up, and labels on such clips teach the reward model what a "
        "step alive is worth. Off: a clip never crosses an episode end (the reference). "
        "Clips never cross a time-limit end either way.")
    retrain_fraction: float = option(
        0.0, help="the two-phase schedule: the last round(retrain_fraction x iterations) PPO "
        "iterations train PPO afresh, from the policy and envs as they stood after the "
        "warm-up, on the final reward model, held fixed; the labels are spent, and the "
        "reward model refitted, in the iterations before. 0: online throughout. Measured on "
        "Walker2d and Hopper (docs/results.md, two phases at equal steps, ten seeds): 0.5 "
        "gained over online runs in the mean on six of seven arms, and narrowed the "
        "spread between seeds of the random-query arms on Walker2d, not BALD's.")

    def validate(self) -> RunConfig:
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
        check_choice("learned_reward_shift", self.learned_reward_shift, LEARNED_REWARD_SHIFTS)
        check_bool("absorbing_clips", self.absorbing_clips)
        if self.absorbing_clips and (self.learned_reward_shift != "none"
                                     or self.reward_norm_window > 0):
            # Both move every live step's reward against the absorbing state's 0, which is
            # the one thing absorbing clips teach.
            other = ("learned_reward_shift" if self.learned_reward_shift != "none"
                     else "reward_norm_window")
            raise ConfigError("absorbing_clips", f"cannot be combined with {other} (it moves "
                              "the reward of every step alive against the absorbing state's "
                              "0, which is what absorbing clips teach); use one of them")
        if self.learned_reward_shift != "none" and self.reward_norm_window > 0:
            raise ConfigError("learned_reward_shift", f"{self.learned_reward_shift} has no "
                              "effect with reward_norm_window > 0 (z-scoring removes a "
                              "constant); use one of them")
        check_nonnegative_int("pool_capacity", self.pool_capacity)
        check_nonnegative_int("initial_collection_episodes", self.initial_collection_episodes)
        check_nonnegative_int(
            "collection_episodes_per_iteration", self.collection_episodes_per_iteration
        )
        check_in_range("initial_fraction", self.initial_fraction, 0.0, 1.0)
        check_in_range("retrain_fraction", self.retrain_fraction, 0.0, 1.0)
        if self.retrain_fraction > 0 and self.feedback == "none":
            raise ConfigError("retrain_fraction", "a ground-truth run (feedback=none) has no "
                              "learned reward to retrain on; set it in the learning arms only")
        if self.retrain_fraction > 0 and self.reward_norm_window > 0:
            raise ConfigError("retrain_fraction", "cannot be combined with reward_norm_window "
                              "> 0 (the z-scoring window's history is not the final reward's)")
        if self.feedback != "none" and self.budget <= 0:
            raise ConfigError("budget", f"must be positive with feedback={self.feedback!r}")
        if self.total_ppo_timesteps < self.ppo_timesteps_per_iteration:
            raise ConfigError("total_ppo_timesteps", "must be at least ppo_timesteps_per_iteration")
        return self
