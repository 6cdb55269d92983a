"""The unified pipeline end to end on the smoke preset (probe env, CPU).

One 2-seed run is shared by most tests (module fixture); a second run is interrupted after
its first chunk and resumed, and must end with exactly the same metrics.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from active_rlhf_jax.pipeline.runner import run
from active_rlhf_jax.pipeline.schedule import pacing_oracle
from configs.presets import get_preset

TIMING_FIELDS = {"sps"}
# Compiling is nearly all of these tests' time (tests/conftest.py::_compile_mode).
pytestmark = pytest.mark.fast_compile


def _rows(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in rows]


@pytest.fixture(scope="module")
def smoke_cfg():
    return get_preset("smoke").validate()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, smoke_cfg):
    import dataclasses

    cfg = dataclasses.replace(smoke_cfg, seeds=2)
    out = tmp_path_factory.mktemp("runs") / "smoke"
    summary = run(cfg, out, progress=False)
    return cfg, out, summary


def test_outputs_written(smoke_run):
    cfg, out, summary = smoke_run
    for name in ("config.json", "metrics.jsonl", "final_eval.json"):
        assert (out / name).is_file(), name
    assert (out / "policy").is_dir() and (out / "checkpoints").is_dir()
    assert sorted(p.name for p in (out / "tb").iterdir()) == ["seed_0", "seed_1"]
    rows = _rows(out)
    assert len(rows) == cfg.seeds * cfg.num_iterations
    required = {
        "seed", "iteration", "env_steps", "queries_pref", "queries_eval", "true_return",
        "learned_return", "reward_corr", "reward_corr_fresh", "reward_step_corr", "alive_value",
        "bald_pref", "bald_eval", "n_pref", "n_eval",
        "rm_train_loss", "rm_val_loss", "rm_train_acc", "rm_val_acc", "ppo_policy_loss",
        "ppo_value_loss", "ppo_entropy", "ppo_approx_kl", "sps",
    }
    assert required <= set(rows[0])
    final = json.loads((out / "final_eval.json").read_text())
    assert [s["seed"] for s in final["seeds"]] == [0, 1]
    assert all(len(s["returns"]) == cfg.run.eval_episodes for s in final["seeds"])


def test_budget_and_pacing_match_the_oracle(smoke_run):
    cfg, out, _ = smoke_run
    rows = _rows(out)
    n_p0, n_e0 = cfg.initial_labels
    expected = pacing_oracle(cfg.num_iterations, cfg.run.budget, n_p0 + n_e0)
    for seed in (0, 1):
        mine = sorted((r for r in rows if r["seed"] == seed), key=lambda r: r["iteration"])
        assert [r["n_requested"] for r in mine] == expected
        # Every requested query was asked, so labels used equal the budget exactly.
        assert [r["n_pref"] + r["n_eval"] for r in mine] == expected
        assert mine[-1]["labels_used"] == cfg.run.budget
        assert mine[-1]["queries_total"] == cfg.run.budget
        steps = [r["env_steps"] for r in mine]
        assert steps == [cfg.steps_per_iteration * (i + 1) for i in range(cfg.num_iterations)]


def test_seeds_differ_and_no_recompilation(smoke_run):
    cfg, out, summary = smoke_run
    rows = _rows(out)
    a = [r["reward_corr"] for r in rows if r["seed"] == 0]
    b = [r["reward_corr"] for r in rows if r["seed"] == 1]
    assert a != b
    # 8 iterations in 2 chunks of 4: one compiled chunk program serves both.
    assert summary["chunk_compilations"] == 1
    # Every run reports what compiling cost: the initial phase and the one chunk program.
    assert set(summary["compile_seconds"]) == {"init", "chunk_4"}
    assert all(v > 0 for v in summary["compile_seconds"].values())


# The same guarantee, resumed after each fault a kill or a bad disk leaves, is asserted by
# tests/test_reliability.py::test_resume_after_a_fault_ends_like_an_uninterrupted_run (five
# cases on the same smoke programs); this plain case (22 s) runs with -m slow (2026-12-04,
# the 10-minute budget).
@pytest.mark.slow
def test_resume_gives_identical_metrics(tmp_path, smoke_run):
    cfg, out, _ = smoke_run
    part = tmp_path / "resumed"
    res = run(cfg, part, progress=False, max_chunks=1)
    assert res == {"interrupted_at": cfg.run.iterations_per_chunk}
    assert len(_rows(part)) == cfg.seeds * cfg.run.iterations_per_chunk
    run(None, part, resume=True, progress=False)
    assert _strip(_rows(part)) == _strip(_rows(out))
    assert json.loads((part / "final_eval.json").read_text()) == json.loads(
        (out / "final_eval.json").read_text()
    )


def test_exact_teacher_labels_agree_with_true_returns(smoke_run):
    """probe/target's reward is a function of (obs, action), so the buffers' clips give
    back their true returns: every exact label must agree with them."""
    from active_rlhf_jax.pipeline.runner import seed_keys
    from active_rlhf_jax.pipeline.train import make_train
    from active_rlhf_jax.teachers import compute_discounted_return
    from benchmarks.frozen_reward import restore_final

    cfg, out, _ = smoke_run
    state, _ = restore_final(out, make_train(cfg), seed_keys(cfg))  # the runner's restore
    b = jax.device_get(state.buffers)

    def true_rew(obs, act):  # probe/target: 1 - ||clip(a) - u||^2 / 2
        return 1.0 - 0.5 * np.sum((np.clip(act, -1, 1) - obs) ** 2, axis=-1)

    n_checked = 0
    for s in range(cfg.seeds):
        v = b.pref_valid[s]
        ra = true_rew(b.pref_obs_a[s][v], b.pref_act_a[s][v]).sum(-1)
        rb = true_rew(b.pref_obs_b[s][v], b.pref_act_b[s][v]).sum(-1)
        np.testing.assert_array_equal(b.pref_label[s][v], (ra > rb).astype(np.float32))
        rv = b.rating_valid[s]
        g = np.asarray(compute_discounted_return(jnp.asarray(true_rew(b.rating_obs[s][rv], b.rating_act[s][rv])), 0.99))
        lo, hi = cfg.teacher.rating_range
        bins = np.digitize(np.clip(g, lo, hi), np.linspace(lo, hi, cfg.reward.num_bins + 1)[1:-1])
        np.testing.assert_array_equal(b.rating_value[s][rv], bins.astype(np.float32))
        n_checked += int(v.sum() + rv.sum())
    assert n_checked == cfg.seeds * cfg.run.budget


SHARDED_SCRIPT = """
import dataclasses, sys
from active_rlhf_jax.pipeline.runner import run
from configs.presets import get_preset
import jax
assert len(jax.devices()) == 2, jax.devices()
cfg = dataclasses.replace(get_preset("smoke").validate(), seeds=2)
run(cfg, sys.argv[1], progress=False, max_chunks=1)
"""


def test_seed_axis_sharded_over_two_devices_matches_unsharded(tmp_path, smoke_run):
    """Two CPU devices, one seed each (shard_map), against one device with both seeds.

    Per-device batch shapes differ (1 vs 2 seeds), so XLA may fuse differently: after one
    chunk every metric agrees to 1e-4 relative (1e-5 absolute) and the query counts exactly.
    """
    import os
    import subprocess
    import sys

    cfg, out, _ = smoke_run
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    sharded = tmp_path / "sharded"
    proc = subprocess.run([sys.executable, "-c", SHARDED_SCRIPT, str(sharded)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mine = _strip(_rows(sharded))
    ref = _strip(_rows(out))[: len(mine)]
    assert len(mine) == cfg.seeds * cfg.run.iterations_per_chunk
    for a, b in zip(mine, ref):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], float) and isinstance(b[k], float):
                assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), k
            else:
                assert a[k] == b[k], k


CELLS_SCRIPT = """
import dataclasses, sys
from pathlib import Path
from active_rlhf_jax.pipeline.runner import run_cells
from configs.presets import get_preset
import jax
assert len(jax.devices()) == 2, jax.devices()
base = dataclasses.replace(get_preset("smoke").validate(), seeds=1)
other = dataclasses.replace(base, reward=dataclasses.replace(base.reward, lr=3e-3))
dirs = [Path(sys.argv[1]) / "a", Path(sys.argv[1]) / "b"]
first = run_cells([base, other], dirs, progress=False, max_chunks=1)
assert first == [{"interrupted_at": 4}] * 2, first
done = run_cells([None, None], dirs, resume=True, progress=False)
assert [d["cells_in_program"] for d in done] == [2, 2]
# the same cells uninterrupted (the same programs, compiled in this process)
run_cells([base, other], [Path(sys.argv[1]) / "c", Path(sys.argv[1]) / "d"], progress=False)
"""


@pytest.mark.slow
def test_two_cells_sharded_over_two_devices_resume_and_match_one_device(tmp_path, smoke_run):
    """Two cells of one seed each on two CPU devices (one run per device), stopped after
    the first chunk and resumed (each cell's checkpoint read whole, joined, split over the
    devices again): every metric equals the uninterrupted run's exactly. The smoke cell's
    first chunk matches the one-device two-seed run's seed 0 within the two-device test's
    tolerance; the other cell (reward lr 3e-3) differs."""
    import os
    import subprocess
    import sys

    cfg, out, _ = smoke_run
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
    proc = subprocess.run([sys.executable, "-c", CELLS_SCRIPT, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mine = _strip(_rows(tmp_path / "a"))
    assert mine == _strip(_rows(tmp_path / "c"))
    assert _strip(_rows(tmp_path / "b")) == _strip(_rows(tmp_path / "d"))
    assert [r["iteration"] for r in mine] == list(range(1, cfg.num_iterations + 1))
    ref = [r for r in _strip(_rows(out)) if r["seed"] == 0]
    chunk = cfg.run.iterations_per_chunk
    for a, b in zip(mine[:chunk], ref[:chunk], strict=True):
        for k in a:
            if isinstance(a[k], float) and isinstance(b[k], float):
                assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), (a["iteration"], k)
            else:
                assert a[k] == b[k], k
    other = _strip(_rows(tmp_path / "b"))
    assert len(other) == cfg.num_iterations
    assert other[-1]["rm_train_loss"] != mine[-1]["rm_train_loss"]
    for d in ("a", "b"):
        assert (tmp_path / d / "final_eval.json").is_file()


@pytest.mark.slow
def test_a_sweep_of_two_cells_on_two_processes(tmp_path, smoke_run):
    """``active-rlhf sweep --coordinator ...``: two processes (one CPU device each) run the
    two cells of one program (smoke, and smoke with reward lr 3e-3, one seed each), one run
    per process. Process 0 alone writes; each cell logs every iteration once and ends
    with its final evaluation; the smoke cell's first chunk agrees with the one-process
    run's seed 0 within the two-device tolerance."""
    import os
    import socket
    import subprocess
    import sys

    cfg, out, _ = smoke_run
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "active_rlhf_jax.cli", "sweep", "--preset", "smoke",
             "--grid", "reward.lr=0.001,0.003", "--seeds", "1", "--out", str(tmp_path / "m"),
             "--no-progress", "--coordinator", f"localhost:{port}", "--num-processes", "2",
             "--process-id", str(i)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    results = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    assert "1 compiled program(s)" in results[0][1] and "program" not in results[1][1]
    assert "| reward.lr=0.001 |" in results[0][0] and "| arm |" not in results[1][0]
    cells = [tmp_path / "m" / f"reward.lr={v}" for v in ("0.001", "0.003")]
    rows = [_strip(_rows(c)) for c in cells]
    for r in rows:
        assert [x["iteration"] for x in r] == list(range(1, cfg.num_iterations + 1))
    assert rows[0][-1]["rm_train_loss"] != rows[1][-1]["rm_train_loss"]
    ref = [r for r in _strip(_rows(out)) if r["seed"] == 0]
    chunk = cfg.run.iterations_per_chunk
    for a, b in zip(rows[0][:chunk], ref[:chunk], strict=True):
        for k in a:
            if isinstance(a[k], float) and isinstance(b[k], float):
                assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), k
            else:
                assert a[k] == b[k], k
    for c in cells:
        assert (c / "final_eval.json").is_file() and (c / "policy" / "final").is_dir()


