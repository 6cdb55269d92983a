"""Every environment preset carries the reference config's values (seed_spec §10)."""

import pytest

from configs.presets import EXPERIMENTS, MODIFIERS, get_preset

# env: (ENV_ID, TOTAL_PPO_TIMESTEPS, TOTAL_TARGET_PAIRS, SEGMENT_LEN, EVALUATIVE_RATING_RANGE,
#       INITIAL_COLLECTION_FRACTION, INITIAL_POLICY_TS, PPO_LR, REWARD_MODEL_WEIGHT_DECAY,
#       REWARD_MODEL_EPOCHS, REWARD_MODEL_PATIENCE, REWARD_MODEL_DROPOUT_PROB, MIN_GAP)
REFERENCE = {
    "cheetah": ("HalfCheetah-v5", 5_000_000, 750, 40, (-30, 120), 0.1, 1, 3e-4, 1e-3, 100, 10, 0.1, 0.25),
    "hopper": ("Hopper-v4", 3_000_000, 1000, 50, (-100, 150), 0.1, 1, 3e-4, 1e-3, 100, 10, 0.0, 0.25),
    "walker": ("Walker2d-v5", 5_000_000, 1000, 50, (-30, 350), 0.1, 1, 3e-4, 1e-3, 100, 10, 0.1, 0.25),
    "swimmer": ("Swimmer-v5", 3_000_000, 1000, 50, (0, 150), 0.4, 75_000, 2.5e-4, 1e-3, 120, 12, 0.1, 0.1),
    "reacher": ("Reacher-v4", 10_000_000, 5000, 20, (-60, -3), 0.3, 100_000, 1e-4, 1e-2, 100, 10, 0.1, 0.25),
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_env_preset_matches_reference(name):
    (env_id, total, budget, seg, rrange, frac, warm, lr, wd, epochs, patience, dropout,
     gap) = REFERENCE[name]
    # The environment's own values, under an experiment type that keeps its dropout.
    c = get_preset(f"{name}+pref-random").validate()
    assert c.env.env_id == env_id
    assert c.run.total_ppo_timesteps == total
    assert c.run.ppo_timesteps_per_iteration == 20_000
    assert c.run.budget == budget
    assert c.run.segment_length == seg
    assert c.teacher.rating_range == tuple(float(x) for x in rrange)
    assert c.run.initial_fraction == frac
    assert c.run.warmup_timesteps == warm
    assert c.ppo.learning_rate == lr
    assert c.reward.weight_decay == wd
    assert (c.reward.init_epochs, c.reward.init_patience) == (epochs, patience)
    assert (c.reward.refit_epochs, c.reward.refit_patience) == (50, 7)
    assert c.reward.dropout == dropout
    assert c.teacher.min_gap == gap
    assert (c.run.initial_segments, c.run.segments_per_iteration) == (1000, 200)
    # SB3 PPO of the reference: 2048 x 1 env, minibatch 64, 10 epochs, entropy 0.01.
    assert (c.ppo.num_envs, c.ppo.num_steps, c.ppo.minibatch_size, c.ppo.update_epochs) == (1, 2048, 64, 10)
    assert c.ppo.ent_coef == 0.01
    assert (c.reward.lr, c.reward.batch_size, c.reward.reg_weight) == (1e-3, 64, 1e-5)
    assert (c.teacher.beta, c.teacher.rating_beta, c.reward.num_bins) == (1.0, 1.0, 10)
    # Derived: SB3 runs whole rollouts, 10 x 2048 = 20,480 steps per iteration.
    assert c.steps_per_iteration == 20_480
    assert c.num_iterations == total // 20_000


def test_reference_cheetah_schedule():
    """seed_spec §8.5: cheetah: 250 iterations, 75 initial labels (37 pairs / 38 ratings)."""
    c = get_preset("cheetah+bald-fixed").validate()
    assert c.num_iterations == 250
    assert c.initial_labels == (37, 38)


@pytest.mark.parametrize("exp", sorted(EXPERIMENTS))
@pytest.mark.parametrize("mod", ["", "+noisy", "+ensemble", "+noisy+ensemble"])
def test_every_experiment_combination_validates(exp, mod):
    c = get_preset(f"hopper+{exp}{mod}").validate()
    if "bald" in exp and "ensemble" not in mod:
        assert c.reward.dropout == 0.4  # BALD_REWARD_MODEL_DROPOUT_PROB
    if "noisy" in mod:
        assert c.teacher.pref_model == "bradley_terry" and c.teacher.rating_noise_std == 1.0
    else:
        assert c.teacher.pref_model == "deterministic" and c.teacher.rating_noise_std == 0.0


def test_reference_preset_switches_on_every_compat_option():
    import dataclasses

    c = get_preset("reference").validate()
    assert all(getattr(c.compat, f.name) for f in dataclasses.fields(c.compat)
               if f.name != "biased_rating_noise")
    assert c.acquisition.pair_mode == "reference" and c.acquisition.allocation == "fixed"
    assert c.run.collection_episodes_per_iteration == 200  # NUM_EPISODES_TO_COLLECT_PER_UPDATE
    assert c.run.initial_collection_episodes == 200  # NUM_EPISODES_TO_COLLECT_INITIAL
    assert (c.run.initial_segments, c.run.segments_per_iteration) == (1000, 200)
    assert c.pool_slots == 1000 + 200 * 250 == 51_000  # the pool only grows (seed_spec §2.2)
    assert c.reward.warmup_epochs == 0  # no early-stopping warm-up in the reference
    assert c.acquisition.reference_pool_factor == 100  # 100 * n candidate pairs
    # the pacing charges training labels only; 37 + 38 initial labels, 7 + 7 to validation
    assert c.budget_charging()[0] == 61 and c.max_queries == 3
    noisy = get_preset("reference+noisy+biased-noise").validate()
    assert noisy.compat.biased_rating_noise and noisy.reward.rating_likelihood == "gaussian"


def test_modifiers_are_documented():
    from configs import presets

    for name in list(MODIFIERS) + list(EXPERIMENTS):
        assert name in presets.__doc__


def test_environment_alone_runs_bald_info_with_a_posterior_spread():
    """``hopper`` alone must not run BALD on a dropout-0 posterior (all BALD zeros):
    an environment preset without an experiment type is ``ENV+bald-info``."""
    import dataclasses

    for env in ("hopper", "cheetah"):
        alone = get_preset(env).validate()
        explicit = get_preset(f"{env}+bald-info").validate()
        assert dataclasses.replace(alone, name="x") == dataclasses.replace(explicit, name="x")
        assert alone.reward.dropout == 0.4 and alone.acquisition.method == "bald"
    # Modifiers after the environment keep working; the reference's Hopper dropout stays
    # in the random arms.
    assert get_preset("hopper+noisy").reward.dropout == 0.4
    assert get_preset("hopper+pref-random").validate().reward.dropout == 0.0


@pytest.mark.parametrize("method", ["bald", "variance", "entropy"])
def test_no_posterior_spread_is_a_config_error(method):
    from active_rlhf_jax.config import ConfigError, replace

    base = get_preset("hopper+pref-random")
    bad = replace(base, **{"acquisition.method": method})
    with pytest.raises(ConfigError, match=r"^reward\.dropout: 0 gives the mc_dropout") as e:
        bad.validate()
    assert "\n" not in str(e.value) and f"acquisition.method={method!r}" in str(e.value)
    # Any spread (dropout > 0, or an ensemble posterior), random acquisition, or no
    # feedback at all is fine.
    replace(bad, **{"reward.dropout": 0.05}).validate()
    replace(bad, **{"reward.posterior": "ensemble"}).validate()
    replace(bad, **{"run.feedback": "none"}).validate()
    base.validate()
    # The reference-adaptive split compares BALD means even under random acquisition.
    adaptive = replace(base, **{"run.feedback": "both", "acquisition.allocation": "reference-adaptive"})
    with pytest.raises(ConfigError, match="reference-adaptive"):
        adaptive.validate()


def test_gpu_preset_is_the_measured_h200_run_and_refuses_untested_tasks():
    """``cheetah+results+gpu`` is the config of the committed H200 run it quotes
    (benchmarks/results/gpu_learner_h200_2026-12-04, the learning-rate cell chosen on the
    design seeds) but for the seeds, the evaluation episodes and the name; on Hopper it is
    a one-line ConfigError naming the preset."""
    import json
    import pathlib

    from active_rlhf_jax.config import ConfigError, load_config_dict, to_dict

    record = (pathlib.Path(__file__).parent.parent / "benchmarks" / "results"
              / "gpu_learner_h200_2026-12-04" / "ground-truth+ppo.learning_rate=1e-3"
              / "config.json")
    saved = to_dict(load_config_dict(json.loads(record.read_text())))
    preset = to_dict(get_preset("cheetah+results+ground-truth+gpu").validate())
    for d in (saved, preset):
        for key in ("seeds", "seed", "name"):
            d.pop(key)
        d["run"].pop("eval_episodes")
    assert preset == saved
    assert preset["ppo"]["learning_rate"] == 1e-3 and preset["env"]["fidelity"] == "ls8"
    with pytest.raises(ConfigError, match=r"^preset: 'gpu' is measured on HalfCheetah only"):
        get_preset("hopper+results+gpu")
