"""Traced hyperparameters (pipeline/hyper.py): runs that differ only in them are one vmap
of one compiled program, and each equals the same run compiled on its own."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.batches import Queries
from active_rlhf_jax.config import ConfigError, replace
from active_rlhf_jax.config.acquisition import METHODS
from active_rlhf_jax.config.run import FEEDBACK
from active_rlhf_jax.pipeline.hyper import (
    PIPELINE_TRACED,
    apply_hyper,
    hyper_values,
    program_choices,
    program_key,
    stack_hyper,
    static_differences,
)
from configs.presets import get_preset

pytestmark = pytest.mark.fast_compile

# smoke's teacher is exact and it acquires at random; the other cell's makes mistakes, has
# an equal band and rates with Gaussian noise of one bin, its reward model learns at
# another rate, decay and rating weight, and it acquires by BALD with the information split;
# its PPO has another step size and an entropy bonus, and its reward model another dropout.
NOISY = {"teacher.mistake_prob": 0.2, "teacher.rating_noise_std": 1.0, "ppo.ent_coef": 0.01,
         "ppo.learning_rate": 1e-3,
         "teacher.equal_threshold": 0.05, "reward.lr": 3e-3, "reward.weight_decay": 1e-4,
         "reward.rating_weight": 0.5, "reward.dropout": 0.3, "acquisition.method": "bald",
         "acquisition.allocation": "information"}


def _cells():
    # both modalities, split 50/50 (allocation information would need BALD in every cell)
    base = replace(get_preset("smoke"), **{"acquisition.method": "random",
                                           "acquisition.allocation": "fixed"}).validate()
    return base, replace(base, **NOISY).validate()


def test_stack_hyper_orders_cells_then_seeds_and_names_a_field_that_cannot_vary():
    a, b = _cells()
    h = stack_hyper([a, b], repeat=2)
    assert set(h) == set(PIPELINE_TRACED) | {"acquisition.method", "acquisition.allocation",
                                             "run.feedback", "reward.dropout"}
    assert h["reward.dropout"].tolist() == pytest.approx([0.4, 0.4, 0.3, 0.3])
    assert h["acquisition.method"].tolist() == [METHODS.index(a.acquisition.method)] * 2 + [
        METHODS.index("bald")] * 2 and h["acquisition.method"].dtype == jnp.int32
    assert program_choices([a, b]) == {"acquisition.method": ("bald", "random"),
                                       "acquisition.allocation": ("information", "fixed"),
                                       "reward.dropout": ()}
    assert program_choices([a, a]) == {} and program_key(a) == program_key(b)
    assert static_differences([a, replace(b, **{"run.budget": 50})]) == [
        "<initial labels>", "<query slots>", "run.budget"]
    # the reference's split (pref_fraction 0.5 and 0.9) charges labels alike
    ref = get_preset("smoke+reference")
    assert stack_hyper([ref, replace(ref, **{"acquisition.pref_fraction": 0.9})])[
        "acquisition.pref_fraction"].tolist() == pytest.approx([0.5, 0.9])
    assert h["teacher.mistake_prob"].tolist() == pytest.approx([0.0, 0.0, 0.2, 0.2])
    assert h["teacher.rating_noise_std"].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert float(hyper_values(b)["teacher.equal_threshold"]) == pytest.approx(0.05)
    with pytest.raises(ConfigError, match=r"^run.budget: differs .* it is static$"):
        stack_hyper([a, replace(b, **{"run.budget": 50})])
    with pytest.raises(ConfigError, match=r"^ppo.gamma: .*traced, but not yet read"):
        stack_hyper([a, replace(a, **{"ppo.gamma": 0.9})])
    assert stack_hyper([a, replace(a, **{"ppo.learning_rate": 0.01})])[
        "ppo.learning_rate"].tolist() == pytest.approx([a.ppo.learning_rate, 0.01])
    assert h["reward.lr"].tolist() == pytest.approx([1e-3, 1e-3, 3e-3, 3e-3])


def test_apply_hyper_sets_the_sections_fields():
    a, _ = _cells()
    t = apply_hyper(a.teacher, {"teacher.beta": 2.5, "reward.lr": 9.0}, "teacher")
    assert t.beta == 2.5 and t.rating_range == a.teacher.rating_range


def test_the_teacher_stage_reads_the_hyper_it_is_given():
    """The feedback stage's teacher with the state's hyper, eagerly (no pipeline compile):
    the exact cell's values give the compiled-in labels bitwise, the noisy cell's flip
    preferences and move ratings (by whole bins)."""
    from active_rlhf_jax.envs import make
    from active_rlhf_jax.pipeline.feedback import make_feedback_stages
    from active_rlhf_jax.pipeline.pool import ClipPool

    a, b = _cells()
    env = make(a.env.env_id)
    fb = make_feedback_stages(a, env)
    L = a.run.segment_length
    pool = ClipPool.create(40, L, env.observation_size, env.action_size, jnp.float32)
    rew = jax.random.normal(jax.random.PRNGKey(1), (40, L))
    pool = pool.replace(rew=rew, valid=jnp.ones(40, bool))
    idx = jnp.arange(20)
    q = Queries(pair_idx=jnp.stack([idx, idx + 20], 1), pair_mask=jnp.ones(20, bool),
                clip_idx=idx, clip_mask=jnp.ones(20, bool))
    key = jax.random.PRNGKey(2)
    p0, r0 = fb.label(key, key, pool, q, 0, hyper_values(a))
    p_def, r_def = fb.label(key, key, pool, q, 0)
    np.testing.assert_array_equal(p0.label, p_def.label)
    np.testing.assert_array_equal(r0.rating, r_def.rating)
    p1, r1 = fb.label(key, key, pool, q, 0, hyper_values(b))
    assert 0 < int(jnp.sum(p1.label != p0.label)) < 20  # mistakes / equal band
    assert bool(jnp.all(r1.rating == jnp.round(r1.rating)))
    assert int(jnp.sum(r1.rating != r0.rating)) > 0  # sigma 1 vs 0


@pytest.mark.slow
def test_two_cells_by_two_seeds_in_one_call_equal_each_cell_alone():
    """Cells ``smoke`` with random acquisition and a fixed split (exact teacher) and the same with a noisy teacher
    (mistakes 0.2, equal band 0.05, rating noise of one bin), another reward-model lr
    (3e-3), weight decay (1e-4) and rating weight (0.5), BALD and the information split,
    PPO step size 1e-3 and entropy bonus 0.01, reward-model dropout 0.3 (0.4), 2 seeds each, as one jit(vmap(train)) over 4 runs of one program (method and split
    chosen per run), against each
    cell's own program (its values compiled in) on the same keys."""
    from active_rlhf_jax.pipeline.train import make_train

    a, b = _cells()
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    grid = make_train(a, program_choices([a, b]))
    hyper = stack_hyper([a, b], repeat=2)
    _, m_grid, (ret_grid, _) = jax.jit(jax.vmap(grid.train))(jnp.concatenate([keys, keys]), hyper)
    for c, cfg in enumerate((a, b)):
        _, m, (ret, _) = jax.jit(jax.vmap(make_train(cfg).train))(keys)
        sl = slice(2 * c, 2 * c + 2)
        for name in m:
            np.testing.assert_allclose(np.asarray(m_grid[name][sl]), np.asarray(m[name]),
                                       rtol=1e-5, atol=1e-6, err_msg=f"cell {c}: {name}")
        np.testing.assert_allclose(np.asarray(ret_grid[sl]), np.asarray(ret), rtol=1e-5)
    # the two cells did differ
    assert not np.array_equal(np.asarray(m_grid["rm_train_loss"][:2]),
                              np.asarray(m_grid["rm_train_loss"][2:]))


