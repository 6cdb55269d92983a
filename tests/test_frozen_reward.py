"""benchmarks/frozen_reward.py: PPO again on a finished run's final reward, held fixed.

One 2-seed smoke run with the pool-min shift (the Walker2d arms' setting) is shared.
"""

import dataclasses
import json
import shutil

import jax
import numpy as np
import pytest

from active_rlhf_jax.config import ConfigError, to_dict
from active_rlhf_jax.pipeline.runner import run, seed_keys
from active_rlhf_jax.pipeline.train import make_train
from benchmarks import frozen_reward
from configs.presets import get_preset

# Compiling is nearly all of these tests' time (tests/conftest.py::_compile_mode).
pytestmark = pytest.mark.fast_compile


@pytest.fixture(scope="module")
def shifted_run(tmp_path_factory):
    cfg = get_preset("smoke").validate()
    # anneal_lr: the learning-rate schedule's horizon is part of what the two-phase
    # schedule must reproduce (the two-phase tests below).
    cfg = dataclasses.replace(cfg, seeds=2,
                              run=dataclasses.replace(cfg.run, learned_reward_shift="pool-min"),
                              ppo=dataclasses.replace(cfg.ppo, anneal_lr=True))
    out = tmp_path_factory.mktemp("runs") / "smoke_shift"
    run(cfg, out, progress=False)
    return cfg, out


@pytest.fixture(scope="module")
def frozen_run(shifted_run, tmp_path_factory):
    """``benchmarks/frozen_reward.py`` on the shared run: (record, its directory)."""
    dest = tmp_path_factory.mktemp("frozen") / "frozen"
    return frozen_reward.run(shifted_run[1], dest, gym_eval_episodes=0, chunk=3), dest


def _rows(path):
    return [json.loads(x) for x in (path / "metrics.jsonl").read_text().splitlines() if x]


def test_frozen_chunk_is_the_pipelines_ppo_half_and_changes_no_reward(shifted_run):
    """With the reward the online run had in iteration 1 (the initial fit) the frozen
    iteration is exactly the online one's PPO half: iteration 1's training return is equal
    bit for bit. The reward model and the pool come out of the chunk unchanged, and by
    iteration 2 (the online run refitted its reward) the two runs differ."""
    cfg, out = shifted_run
    pipe = make_train(cfg)
    state = jax.jit(jax.vmap(pipe.init))(seed_keys(cfg))
    chunk = jax.jit(jax.vmap(frozen_reward.make_frozen_chunk(pipe, 2)))
    after, m = chunk(state)
    online = {(r["seed"], r["iteration"]): r["true_return"] for r in _rows(out)}
    for i in range(cfg.seeds):
        assert float(m["true_return"][i, 0]) == online[(cfg.seed + i, 1)]
        assert float(m["true_return"][i, 1]) != online[(cfg.seed + i, 2)]
    np.testing.assert_array_equal(np.asarray(m["iteration"]), [[1, 2]] * cfg.seeds)
    np.testing.assert_array_equal(np.asarray(m["env_steps"][:, -1]),
                                  2 * cfg.steps_per_iteration)
    for name in ("reward", "pool"):
        for a, b in zip(jax.tree_util.tree_leaves(getattr(state, name)),
                        jax.tree_util.tree_leaves(getattr(after, name))):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the PPO state did move
    moved = [not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(
        jax.tree_util.tree_leaves(state.ppo), jax.tree_util.tree_leaves(after.ppo))]
    assert any(moved)


def test_whole_run_on_the_final_reward(shifted_run, frozen_run):
    cfg, out = shifted_run
    rec, dest = frozen_run
    assert rec["checkpoint_step"] == cfg.num_iterations
    rows = _rows(dest)
    assert sorted((r["seed"], r["iteration"]) for r in rows) == [
        (s, i) for s in (cfg.seed, cfg.seed + 1) for i in range(1, cfg.num_iterations + 1)]
    # the final reward, not the initial one: iteration 1 differs from the online run's
    online = {(r["seed"], r["iteration"]): r["true_return"] for r in _rows(out)}
    assert all(r["true_return"] != online[(r["seed"], 1)] for r in rows if r["iteration"] == 1)
    assert (dest / "policy").is_dir() and json.loads((dest / "config.json").read_text())[
        "run"]["learned_reward_shift"] == "pool-min"
    with pytest.raises(ConfigError, match="out"):  # never over a finished one
        frozen_reward.run(out, dest, gym_eval_episodes=0, chunk=3)


