"""No silently wrong experiment (docs/reliability.md): NaN guard, run-directory lock,
resumes that survive damage, and one-line errors (exit 2, nothing written) for bad input.

Two smoke runs are shared by the module: a complete one (the reference) and one stopped
after its first chunk. Every fault is made on a copy of one of them, then resumed in this
process (``cli.main``), and must end with the reference's metrics, final evaluation and
TensorBoard steps.
"""

import functools
import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from active_rlhf_jax import cli, strict_json
from active_rlhf_jax.config import ConfigError, replace
from active_rlhf_jax.pipeline import rundir, runner
from active_rlhf_jax.pipeline.runner import metrics_rows, run
from active_rlhf_jax.pipeline.schedule import max_labels_supplied
from configs.presets import get_preset

# Compiling is most of these tests' time (tests/conftest.py::_compile_mode).
pytestmark = pytest.mark.fast_compile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING = {"sps"}


def _rows(out):
    def strict(token):
        raise AssertionError(f"bare {token} in metrics.jsonl")

    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line, parse_constant=strict).items() if k not in TIMING}
            for line in lines]


def _tb_steps(out, seed, tag="true_return"):
    """Steps of every ``tag`` scalar in ``tb/seed_N`` (a minimal TFRecord reader)."""
    from tensorboardX.proto import event_pb2

    steps = []
    for f in sorted((out / "tb" / f"seed_{seed}").glob("events.out.tfevents.*")):
        data, i = f.read_bytes(), 0
        while i + 12 <= len(data):
            (n,) = struct.unpack("<Q", data[i:i + 8])
            event = event_pb2.Event.FromString(data[i + 12:i + 12 + n])
            i += 12 + n + 4
            steps += [event.step for v in event.summary.value if v.tag == tag]
    return sorted(steps)


def _main(argv, capsys):
    """cli.main in this process -> (exit status, stderr lines other than the compile-time
    notes every run prints)."""
    code = cli.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    return code, [x for x in lines if not x.startswith("active-rlhf: note: compiled ")]


# Two seeds, as tests/test_pipeline.py's smoke run: the same programs, so whichever module
# compiles them first fills the persistent cache for the other (tests/conftest.py).
SEEDS = ["--seeds", "2"]


@pytest.fixture(scope="module")
def cfg():
    return replace(get_preset("smoke"), seeds=2).validate()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cfg):
    out = tmp_path_factory.mktemp("ref") / "run"
    run(cfg, out, progress=False)
    return out


@pytest.fixture(scope="module")
def partial(tmp_path_factory, cfg):
    out = tmp_path_factory.mktemp("partial") / "run"
    assert run(cfg, out, progress=False, max_chunks=1) == {"interrupted_at": 4}
    return out