def test_a_method_choice_gives_each_methods_own_scores():
    """A Choice between random and BALD (eager, small arrays): the chosen method's pair
    and clip scores, bitwise, and BALD (logged whatever the method) unchanged."""
    from active_rlhf_jax.acquisition.candidates import clip_scores, dense_pair_scores
    from active_rlhf_jax.acquisition.choice import Choice

    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
    returns = jax.random.normal(k1, (6, 12))  # [S, N]
    valid = jnp.arange(12) < 10
    bin_probs = jax.nn.softmax(jax.random.normal(k2, (6, 12, 5)), axis=-1)  # [S, N, K]
    for name in ("random", "bald"):
        choice = Choice(("bald", "random"), jnp.int32(METHODS.index(name)), METHODS)
        m_static, _, st_static = dense_pair_scores(returns, valid, k3, method=name, block_size=8)
        m_choice, _, st_choice = dense_pair_scores(returns, valid, k3, method=choice, block_size=8)
        np.testing.assert_array_equal(np.asarray(m_choice), np.asarray(m_static))
        assert float(st_choice.bald_sum) == float(st_static.bald_sum)
        kw = dict(rating_likelihood="ordinal", bin_probs=bin_probs)
        (s_static, b_static), (s_choice, b_choice) = (
            clip_scores(name, k3, **kw), clip_scores(choice, k3, **kw))
        np.testing.assert_array_equal(np.asarray(s_choice), np.asarray(s_static))
        np.testing.assert_array_equal(np.asarray(b_choice), np.asarray(b_static))
    # the two methods do rank differently
    r, b = (dense_pair_scores(returns, valid, k3, method=m, block_size=8)[0]
            for m in ("random", "bald"))
    assert not np.array_equal(np.asarray(r), np.asarray(b))