def test_paired_difference_hand_computed():
    p = frozen_reward.paired({1: 10.0, 2: 20.0, 3: 5.0}, {1: 8.0, 2: 21.0, 4: 0.0})
    # seeds 1 and 2: d = [2, -1]; t_{0.975,1} = 12.706; half width 12.706 * 2.1213 / sqrt 2
    assert p["seeds"] == [1, 2] and p["difference"] == [2.0, -1.0] and p["ahead"] == 1
    assert p["mean"] == pytest.approx(0.5)
    assert p["ci95"][1] - 0.5 == pytest.approx(12.706205 * np.std([2, -1], ddof=1) / np.sqrt(2),
                                                rel=1e-5)


def test_refuses_unfinished_and_ground_truth_runs(shifted_run, tmp_path):
    cfg, out = shifted_run
    part = tmp_path / "part"  # the run as if stopped after its first chunk
    shutil.copytree(out, part)
    shutil.rmtree(part / "checkpoints" / str(cfg.num_iterations))
    with pytest.raises(ConfigError, match=f"iteration 4 of {cfg.num_iterations}"):
        frozen_reward.run(part, tmp_path / "o1", gym_eval_episodes=0, chunk=2)
    assert not (tmp_path / "o1").exists()  # nothing half-written
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "config.json").write_text(
        json.dumps(to_dict(get_preset("smoke+ground-truth").validate())))
    with pytest.raises(ConfigError, match="ground-truth"):
        frozen_reward.run(tmp_path / "gt", tmp_path / "o2", gym_eval_episodes=0, chunk=2)


# ---- run.retrain_fraction: the two-phase schedule as one run --------------------------


def _two_phase(cfg, fraction=0.5, factor=2):
    """``cfg`` with ``factor`` times its PPO steps and ``run.retrain_fraction``."""
    return dataclasses.replace(cfg, run=dataclasses.replace(
        cfg.run, total_ppo_timesteps=round(factor * cfg.run.total_ppo_timesteps),
        retrain_fraction=fraction))


@pytest.fixture(scope="module")
def two_phase_run(shifted_run, tmp_path_factory):
    cfg, _ = shifted_run
    two = _two_phase(cfg)
    out = tmp_path_factory.mktemp("two") / "two_phase"
    summary = run(two, out, progress=False)
    return two, out, summary


def _policy_leaves(run_dir):
    from active_rlhf_jax.policy_io import load_policy

    return [np.asarray(x) for x in jax.tree_util.tree_leaves(load_policy(run_dir).state)]


def test_two_phase_run_equals_online_half_then_frozen_reward(shifted_run, frozen_run,
                                                             two_phase_run):
    """``run.retrain_fraction=0.5`` over twice the steps is the composition the results
    used: its first half is the online run of half the steps (every metric equal), its
    second is ``frozen_reward`` on that run's final reward (training returns equal bit for
    bit, env steps counted on), and its final policy is frozen_reward's, leaf for leaf."""
    cfg, out = shifted_run
    _, dest = frozen_run
    two, two_dir, summary = two_phase_run
    n = cfg.num_iterations
    assert (two.learning_iterations, two.retrain_iterations) == (n, n)
    assert summary["chunk_compilations"] == 2  # one program per phase (4-iteration chunks)
    rows = _rows(two_dir)
    assert sorted((r["seed"], r["iteration"]) for r in rows) == [
        (s, i) for s in (cfg.seed, cfg.seed + 1) for i in range(1, 2 * n + 1)]
    online = {(r["seed"], r["iteration"]): r for r in _rows(out)}
    frozen = {(r["seed"], r["iteration"]): r for r in _rows(dest)}
    for r in rows:
        key = (r["seed"], r["iteration"])
        if r["iteration"] <= n:
            assert r["phase"] == 1
            assert {k: v for k, v in r.items() if k not in ("sps", "phase")} == {
                k: v for k, v in online[key].items() if k != "sps"}
            continue
        assert r["phase"] == 2
        f = frozen[(r["seed"], r["iteration"] - n)]
        assert (r["true_return"], r["learned_return"]) == (f["true_return"],
                                                           f["learned_return"])
        assert r["env_steps"] == n * cfg.steps_per_iteration + f["env_steps"]
        last = online[(r["seed"], n)]  # nothing asked, the reward and the pool fixed
        assert (r["n_pref"], r["n_eval"], r["labels_used"]) == (0, 0, last["labels_used"])
        assert r["reward_corr"] == last["reward_corr"] and r["rm_train_loss"] is None
        assert r["reward_corr_fresh"] is not None
    for a, b in zip(_policy_leaves(two_dir), _policy_leaves(dest), strict=True):
        np.testing.assert_array_equal(a, b)


