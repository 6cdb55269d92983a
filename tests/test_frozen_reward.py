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
    cfg = dataclasses.replace(cfg, seeds=2,
                              run=dataclasses.replace(cfg.run, learned_reward_shift="pool-min"))
    out = tmp_path_factory.mktemp("runs") / "smoke_shift"
    run(cfg, out, progress=False)
    return cfg, out


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


def test_whole_run_on_the_final_reward(shifted_run, tmp_path):
    cfg, out = shifted_run
    dest = tmp_path / "frozen"
    rec = frozen_reward.run(out, dest, gym_eval_episodes=0, chunk=3)
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