def test_an_allocation_choice_gives_each_rules_split():
    """acquire() with a Choice among three allocation rules and traced pref_fraction /
    costs equals acquire() with each rule and value compiled in (eager, small arrays)."""
    from active_rlhf_jax.acquisition import acquire
    from active_rlhf_jax.acquisition.choice import Choice
    from active_rlhf_jax.config.acquisition import ALLOCATIONS, AcquisitionConfig

    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(4), 3)
    returns = jax.random.normal(k1, (6, 16))
    bin_probs = jax.nn.softmax(2 * jax.random.normal(k2, (6, 16, 5)), axis=-1)
    valid = jnp.ones(16, bool)
    options = ("information", "fixed", "target-fraction")
    splits = set()
    for rule in options:
        static = AcquisitionConfig(allocation=rule, pref_fraction=0.25, cost_eval=2.0)
        traced = AcquisitionConfig(allocation="information",
                                   pref_fraction=jnp.float32(0.25), cost_eval=jnp.float32(2.0))
        choice = Choice(options, jnp.int32(ALLOCATIONS.index(rule)), ALLOCATIONS)
        kw = dict(bin_probs=bin_probs, n_pref_cum=3, n_eval_cum=1)
        want = acquire(static, k3, returns, valid, 6, 8, **kw)
        got = acquire(traced, k3, returns, valid, 6, 8, allocation=choice, **kw)
        for name in ("pair_idx", "pair_mask", "clip_idx", "clip_mask", "n_pref", "n_eval",
                     "a_pref", "a_eval"):
            np.testing.assert_array_equal(np.asarray(getattr(got, name)),
                                          np.asarray(getattr(want, name)), err_msg=rule + name)
        splits.add((int(want.n_pref), int(want.n_eval)))
    # fixed 0.25 of 6 -> max(2, 1) = 2 pairs; target 0.25 * 10 - 3 -> 0 pairs (round half
    # even of -0.5); information: by BALD / cost
    assert (2, 4) in splits and (0, 6) in splits and len(splits) >= 2


def test_dropout_with_a_float_rate_is_flax_dropout_and_a_traced_rate_matches_it():
    """reward.model.Dropout: at a Python float rate, bitwise nn.Dropout (same rng stream,
    broadcast masks too); at a traced rate (jit), the same masks and values within float32
    rounding of 1 - rate."""
    import flax.linen as nn

    from active_rlhf_jax.reward.model import Dropout

    x = jax.random.normal(jax.random.PRNGKey(5), (3, 4, 16))
    rngs = {"dropout": jax.random.PRNGKey(6)}
    for dims in ((), (0, 1)):
        ref = nn.Dropout(0.4, broadcast_dims=dims).apply({}, x, deterministic=False, rngs=rngs)
        mine = Dropout(0.4, broadcast_dims=dims).apply({}, x, deterministic=False, rngs=rngs)
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(ref))
        traced = jax.jit(lambda r, dims=dims: Dropout(r, broadcast_dims=dims).apply(
            {}, x, deterministic=False, rngs=rngs))(jnp.float32(0.4))
        np.testing.assert_array_equal(np.asarray(traced) == 0, np.asarray(ref) == 0)
        np.testing.assert_allclose(np.asarray(traced), np.asarray(ref), rtol=1e-6)
        assert 0.2 < float(jnp.mean(ref == 0)) < 0.6
    np.testing.assert_array_equal(Dropout(0.0).apply({}, x, deterministic=False, rngs=rngs), x)


KINDS = ("preference", "rating", "both")


def _kind_cells():
    """smoke with random acquisition and a fixed 50/50 split, one cell per feedback kind."""
    base = replace(get_preset("smoke"), **{"acquisition.method": "random",
                                           "acquisition.allocation": "fixed"})
    return [replace(base, **{"run.feedback": k}).validate() for k in KINDS]