def test_two_phase_uneven_split_equals_online_run_then_shorter_frozen_run(
        shifted_run, tmp_path):
    """A split other than half: 12 iterations at ``retrain_fraction=1/3`` are the 8-iteration
    online run, then ``frozen_reward --iterations 4`` on its final reward. The second
    phase's PPO schedule is its own (learning rate annealed over 4 iterations' updates, not
    8; ``anneal_lr`` is on), so a wrong horizon changes its training returns."""
    cfg, out = shifted_run
    n = cfg.num_iterations  # 8
    two = _two_phase(cfg, fraction=1 / 3, factor=1.5)
    assert (two.learning_iterations, two.retrain_iterations) == (n, n // 2)
    run(two, tmp_path / "two", progress=False)
    rec = frozen_reward.run(out, tmp_path / "frozen", gym_eval_episodes=0, chunk=4,
                            iterations=n // 2)
    assert rec["iterations"] == n // 2
    rows = _rows(tmp_path / "two")
    assert sorted((r["seed"], r["iteration"]) for r in rows) == [
        (s, i) for s in (cfg.seed, cfg.seed + 1) for i in range(1, n + n // 2 + 1)]
    online = {(r["seed"], r["iteration"]): r for r in _rows(out)}
    frozen = {(r["seed"], r["iteration"]): r for r in _rows(tmp_path / "frozen")}
    assert len(frozen) == 2 * (n // 2)
    for r in rows:
        key = (r["seed"], r["iteration"])
        if r["iteration"] <= n:
            assert {k: v for k, v in r.items() if k not in ("sps", "phase")} == {
                k: v for k, v in online[key].items() if k != "sps"}
            continue
        f = frozen[(r["seed"], r["iteration"] - n)]
        assert (r["true_return"], r["learned_return"]) == (f["true_return"],
                                                           f["learned_return"])
    for a, b in zip(_policy_leaves(tmp_path / "two"), _policy_leaves(tmp_path / "frozen"),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="iterations"):
        frozen_reward.run(out, tmp_path / "f0", gym_eval_episodes=0, chunk=4, iterations=0)
    with pytest.raises(ConfigError, match="^iterations: 1: an online run of that length"):
        frozen_reward.run(out, tmp_path / "f1", gym_eval_episodes=0, chunk=4, iterations=1)
    assert not (tmp_path / "f1").exists()  # refused before anything is written


def test_two_phase_resumes_across_the_phase_boundary(two_phase_run, tmp_path):
    """Stopped after the first phase's last chunk and resumed, the run puts PPO back and
    ends with exactly the uninterrupted run's metrics."""
    two, two_dir, _ = two_phase_run
    part = tmp_path / "part"
    assert run(two, part, progress=False, max_chunks=2) == {"interrupted_at": 8}
    assert {json.loads(x)["phase"] for x in (part / "metrics.jsonl").read_text().splitlines()} == {1}
    run(None, part, resume=True, progress=False)
    strip = [{k: v for k, v in r.items() if k != "sps"} for r in _rows(part)]
    assert strip == [{k: v for k, v in r.items() if k != "sps"} for r in _rows(two_dir)]


def test_two_phase_sizes_and_bad_settings():
    base = get_preset("smoke").validate()  # 8 iterations of 200 steps
    cfg = _two_phase(base, fraction=0.25, factor=3).validate()  # 24 iterations
    assert (cfg.num_iterations, cfg.learning_iterations, cfg.retrain_iterations) == (24, 18, 6)
    # the pool, the pacing's slots and the chunks are the first phase's (chunks of 4)
    assert cfg.num_chunks == 5 + 2
    assert _two_phase(base, fraction=0.5, factor=2).validate().max_queries == base.max_queries
    assert _two_phase(base, fraction=0.3125, factor=1).validate().retrain_iterations == 3  # 2.5 up
    bad = [
        (_two_phase(base, fraction=1.0), "leaves 0 of 16"),
        (_two_phase(base, fraction=-0.1), "run.retrain_fraction: must be in"),
        (_two_phase(base, fraction=0.01), "rounds to none"),
        (_two_phase(base, fraction=0.9, factor=1), "leaves 1 of 8"),
        (dataclasses.replace(base, run=dataclasses.replace(
            base.run, feedback="none", retrain_fraction=0.5)), "ground-truth"),
        (dataclasses.replace(base, run=dataclasses.replace(
            base.run, reward_norm_window=100, retrain_fraction=0.5)), "reward_norm_window"),
    ]
    for c, msg in bad:
        with pytest.raises(ConfigError, match="retrain_fraction") as e:
            c.validate()
        assert msg in str(e.value)