@pytest.mark.slow
def test_two_processes_with_jax_distributed_match_one(tmp_path, smoke_run):
    """``active-rlhf train --coordinator ...``: two processes on this machine (one CPU
    device each, gloo collectives) split the 2 seeds. Process 0 alone writes the run
    directory; every iteration of both seeds is logged once; the first chunk agrees with
    the one-process run within the same tolerance as the two-device test (1 seed per
    device vs 2)."""
    import os
    import socket
    import subprocess
    import sys

    cfg, out, _ = smoke_run
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    run_dir = tmp_path / "mp"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "active_rlhf_jax.cli", "train", "--preset", "smoke",
             "--seeds", "2", "--out", str(run_dir), "--no-progress",
             "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", str(i)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    results = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    summaries = [json.loads(o.strip().splitlines()[-1]) for o, _ in results]
    assert summaries[0]["mean"] == summaries[1]["mean"]  # both processes see all seeds
    mine, ref = _strip(_rows(run_dir)), _strip(_rows(out))
    assert [(r["seed"], r["iteration"]) for r in mine] == [(r["seed"], r["iteration"]) for r in ref]
    first = cfg.seeds * cfg.run.iterations_per_chunk
    for a, b in zip(mine[:first], ref[:first]):
        for k in a:
            if isinstance(a[k], float) and isinstance(b[k], float):
                assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), k
            else:
                assert a[k] == b[k], k
    assert json.loads((run_dir / "final_eval.json").read_text())["episodes"] == cfg.run.eval_episodes
    assert (run_dir / "policy" / "final").is_dir()