def test_the_feedback_kinds_share_a_program_and_ground_truth_does_not():
    cells = _kind_cells()
    assert len({program_key(c) for c in cells}) == 1
    assert program_choices(cells) == {"run.feedback": KINDS}
    assert program_choices(cells[:1] * 2) == {}
    assert stack_hyper(cells, repeat=2)["run.feedback"].tolist() == [
        FEEDBACK.index(k) for k in KINDS for _ in range(2)]
    truth = replace(cells[0], **{"run.feedback": "none"}).validate()
    with pytest.raises(ConfigError, match=r"^run.feedback: none \(ground truth"):
        stack_hyper([cells[0], truth])
    assert "run.feedback" in static_differences([cells[0], truth])


def test_a_feedback_choice_asks_what_each_kind_asks_alone():
    """acquire() with a Choice among the three kinds (a config asking both) equals
    acquire() with each kind's own effective config (eager, small arrays): a preference
    run n pairs, a rating run n clips, a run of both kinds the fixed rule's 3 + 3."""
    from active_rlhf_jax.acquisition import acquire
    from active_rlhf_jax.acquisition.choice import Choice
    from active_rlhf_jax.config.acquisition import EffectiveAcquisition

    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(4), 3)
    returns = jax.random.normal(k1, (6, 16))
    bin_probs = jax.nn.softmax(2 * jax.random.normal(k2, (6, 16, 5)), axis=-1)
    valid = jnp.ones(16, bool)
    want_split = {"preference": (6, 0), "rating": (0, 6), "both": (3, 3)}
    for kind in KINDS:
        alone = EffectiveAcquisition(
            allocation="fixed", pref_fraction=0.5,
            rating_likelihood="none" if kind == "preference" else "ordinal",
            pairs=kind != "rating")
        shared = EffectiveAcquisition(allocation="fixed", pref_fraction=0.5)
        for kinds in (KINDS, tuple(k for k in KINDS if k != "both") if kind != "both" else KINDS):
            choice = Choice(kinds, jnp.int32(FEEDBACK.index(kind)), FEEDBACK)
            want = acquire(alone, k3, returns, valid, 6, 8, bin_probs=bin_probs)
            got = acquire(shared, k3, returns, valid, 6, 8, bin_probs=bin_probs,
                          feedback=choice)
            for name in ("pair_idx", "pair_mask", "clip_idx", "clip_mask", "n_pref",
                         "n_eval", "a_pref", "a_eval", "bald_pref_mean"):
                np.testing.assert_array_equal(np.asarray(getattr(got, name)),
                                              np.asarray(getattr(want, name)),
                                              err_msg=f"{kind} {kinds} {name}")
        assert (int(want.n_pref), int(want.n_eval)) == want_split[kind]
    with pytest.raises(ValueError, match="both modalities"):
        acquire(EffectiveAcquisition(pairs=False), k3, returns, valid, 6, 8,
                bin_probs=bin_probs, feedback=choice)


def test_a_feedback_choice_asks_each_kinds_initial_batch():
    """The initial random batch of a program shared by the three kinds (eager, a filled
    pool): each run's first slots equal its kind's own batch, the extra slots are masked."""
    from active_rlhf_jax.envs import make
    from active_rlhf_jax.pipeline.feedback import make_feedback_stages
    from active_rlhf_jax.pipeline.pool import ClipPool

    cells = _kind_cells()
    env = make(cells[0].env.env_id)
    L = cells[0].run.segment_length
    pool = ClipPool.create(30, L, env.observation_size, env.action_size, jnp.float32)
    pool = pool.replace(valid=jnp.arange(30) < 25)
    shared = make_feedback_stages(cells[0], env, program_choices(cells))
    keys = jax.random.split(jax.random.PRNGKey(8), 3)
    for cfg in cells:
        n_p0, n_e0 = cfg.initial_labels
        want = make_feedback_stages(cfg, env).initial_queries(*keys, pool)
        got = shared.initial_queries(*keys, pool, hyper_values(cfg))
        k = want.pair_mask.shape[0]
        assert int(jnp.sum(got.pair_mask)) == n_p0 and int(jnp.sum(got.clip_mask)) == n_e0
        assert not bool(jnp.any(got.pair_mask[k:] | got.clip_mask[k:]))
        for name in ("pair_idx", "pair_mask", "clip_idx", "clip_mask"):
            np.testing.assert_array_equal(np.asarray(getattr(got, name))[:k],
                                          np.asarray(getattr(want, name)),
                                          err_msg=f"{cfg.run.feedback} {name}")