def _chunk2_lines(reference):
    return [line for line in (reference / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["iteration"] > 4]


# ---- faults a kill or a bad disk leaves, and what a resume must make of them ----------

def _torn_line(d, reference):
    with open(d / "metrics.jsonl", "a") as f:
        f.write(_chunk2_lines(reference)[0][:37])


def _killed_after_logging(d, reference):
    # chunk 2's rows are in metrics.jsonl but its checkpoint was never written
    with open(d / "metrics.jsonl", "a") as f:
        f.write("".join(line + "\n" for line in _chunk2_lines(reference)))


def _killed_during_checkpoint_write(d, reference):
    _killed_after_logging(d, reference)
    tmp = d / "checkpoints" / "8.orbax-checkpoint-tmp-1764590000"
    shutil.copytree(d / "checkpoints" / "4", tmp)
    for f in (tmp / "default").rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.unlink()
            break


def _damaged_newest_checkpoint(d, reference):
    # a complete run minus its final evaluation, whose newest checkpoint rotted
    shutil.rmtree(d)
    shutil.copytree(reference, d)
    (d / "final_eval.json").unlink()
    shutil.rmtree(d / "policy")
    for f in (d / "checkpoints" / "8" / "default").rglob("*"):
        if f.is_file():
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _stale_tensorboard(d, reference):
    # events the killed process flushed past its last checkpoint: steps 5-8 twice after
    # a plain resume, unless tb/ is rewritten from metrics.jsonl
    shutil.copytree(reference / "tb", d / "tb", dirs_exist_ok=True)


FAULTS = {
    "torn_metrics_line": (_torn_line, "dropped a torn last line"),
    "killed_after_logging": (_killed_after_logging, None),
    "killed_during_checkpoint_write": (_killed_during_checkpoint_write,
                                       "a checkpoint write that was interrupted"),
    "damaged_newest_checkpoint": (_damaged_newest_checkpoint,
                                  "checkpoint 8 cannot be restored"),
    "stale_tensorboard": (_stale_tensorboard, None),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_resume_after_a_fault_ends_like_an_uninterrupted_run(fault, tmp_path, partial,
                                                             reference, cfg, capsys):
    d = tmp_path / "run"
    shutil.copytree(partial, d)
    damage, note = FAULTS[fault]
    damage(d, reference)
    code, err = _main(["train", "--resume", str(d), "--no-progress"], capsys)
    assert code == 0, err
    if note:
        assert any(note in line for line in err), err
    assert _rows(d) == _rows(reference)
    assert json.loads((d / "final_eval.json").read_text()) == json.loads(
        (reference / "final_eval.json").read_text())
    env_steps = [r["env_steps"] for r in _rows(reference) if r["seed"] == cfg.seed]
    assert _tb_steps(d, cfg.seed) == env_steps  # none missing, none doubled
    names = sorted(p.name for p in (d / "checkpoints").iterdir())
    assert names == ["4", "8"], names
    if fault == "damaged_newest_checkpoint":
        assert len(list((d / rundir.DAMAGED_DIR).iterdir())) == 1


def test_a_metrics_line_damaged_before_the_last_is_one_line_exit_2(tmp_path, partial, capsys,
                                                                   monkeypatch):
    import orbax.checkpoint as ocp

    # The error comes after the checkpoint managers are opened and before the training
    # loop: every manager must still be closed (not left to the garbage collector).
    made, closed = [], []

    class Recording(ocp.CheckpointManager):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            made.append(self)

        def close(self):
            closed.append(self)
            super().close()

    monkeypatch.setattr(ocp, "CheckpointManager", Recording)
    d = tmp_path / "run"
    shutil.copytree(partial, d)
    lines = (d / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:20]
    (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    before = (d / "metrics.jsonl").read_text()
    code, err = _main(["train", "--resume", str(d), "--no-progress"], capsys)
    assert code == 2 and len(err) == 1
    assert "metrics.jsonl: line 2 is not a metrics row" in err[0]
    assert (d / "metrics.jsonl").read_text() == before
    assert len(made) == 2  # before and after the restore
    assert all(any(c is m for c in closed) for m in made)


# ---- NaN/Inf guard ----------------------------------------------------------------------

def _poison_second_chunk(monkeypatch):
    """Make the state NaN as chunk 2 starts, the way a diverging update would: the chunk
    program is the same one (no recompilation), only its input state is poisoned."""
    import jax
    import jax.numpy as jnp

    real = runner.seed_parallel

    def seed_parallel(fn, mesh):
        compiled = real(fn, mesh)
        if not isinstance(fn, functools.partial):  # init, guard, evaluate
            return compiled
        calls = []

        def poison(state):
            calls.append(1)
            if len(calls) == 2:
                reward = jax.tree.map(lambda x: x * jnp.nan if jnp.issubdtype(
                    x.dtype, jnp.floating) else x, state.reward)
                state = state.replace(reward=reward)
            return state

        class Chunk:
            """The runner compiles the chunk ahead (``lower(state).compile()``); the
            compiled program then gets the poisoned state on its second call."""

            def lower(self, state):
                lowered = compiled.lower(state)

                class Lowered:
                    def compile(self):
                        program = lowered.compile()
                        return lambda st: program(poison(st))

                return Lowered()

        return Chunk()

    monkeypatch.setattr(runner, "seed_parallel", seed_parallel)


def test_nonfinite_state_stops_at_the_chunk_end_and_keeps_the_last_finite_checkpoint(
        tmp_path, reference, monkeypatch, capsys):
    d = tmp_path / "run"
    _poison_second_chunk(monkeypatch)
    code, err = _main(["train", "--preset", "smoke", "--out", str(d), "--no-progress"] + SEEDS,
                      capsys)
    assert code == 3 and len(err) == 1, err
    assert "non-finite ppo.actor_params at iteration 5 (seed 0)" in err[0]
    assert "the last finite checkpoint is iteration 4" in err[0]
    assert sorted(p.name for p in (d / "checkpoints").iterdir()) == ["4"]
    assert not (d / "final_eval.json").exists()
    rows, ref = _rows(d), _rows(reference)
    first = 4 * 2  # the first chunk's rows: 4 iterations x 2 seeds
    assert len(rows) == len(ref) and rows[:first] == ref[:first]
    for row, good in zip(rows[first:], ref[first:]):
        assert row["nonfinite"] == "ppo.actor_params"
        # counts stay, every value of the diverged model is null (reward_corr read 1.0)
        assert row["env_steps"] == good["env_steps"] and row["labels_used"] is not None
        for k in ("reward_corr", "true_return", "rm_train_acc", "bald_pref", "ppo_entropy"):
            assert row[k] is None, k
    # The kept checkpoint is finite and usable: a resume without the fault ends exactly
    # like the reference (the flagged rows are dropped and run again).
    monkeypatch.undo()
    code, err = _main(["train", "--resume", str(d), "--no-progress"], capsys)
    assert code == 0, err
    assert _rows(d) == _rows(reference)


@pytest.mark.parametrize("flag, where", [
    ("--ppo.learning_rate", "ppo.actor_params after the initial phase (seed 0), before iteration 1"),
    # The reward fit's losses are NaN from the start, but restoring the best epoch (weights
    # and Adam state) leaves a finite state: the guard on the fit's loss stops it instead.
    # -m slow: its own program (16-34 s of compile); the guard's naming of the fit loss is
    # covered by test_guard_names_the_first_nonfinite_quantity.
    pytest.param("--reward.lr", "reward.fit_loss at iteration 1 (seed 0)",
                 marks=pytest.mark.slow),
])
def test_diverging_learning_rates_exit_3_naming_the_quantity(tmp_path, capsys, flag, where):
    """Real divergence (no injection)."""
    d = tmp_path / "run"
    code, err = _main(["train", "--preset", "smoke", "--out", str(d), "--no-progress",
                       flag, "1e6"], capsys)
    assert code == 3 and len(err) == 1, err
    assert f"non-finite {where}" in err[0]
    assert not (d / "checkpoints").exists() or not any((d / "checkpoints").iterdir())


def test_metrics_rows_null_every_value_of_a_flagged_row():
    metrics = {
        "iteration": np.array([[1, 2]]), "env_steps": np.array([[200, 400]]),
        "reward_corr": np.array([[0.5, 1.0]], np.float32),
        "true_return": np.array([[np.inf, 3.0]], np.float32),
        "nonfinite": np.array([[0, 2]], np.int32),
    }
    cfg = get_preset("smoke")
    rows = metrics_rows(cfg, metrics, 7.0, ("ppo.actor_params", "reward.params"))
    assert rows == [
        {"seed": 0, "iteration": 1, "env_steps": 200, "reward_corr": 0.5, "true_return": None,
         "sps": 7.0, "nonfinite": None},
        {"seed": 0, "iteration": 2, "env_steps": 400, "reward_corr": None, "true_return": None,
         "sps": 7.0, "nonfinite": "reward.params"},
    ]


def test_guard_names_the_first_nonfinite_quantity():
    import jax.numpy as jnp
    from flax import struct

    from active_rlhf_jax.pipeline.guard import make_guard

    @struct.dataclass
    class S:
        ppo: object
        reward: object

    @struct.dataclass
    class P:
        actor_params: object
        critic_params: object
        opt_state: object
        obs_norm: object

    @struct.dataclass
    class R:
        params: object
        best_params: object
        opt_state: object

    ok = jnp.ones(3)
    ppo = P(ok, ok, (jnp.int32(4), ok), ok)
    guard, names = make_guard(ground_truth=False)
    assert int(guard(S(ppo, R(ok, ok, ok)))) == 0
    bad = ok.at[1].set(jnp.inf)
    assert names[int(guard(S(ppo, R(ok, ok, bad))) - 1)] == "reward.opt_state"
    state = S(ppo.replace(obs_norm=ok * jnp.nan), R(bad, ok, ok))
    assert names[int(guard(state)) - 1] == "ppo.obs_norm"  # reporting order
    # A fit whose loss is NaN while the (restored) state is finite: the loss names it.
    good = S(ppo, R(ok, ok, ok))
    losses = {"ppo_policy_loss": 0.1, "ppo_value_loss": 0.2, "rm_train_loss": jnp.nan}
    assert names[int(guard(good, losses)) - 1] == "reward.fit_loss"
    assert names[int(guard(good, dict(losses, ppo_value_loss=jnp.inf))) - 1] == "ppo.loss"
    guard_gt, names_gt = make_guard(ground_truth=True)
    assert "reward.params" not in names_gt
    assert int(guard_gt(S(ppo, None))) == 0


def test_spearman_of_nonfinite_inputs_is_nan_not_perfect():
    import jax.numpy as jnp
    from scipy import stats

    from active_rlhf_jax.pipeline.masked_stats import masked_spearman

    x = jnp.array([0.3, 0.1, 0.7, 0.2, 9.0])
    y = jnp.array([3.0, 1.0, 4.0, 2.0, -5.0])
    mask = jnp.array([True, True, True, True, False])
    expected = stats.spearmanr(np.asarray(x[:4]), np.asarray(y[:4])).statistic  # 1.0
    assert float(masked_spearman(x, y, mask)) == pytest.approx(expected)
    nan = jnp.full(5, jnp.nan)
    assert np.isnan(float(masked_spearman(nan, nan, mask)))  # was 1.0
    assert np.isnan(float(masked_spearman(x.at[0].set(jnp.inf), y, mask)))
    # a non-finite entry outside the mask does not matter
    assert float(masked_spearman(x.at[4].set(jnp.nan), y, mask)) == pytest.approx(expected)


def test_strict_json_writes_null_for_nonfinite():
    obj = {"a": float("nan"), "b": [np.float32(np.inf), np.int64(3), 1.5], "c": (np.nan,),
           "d": np.array([1.0, -np.inf]), "e": np.bool_(True)}
    assert strict_json.dumps(obj) == (
        '{"a": null, "b": [null, 3, 1.5], "c": [null], "d": [1.0, null], "e": true}')


# ---- the run-directory lock ------------------------------------------------------------

def test_a_second_writer_exits_2_naming_the_holder(tmp_path, partial, capsys):
    d = tmp_path / "run"
    shutil.copytree(partial, d)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from active_rlhf_jax.pipeline.rundir import RunLock\n"
         "RunLock(__import__('pathlib').Path(sys.argv[1])).acquire()\n"
         "print('locked', flush=True); time.sleep(120)", str(d)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = (d / "metrics.jsonl").read_text()
        code, err = _main(["train", "--resume", str(d), "--no-progress"], capsys)
        assert code == 2 and len(err) == 1, err
        assert f"is in use by another run (pid {holder.pid} on " in err[0]
        assert (d / "metrics.jsonl").read_text() == before
        fresh = tmp_path / "fresh"
        fresh.mkdir()
        rundir.RunLock(fresh).acquire()  # this process holds it: a fresh start into it
        code, err = _main(["train", "--preset", "smoke", "--out", str(fresh), "--no-progress"],
                          capsys)
        assert code == 2 and f"pid {os.getpid()} on" in err[0]
        assert sorted(p.name for p in fresh.iterdir()) == ["run.lock"]
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the killed holder's lock
    rundir.RunLock(d).acquire().release()


# ---- resume flags ------------------------------------------------------------------------

@pytest.mark.parametrize("flags, field", [
    (["--run.budget", "30"], "run.budget"),
    (["--seeds", "3"], "seeds"),
    (["--preset", "default"], "name"),
    (["--preset", "smoke", "--seeds", "2", "--reward.lr", "0.5"], "reward.lr"),
    (["--out", "OTHER"], "out"),
])
def test_resume_with_flags_that_change_the_run_exits_2(tmp_path, partial, capsys, flags, field):
    other = tmp_path / "other"
    flags = [str(other) if f == "OTHER" else f for f in flags]
    before = (partial / "metrics.jsonl").read_text()
    code, err = _main(["train", "--resume", str(partial), "--no-progress"] + flags, capsys)
    assert code == 2 and len(err) == 1 and f"error: {field}: " in err[0], err
    assert not other.exists() and (partial / "metrics.jsonl").read_text() == before


def test_resume_flags_equal_to_the_saved_ones_pass(partial):
    args = cli.build_parser().parse_args(
        ["train", "--resume", str(partial), "--preset", "smoke", "--run.budget", "60",
         "--no-progress", "--out", str(partial)] + SEEDS)
    cli._check_resume_flags(args)  # no error


# ---- one-line errors, exit 2, nothing written ------------------------------------------

def _bad_run_dirs(tmp, reference):
    """Name -> damaged copy of a run directory."""
    empty = tmp / "empty"
    empty.mkdir()
    nopolicy = tmp / "nopolicy"
    shutil.copytree(reference, nopolicy)
    for f in (nopolicy / "policy" / "final" / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":  # the arrays' data files
            f.unlink()
    badline = tmp / "badline"
    shutil.copytree(reference, badline)
    lines = (badline / "metrics.jsonl").read_text().splitlines()
    (badline / "metrics.jsonl").write_text("\n".join([lines[0], "{oops", *lines[2:]]) + "\n")
    badcfg = tmp / "badcfg"
    shutil.copytree(reference, badcfg)
    (badcfg / "config.json").write_text((reference / "config.json").read_text()[:100])
    shapes = tmp / "shapes"  # config.json edited after the run started
    shutil.copytree(reference, shapes)
    edited = json.loads((shapes / "config.json").read_text())
    edited["reward"]["hidden"] = [8, 8]
    (shapes / "config.json").write_text(json.dumps(edited))
    nometrics = tmp / "nometrics"
    shutil.copytree(reference, nometrics)
    (nometrics / "metrics.jsonl").write_text("")
    afile = tmp / "afile"
    afile.write_text("x")
    return {"missing": tmp / "missing", "empty": empty, "nopolicy": nopolicy,
            "badline": badline, "badcfg": badcfg, "shapes": shapes, "nometrics": nometrics, "afile": afile}


BAD_INPUTS = [
    # (argv with {name} for a directory of _bad_run_dirs, text the one line must hold)
    (["train", "--preset", "smoke", "--run.budget", "1000", "--out", "{missing}"],
     "run.budget: 1000 labels cannot be spent: the clip pool supplies at most 410"),
    (["train", "--preset", "smoke", "--out", "{afile}"], "out: "),
    (["train", "--preset", "smoke", "--out", "{afile}/run"], "out: "),
    (["train", "--preset", "smoke", "--out", "/proc/no-such/run"], "out: cannot create"),
    (["train", "--resume", "{missing}"], "resume: "),
    (["train", "--resume", "{empty}"], "resume: "),
    (["train", "--resume", "{badcfg}"], "config.json: is not valid JSON"),
    (["train", "--resume", "{shapes}"], "resume: no checkpoint in "),
    (["evaluate", "{missing}"], "missing"),
    (["evaluate", "{empty}"], "no saved policy"),
    (["evaluate", "{nopolicy}"], "its saved policy cannot be loaded"),
    (["evaluate", "{nopolicy}", "--episodes", "-1"], "episodes: must be positive"),
    (["evaluate", "{nopolicy}", "--episodes", "0"], "episodes: must be positive"),
    (["evaluate", "{badline}", "--backend", "gymnasium", "--episodes", "1"],
     "backend: gymnasium has no environment 'probe/target'"),
    (["compare", "{missing}"], "no such directory"),
    (["compare", "{empty}"], "no metrics.jsonl"),
    (["compare", "{nometrics}"], "has no rows yet"),
    (["compare", "{badline}"], "metrics.jsonl:2: not JSON"),
    (["compare", "{badcfg}"], "config.json: is not valid JSON"),
    (["plot", "{empty}", "--out", "{nopolicy}/figs"], "no metrics.jsonl"),
    (["plot", "{badline}", "--out", "{afile}"], "out: "),
]


def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, reference, capsys):
    dirs = _bad_run_dirs(tmp_path, reference)

    def snapshot():
        return sorted((str(p), p.stat().st_size) for p in tmp_path.rglob("*")
                      if p.name != "run.lock")

    for argv, text in BAD_INPUTS:
        argv = [a.format(**dirs) for a in argv]
        before = snapshot()
        code, err = _main(argv, capsys)
        assert code == 2 and len(err) == 1, (argv, err)
        assert err[0].startswith("active-rlhf: error: ") and text in err[0], (argv, err)
        assert snapshot() == before, argv


def test_flag_abbreviations_are_refused(capsys):
    for argv in (["train", "--run.bud", "30"], ["compare", "x", "--js"],
                 ["evaluate", "x", "--epis", "3"]):
        with pytest.raises(SystemExit) as e:
            cli.build_parser().parse_args(argv)
        assert e.value.code == 2
        assert "unrecognized arguments" in capsys.readouterr().err


def test_seeds_not_dividing_the_devices_give_a_note():
    code = ("from active_rlhf_jax.pipeline.runner import _seed_mesh\n"
            "m = _seed_mesh(3); print(None if m is None else m.devices.size)\n"
            "m = _seed_mesh(4); print(m.devices.size)")
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.stdout.split() == ["None", "2"], proc.stderr
    notes = [line for line in proc.stderr.splitlines() if "active-rlhf: note:" in line]
    assert notes == ["active-rlhf: note: 3 seeds on 2 devices: running on 1 of them "
                     "(a multiple of 2 seeds uses them all)"]


# ---- pieces of the resume repair, on made-up directories ---------------------------------

def test_recover_metrics_drops_a_torn_last_line_and_rows_past_the_checkpoint(tmp_path, capsys):
    path = tmp_path / "metrics.jsonl"
    rows = [{"seed": 0, "iteration": i, "x": i * 0.5} for i in (1, 2, 3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"seed": 0, "itera')
    rundir.recover_metrics(path, 2)
    assert [json.loads(line) for line in path.read_text().splitlines()] == rows[:2]
    assert "dropped a torn last line (18 characters)" in capsys.readouterr().err
    path.write_text(json.dumps(rows[0]) + "\n[1, 2]\n" + json.dumps(rows[1]) + "\n")
    with pytest.raises(ConfigError, match="line 2 is not a metrics row"):
        rundir.recover_metrics(path, 2)


def test_clean_checkpoints_removes_interrupted_saves_and_deletions(tmp_path, capsys):
    ck = tmp_path / "checkpoints"
    for name in ("2", "4", "6", "8.orbax-checkpoint-tmp-17"):
        (ck / name / "default").mkdir(parents=True)
    rundir.clean_checkpoints(ck, keep=2)
    assert sorted(p.name for p in ck.iterdir()) == ["4", "6"]
    err = capsys.readouterr().err
    assert "removed checkpoint 2" in err and "removed 8.orbax-checkpoint-tmp-17" in err


class _Steps:
    """A stand-in for an orbax CheckpointManager: just its step list."""

    def __init__(self, steps):
        self.steps = steps

    def all_steps(self, read=False):
        return list(self.steps)


def test_cells_restore_the_newest_step_they_all_hold_and_move_a_damaged_one(tmp_path, capsys):
    """Cells of one program saved one after another: a kill between two saves leaves cell
    0 a step ahead; the group restores the newest common step. A damaged cell checkpoint at
    that step is moved aside (that cell only) and the step before is restored."""
    outs = [tmp_path / "a", tmp_path / "b"]
    for out, steps in zip(outs, ([4, 8, 12], [4, 8])):
        for st in steps:
            (out / "checkpoints" / str(st)).mkdir(parents=True)
    managers = [_Steps([4, 8, 12]), _Steps([4, 8])]
    step, states = rundir.restore_newest(managers, lambda i, st: (i, st), outs)
    assert step == 8 and states == [(0, 8), (1, 8)]

    def restore(i, st):
        if (i, st) == (1, 8):
            raise ValueError("truncated file\nmore")
        return (i, st)

    step, states = rundir.restore_newest(managers, restore, outs)
    assert step == 4 and states == [(0, 4), (1, 4)]
    assert not (outs[1] / "checkpoints" / "8").exists() and (outs[0] / "checkpoints" / "8").is_dir()
    assert len(list((outs[1] / rundir.DAMAGED_DIR).iterdir())) == 1
    assert "checkpoint 8 cannot be restored (ValueError: truncated file)" in capsys.readouterr().err
    # then the steps past the common one go, so that they can be saved again
    rundir.drop_checkpoints_after(outs[0] / "checkpoints", 4)
    assert sorted(p.name for p in (outs[0] / "checkpoints").iterdir()) == ["4"]
    rundir.drop_checkpoints_after(outs[1] / "checkpoints", None)
    assert list((outs[1] / "checkpoints").iterdir()) == []
    # no common step, none tried: a fresh start; every step failing: one-line ConfigError
    assert rundir.restore_newest([_Steps([4]), _Steps([8])], restore, outs) == (None, None)
    with pytest.raises(ConfigError, match=r"^resume: no checkpoint in .*/b/checkpoints"):
        rundir.restore_newest([_Steps([8]), _Steps([8])], restore, outs, move=False)


def test_zero_size_leaves_survive_a_checkpoint_round_trip(tmp_path):
    """MJX's ``Data.act`` is [seeds, envs, 0] on models without activations, and orbax
    refuses to save arrays of size zero: the runner saves ``savable(state)`` and restores
    ``unsaved_filled(restore(savable(abstract)), abstract)``, which must give back every
    leaf bit for bit and the empty ones with their shape and dtype."""
    import jax
    import jax.numpy as jnp
    import orbax.checkpoint as ocp

    state = {"act": jnp.zeros((2, 3, 0), jnp.float32), "qpos": jnp.arange(6.0).reshape(2, 3),
             "inner": (jnp.zeros((0,), jnp.int32), jnp.array([7, -1], jnp.int32))}
    assert rundir.savable(state)["act"] is None and rundir.savable(state)["inner"][0] is None
    mngr = ocp.CheckpointManager(tmp_path / "checkpoints",
                                 options=ocp.CheckpointManagerOptions(create=True))
    try:
        mngr.save(4, args=ocp.args.StandardSave(rundir.savable(state)))
        mngr.wait_until_finished()
        abstract = jax.eval_shape(lambda: state)
        got = rundir.unsaved_filled(
            mngr.restore(4, args=ocp.args.StandardRestore(rundir.savable(abstract))), abstract)
    finally:
        mngr.close()
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(state)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(state)):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_checkpoints_from_before_the_restart_field_still_restore(tmp_path):
    """``PipelineState.restart`` (the two-phase schedule's) came after runs were
    checkpointed. A state without it saves as those did, so an old checkpoint (here one
    written from a state class with every field but ``restart``, as the old code wrote it)
    restores into today's state, and a state with it round-trips whole."""
    import dataclasses

    import jax
    import jax.numpy as jnp
    import orbax.checkpoint as ocp
    from flax import struct

    from active_rlhf_jax.pipeline.state import PipelineState

    names = [f.name for f in dataclasses.fields(PipelineState) if f.name != "restart"]
    Old = struct.dataclass(type("Old", (), {"__annotations__": {n: object for n in names}}))
    values = {n: jnp.full((2,), float(i)) for i, n in enumerate(names)}
    new = PipelineState(**values, restart=(jnp.ones((2, 3)), jnp.zeros((2,), jnp.int32)))
    assert set(rundir.savable(PipelineState(**values))) == set(names)  # a dict, no restart
    for step, saved in ((1, Old(**values)), (2, new)):
        mngr = ocp.CheckpointManager(tmp_path / "checkpoints",
                                     options=ocp.CheckpointManagerOptions(create=True))
        try:
            mngr.save(step, args=ocp.args.StandardSave(rundir.savable(saved)))
            mngr.wait_until_finished()
            like = PipelineState(**values) if step == 1 else new
            abstract = jax.eval_shape(lambda like=like: like)
            got = rundir.unsaved_filled(mngr.restore(
                step, args=ocp.args.StandardRestore(rundir.savable(abstract))), abstract)
        finally:
            mngr.close()
        assert isinstance(got, PipelineState)
        assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(like)
        for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(like)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert got.restart is not None and PipelineState(**values).restart is None


@pytest.mark.slow
def test_an_mjx_run_checkpoints_and_resumes_like_an_uninterrupted_one(tmp_path):
    """The MJX env state holds a zero-size leaf (``Data.act`` of HalfCheetah): before the
    fix every MJX run stopped at its first checkpoint. Two envs x 64 steps, two chunks of
    one iteration; stopped after the first and resumed, it ends with the metrics and final
    evaluation of the run done in one go (about 2 minutes of MJX compiles on a 2-core CPU)."""
    cfg = get_preset("cheetah+ground-truth")
    cfg = replace(cfg, **{"env.backend": "mjx", "env.fidelity": "ls8", "seeds": 1,
                          "ppo.num_envs": 2, "ppo.num_steps": 64, "ppo.minibatch_size": 64,
                          "ppo.update_epochs": 1, "run.ppo_timesteps_per_iteration": 128,
                          "run.total_ppo_timesteps": 256, "run.iterations_per_chunk": 1,
                          "run.eval_episodes": 1})
    whole, part = tmp_path / "whole", tmp_path / "part"
    run(cfg, whole, progress=False)
    assert run(cfg, part, progress=False, max_chunks=1) == {"interrupted_at": 1}
    run(None, part, resume=True, progress=False)
    assert _rows(part) == _rows(whole) and len(_rows(whole)) == 2
    assert json.loads((part / "final_eval.json").read_text()) == json.loads(
        (whole / "final_eval.json").read_text())


def test_budget_supply_bound():
    """Smoke: 40 initial clips, 20 new per iteration, 8 iterations (7 acquire), disjoint
    pairs. Budget 1000 buys an initial 200 (100 pairs use all 40 clips, 100 ratings too),
    then each iteration can ask 20 // 2 = 10 pairs and 20 ratings: 200 + 7 * 30 = 410,
    the count a real run spent (issue 18)."""
    args = dict(num_iterations=8, initial_segments=40, segments_per_iteration=20,
                pool_capacity=128, modalities=(True, True))
    assert max_labels_supplied(budget=1000, initial=(100, 100), disjoint=True,
                               exclusive=True, **args) == 410
    # Budget 60 (the preset): 12 initial + pacing 7 * 48/7 -> every label available.
    assert max_labels_supplied(budget=60, initial=(6, 6), disjoint=True,
                               exclusive=True, **args) == 60
    # Top-k pairs may reuse a clip within an iteration (20 clips: 190 pairs): the pacing
    # (114 or 115 a time, slot cap 115) gets the whole budget.
    assert max_labels_supplied(budget=1000, initial=(100, 100), disjoint=False,
                               exclusive=True, **args) == 1000
    # Without exclusion nothing is used up, but iteration 1 sees only 60 clips: 30 disjoint
    # pairs + 60 ratings = 90 < 114 asked; then the slot cap 115 binds 6 times:
    # 200 + 90 + 6 * 115 = 980.
    assert max_labels_supplied(budget=1000, initial=(100, 100), disjoint=True,
                               exclusive=False, **args) == 980
    # Ratings only: 7 iterations of 20 fresh clips after an initial 200 ratings.
    assert max_labels_supplied(budget=1000, initial=(0, 200), disjoint=True, exclusive=True,
                               **dict(args, modalities=(False, True))) == 200 + 7 * 20


@pytest.mark.slow
def test_kill_9_during_a_checkpoint_write_then_resume(tmp_path, reference, capsys):
    """A real SIGKILL (no finally blocks, no flushes) while checkpoint 8 is being renamed
    into place; the resume must end like the reference."""
    d = tmp_path / "run"
    script = (
        "import os, signal, sys\n"
        "from orbax.checkpoint._src.path import atomicity\n"
        "real = atomicity.AtomicRenameTemporaryPath.finalize\n"
        "async def finalize(self, *a, **k):\n"
        "    if self._final_path.name == '8':\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return await real(self, *a, **k)\n"
        "atomicity.AtomicRenameTemporaryPath.finalize = finalize\n"
        "from active_rlhf_jax.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run(
        [sys.executable, "-c", script, "train", "--preset", "smoke", "--out", str(d),
         "--no-progress"] + SEEDS, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True,
        text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert any(".orbax-checkpoint-tmp" in p.name for p in (d / "checkpoints").iterdir())
    code, err = _main(["train", "--resume", str(d), "--no-progress"], capsys)
    assert code == 0, err
    assert _rows(d) == _rows(reference)
    assert _tb_steps(d, 0) == [r["env_steps"] for r in _rows(reference) if r["seed"] == 0]