@pytest.mark.slow
def test_the_three_feedback_kinds_in_one_call_equal_each_kind_alone():
    """smoke (random acquisition, fixed 50/50 split) with feedback preference, rating and
    both, 2 seeds each, as one jit(vmap(train)) of one program (the kind chosen per run)
    against each kind's own program on the same keys and as many runs: every logged
    metric and the final evaluation bitwise (a preference run's empty rating buffer
    trains as no rating buffer; the reward trainer is capacity-stable)."""
    from active_rlhf_jax.pipeline.train import make_train

    cells = _kind_cells()
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    grid = make_train(cells[0], program_choices(cells))
    hyper = stack_hyper(cells, repeat=2)
    _, m_grid, (ret_grid, _) = jax.jit(jax.vmap(grid.train))(jnp.concatenate([keys] * 3),
                                                             hyper)
    for c, cfg in enumerate(cells):
        # Each kind's own program over as many runs (its 2 seeds three times): the vmap's
        # width alone moves a program's float32 results (a preference run over 2 against
        # 6 runs: reward parameters by 1.6e-6, learned return by 5e-5 after 8 iterations).
        _, m, (ret, _) = jax.jit(jax.vmap(make_train(cfg).train))(jnp.concatenate([keys] * 3))
        sl = slice(2 * c, 2 * c + 2)
        for name in m:
            np.testing.assert_array_equal(np.asarray(m_grid[name][sl]), np.asarray(m[name][:2]),
                                          err_msg=f"{cfg.run.feedback}: {name}")
        np.testing.assert_array_equal(np.asarray(ret_grid[sl]), np.asarray(ret[:2]))
    q_pref, q_eval = np.asarray(m_grid["queries_pref"])[:, -1], np.asarray(m_grid["queries_eval"])[:, -1]
    assert q_eval[:2].tolist() == [0, 0] and q_pref[2:4].tolist() == [0, 0]
    assert (q_pref[4:] > 0).all() and (q_eval[4:] > 0).all()


@pytest.mark.parametrize("n_valid", [0, 1, 3])
def test_initial_queries_never_name_an_empty_pool_slot(n_valid):
    """A warm-up whose episodes are all shorter than a clip (a Walker2d that falls within
    50 steps) leaves the initial pool (nearly) empty. Before the fix the initial batch still
    asked about empty slots (all-zero clips), the budget counted them, and the reward
    model was fitted on nothing (seen: Walker2d seed 105, 40 labels, then no clip ever
    again). Every unmasked pair joins two distinct valid clips, every unmasked rating a
    valid clip; a full pool keeps its whole batch (the recorded runs are unchanged); the
    initial fit on no labels leaves finite parameters."""
    from active_rlhf_jax.envs import make
    from active_rlhf_jax.pipeline.feedback import make_feedback_stages
    from active_rlhf_jax.pipeline.pool import ClipPool

    cfg = get_preset("smoke+unified-random").validate()
    env = make(cfg.env.env_id)
    L = cfg.run.segment_length
    fb = make_feedback_stages(cfg, env)
    pool = ClipPool.create(30, L, env.observation_size, env.action_size, jnp.float32)
    pool = pool.replace(valid=jnp.arange(30) < n_valid,
                        rew=jax.random.normal(jax.random.PRNGKey(3), (30, L)))
    q = fb.initial_queries(*jax.random.split(jax.random.PRNGKey(8), 3), pool)
    n_p0, n_e0 = cfg.initial_labels
    pi, pm = np.asarray(q.pair_idx), np.asarray(q.pair_mask)
    ci, cm = np.asarray(q.clip_idx), np.asarray(q.clip_mask)
    assert np.all(pi[pm] < n_valid) and np.all(pi[pm, 0] != pi[pm, 1])
    assert np.all(ci[cm] < n_valid)
    if n_valid == 0:
        assert not pm.any() and not cm.any()
        reward, _ = fb.fit(jax.random.PRNGKey(4), fb.init_reward(jax.random.PRNGKey(5)),
                           fb.init_buffers(), initial=True)
        assert all(bool(jnp.all(jnp.isfinite(x)))
                   for x in jax.tree_util.tree_leaves(reward.params))
    elif n_valid == 1:
        assert not pm.any() and 0 < cm.sum() <= n_e0
    else:
        assert pm.sum() == n_p0 and cm.sum() == n_e0
