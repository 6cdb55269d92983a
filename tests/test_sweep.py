"""``active-rlhf sweep`` and the matrix table, on the smoke preset (seconds per arm)."""

import io
import json

import numpy as np
import pytest

from active_rlhf_jax.analysis.matrix import (
    compute_matrix,
    format_matrix,
    is_matrix_dir,
    load_matrix,
    random_counterpart,
)
from active_rlhf_jax.cli import main
from active_rlhf_jax.config import ConfigError, replace
from active_rlhf_jax.sweep import (
    arm_config,
    expand_grid,
    parse_arms,
    parse_grid,
    plan_programs,
    run_sweep,
)

# Compiling is most of these tests' time (tests/conftest.py::_compile_mode).
pytestmark = pytest.mark.fast_compile

# The BALD arm is written as a grid cell (a preset part plus a field setting): it differs
# from pref-random only in its acquisition method, so the two cells run as one batch of
# one compiled program (the method chosen per run), next to ground truth's own program.
BALD = "pref-random+acquisition.method=bald"
ARMS = ["ground-truth", "pref-random", BALD]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """Each arm stopped after its first chunk, then the same sweep again: every arm resumes
    (the two cells of one program from their own checkpoints, joined)."""
    out = tmp_path_factory.mktemp("sweep") / "matrix"
    log = io.StringIO()
    first = run_sweep("smoke", ARMS, out, seeds=2, progress=False, max_chunks=1, log=log)
    assert [r["status"] for r in first] == ["new"] * 3
    plan = log.getvalue().splitlines()
    assert plan[0].startswith("sweep: 3 cells to run in 2 compiled program(s); they differ "
                              "in static fields (") and "run.feedback" in plan[0]
    assert "acquisition.method" not in plan[0]
    assert plan[1:] == ["sweep: program 1/2: ground-truth",
                        f"sweep: program 2/2: pref-random, {BALD}"]
    for arm in ARMS:
        assert not (out / arm / "final_eval.json").exists()
        assert (out / arm / "checkpoints" / "4").is_dir()  # each cell its own slice
    second = run_sweep("smoke", ARMS, out, seeds=2, progress=False, log=log)
    assert [r["status"] for r in second] == ["partial"] * 3
    assert [r["summary"]["cells_in_program"] for r in second] == [1, 2, 2]
    return out


def test_every_arm_finished_once_with_paired_seeds(sweep_dir):
    record = json.loads((sweep_dir / "sweep.json").read_text())
    assert record["arms"] == ARMS and record["seeds"] == 2 and record["preset"] == "smoke"
    for arm in ARMS:
        rows = [json.loads(x) for x in (sweep_dir / arm / "metrics.jsonl").read_text().split("\n")
                if x]
        # smoke: 8 iterations x 2 seeds, each row exactly once after the resume.
        assert sorted((r["seed"], r["iteration"]) for r in rows) == [
            (s, i) for s in (0, 1) for i in range(1, 9)
        ]
        cfg = json.loads((sweep_dir / arm / "config.json").read_text())
        assert cfg["seed"] == 0 and cfg["seeds"] == 2
    gt = json.loads((sweep_dir / "ground-truth" / "config.json").read_text())
    assert gt["run"]["feedback"] == "none"


def test_rerun_skips_finished_arms(sweep_dir, capsys):
    before = {a: (sweep_dir / a / "metrics.jsonl").stat().st_mtime_ns for a in ARMS}
    code = main(["sweep", "--preset", "smoke", "--arms", ",".join(ARMS), "--seeds", "2",
                 "--out", str(sweep_dir), "--no-progress"])
    cap = capsys.readouterr()
    assert code == 0
    assert cap.err.count("skipped") == 3
    assert "program" not in cap.err
    assert f"| {BALD} - pref-random | 2 |" in cap.out
    after = {a: (sweep_dir / a / "metrics.jsonl").stat().st_mtime_ns for a in ARMS}
    assert before == after


def test_matrix_table_numbers(sweep_dir, capsys):
    assert is_matrix_dir(sweep_dir) and not is_matrix_dir(sweep_dir / BALD)
    runs = load_matrix(sweep_dir)
    assert [r.label for r in runs] == ARMS
    rows, pairs = compute_matrix(runs, reps=200)

    def finals(arm):
        data = json.loads((sweep_dir / arm / "final_eval.json").read_text())
        return {s["seed"]: s["mean"] for s in data["seeds"]}

    gt, rnd, bald = finals("ground-truth"), finals("pref-random"), finals(BALD)
    by_arm = {r["arm"]: r for r in rows}
    assert by_arm[BALD]["mean"] == pytest.approx(np.mean(list(bald.values())))
    assert by_arm["pref-random"]["pct_ground_truth"] == pytest.approx(
        100 * np.mean(list(rnd.values())) / np.mean(list(gt.values())))
    assert by_arm["ground-truth"]["pct_ground_truth"] == pytest.approx(100.0)
    lengths = json.loads((sweep_dir / "pref-random" / "final_eval.json").read_text())["seeds"]
    assert by_arm["pref-random"]["episode_length"] == pytest.approx(
        np.mean([np.mean(s["lengths"]) for s in lengths]))

    def last(arm, field):  # the last logged value of each seed, averaged over seeds
        rows_ = [json.loads(x) for x in (sweep_dir / arm / "metrics.jsonl").read_text().splitlines() if x]
        return np.mean([[r for r in rows_ if r["seed"] == s][-1][field] for s in (0, 1)])

    for arm in ("pref-random", BALD):
        assert by_arm[arm]["pairs"] == pytest.approx(last(arm, "queries_pref"))
        assert by_arm[arm]["pairs"] > 0 and by_arm[arm]["ratings"] == 0.0
    (pair,) = pairs
    assert (pair["arm"], pair["baseline"]) == (BALD, "pref-random")
    d = np.array([bald[s] - rnd[s] for s in (0, 1)])
    # Two seeds: t_{0.975, 1} = 12.706; half width = 12.706 * std(d, ddof=1) / sqrt(2).
    half = 12.706205 * d.std(ddof=1) / np.sqrt(2)
    assert pair["return"]["mean"] == pytest.approx(d.mean())
    assert pair["return"]["ci_hi"] - pair["return"]["mean"] == pytest.approx(half, rel=1e-5)
    assert pair["return"]["n"] == 2

    def area(arm):  # per seed the mean of its logged training true_return over iterations
        rows_ = [json.loads(x) for x in (sweep_dir / arm / "metrics.jsonl").read_text().splitlines() if x]
        return {s: np.mean([r["true_return"] for r in rows_ if r["seed"] == s
                            and r["true_return"] is not None]) for s in (0, 1)}

    a_bald, a_rnd = area(BALD), area("pref-random")
    da = np.array([a_bald[s] - a_rnd[s] for s in (0, 1)])
    assert np.all(np.isfinite(da)) and np.all(da != 0)
    assert pair["return_area"]["mean"] == pytest.approx(da.mean())
    assert pair["return_area"]["ci_hi"] - pair["return_area"]["mean"] == pytest.approx(
        12.706205 * da.std(ddof=1) / np.sqrt(2), rel=1e-5)
    text = format_matrix(rows, pairs)
    assert "training-return area difference" in text
    assert "% of ground truth" in text and f"{BALD} - pref-random" in text
    # `compare` on the sweep directory prints the same table.
    assert main(["compare", str(sweep_dir), "--bootstrap-reps", "200"]) == 0
    assert capsys.readouterr().out == format_matrix(rows, pairs, reps=200)


def _shift_seeds(src, dst, by, **config_changes):
    """A copy of the sweep directory ``src`` whose runs claim seeds ``seed + by``."""
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", "tb"))
    for arm in ARMS:
        d = dst / arm
        rows = [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines() if x]
        (d / "metrics.jsonl").write_text(
            "".join(json.dumps(dict(r, seed=r["seed"] + by)) + "\n" for r in rows))
        ev = json.loads((d / "final_eval.json").read_text())
        for row in ev["seeds"]:
            row["seed"] += by
        (d / "final_eval.json").write_text(json.dumps(ev))
        cfg = json.loads((d / "config.json").read_text())
        cfg["seed"] += by
        for dotted, value in config_changes.get(arm, {}).items():
            section, name = dotted.split(".")
            cfg[section][name] = value
        (d / "config.json").write_text(json.dumps(cfg))
    return dst


def test_matrices_on_other_seeds_pool_into_one_table(sweep_dir, tmp_path, capsys):
    """``compare M1 M2``: an arm's seeds are pooled over the directories (here 0-1 and a
    copy claiming 2-3), and the paired difference runs over all four; a seed in two
    directories, or an arm whose configs differ in more than the seeds, is refused with
    one line naming the directory."""
    from active_rlhf_jax.analysis.matrix import load_matrices

    more = _shift_seeds(sweep_dir, tmp_path / "more", 2)
    rows, pairs = compute_matrix(load_matrices([sweep_dir, more]), reps=200)

    def finals(d, arm):
        data = json.loads((d / arm / "final_eval.json").read_text())
        return {s["seed"]: s["mean"] for s in data["seeds"]}

    bald = {**finals(sweep_dir, BALD), **finals(more, BALD)}
    rnd = {**finals(sweep_dir, "pref-random"), **finals(more, "pref-random")}
    assert sorted(bald) == [0, 1, 2, 3]
    by_arm = {r["arm"]: r for r in rows}
    assert [r["arm"] for r in rows] == ARMS and by_arm[BALD]["n_seeds"] == 4
    assert by_arm[BALD]["mean"] == pytest.approx(np.mean(list(bald.values())))
    (pair,) = pairs
    d = np.array([bald[s] - rnd[s] for s in range(4)])
    half = 3.182446 * d.std(ddof=1) / 2.0  # t_{0.975, 3} * sd / sqrt(4)
    assert pair["return"]["n"] == 4 and pair["return"]["mean"] == pytest.approx(d.mean())
    assert pair["return"]["ci_hi"] - pair["return"]["mean"] == pytest.approx(half, rel=1e-5)
    assert main(["compare", str(sweep_dir), str(more), "--bootstrap-reps", "200"]) == 0
    assert capsys.readouterr().out == format_matrix(rows, pairs, reps=200)

    same = _shift_seeds(sweep_dir, tmp_path / "same", 0)
    assert main(["compare", str(sweep_dir), str(same)]) == 2
    err = capsys.readouterr().err.strip()
    assert "seed 0 of arm ground-truth is also in" in err and len(err.splitlines()) == 1
    other = _shift_seeds(sweep_dir, tmp_path / "other", 2,
                         **{"pref-random": {"reward.lr": 0.5}})
    assert main(["compare", str(sweep_dir), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"active-rlhf: error: {other / 'pref-random'}: differs from")
    assert "in reward.lr (" in err and len(err.splitlines()) == 1


def test_rerun_replaces_takes_an_overlapping_seed_from_the_later_directory(
        sweep_dir, tmp_path, capsys):
    """``compare M1 M2 --rerun-replaces``: a seed in both directories (here seed 1 of every
    arm: M2 claims seeds 1-2) comes from M2, whose BALD returns are raised by 100; the
    other seeds from where they are; the table names each replaced seed and its directory."""
    from active_rlhf_jax.analysis.matrix import load_matrices

    rerun = _shift_seeds(sweep_dir, tmp_path / "rerun", 1)
    ev_path = rerun / BALD / "final_eval.json"
    ev = json.loads(ev_path.read_text())
    for row in ev["seeds"]:
        row["mean"] += 100.0
    ev_path.write_text(json.dumps(ev))

    def finals(d, arm):
        data = json.loads((d / arm / "final_eval.json").read_text())
        return {s["seed"]: s["mean"] for s in data["seeds"]}

    rows, pairs = compute_matrix(load_matrices([sweep_dir, rerun]), reps=200,
                                 rerun_replaces=True)
    bald = {**finals(sweep_dir, BALD), **finals(rerun, BALD)}  # later wins
    rnd = {**finals(sweep_dir, "pref-random"), **finals(rerun, "pref-random")}
    assert sorted(bald) == [0, 1, 2] and bald[1] == finals(rerun, BALD)[1]
    by_arm = {r["arm"]: r for r in rows}
    assert by_arm[BALD]["n_seeds"] == 3
    assert by_arm[BALD]["mean"] == pytest.approx(np.mean(list(bald.values())))
    assert by_arm[BALD]["replaced_seeds"] == {1: str(rerun / BALD)}
    (pair,) = pairs
    assert pair["return"]["n"] == 3
    assert pair["return"]["mean"] == pytest.approx(np.mean([bald[k] - rnd[k] for k in bald]))
    text = format_matrix(rows, pairs, reps=200)
    assert f"{BALD}: seed 1 from {rerun / BALD}" in text
    assert main(["compare", str(sweep_dir), str(rerun), "--rerun-replaces",
                 "--bootstrap-reps", "200"]) == 0
    assert capsys.readouterr().out == text
    # Without the flag the overlap is refused, and the error names the flag.
    assert main(["compare", str(sweep_dir), str(rerun)]) == 2
    assert "--rerun-replaces" in capsys.readouterr().err


def test_random_counterparts():
    assert random_counterpart("pref-bald") == "pref-random"
    assert random_counterpart("bald-info+noisy") == "unified-random+noisy"
    assert random_counterpart("bald-fixed") == "unified-random"
    assert random_counterpart("pref-random") is None
    assert random_counterpart("ground-truth") is None
    # grid cells pair on the acquisition method, the other settings held equal
    assert (random_counterpart("pref-random+acquisition.method=bald+reward.lr=0.001")
            == "pref-random+acquisition.method=random+reward.lr=0.001")
    assert random_counterpart("pref-random+acquisition.method=random") is None


def test_grid_cells_are_arms_crossed_with_every_combination():
    grid = parse_grid(["reward.lr=1e-3,3e-4", "teacher.beta=0.5,1"])
    assert grid == [("reward.lr", ["1e-3", "3e-4"]), ("teacher.beta", ["0.5", "1"])]
    cells = expand_grid(["pref-random", "pref-bald+noisy"], grid)
    assert cells[:4] == ["pref-random+reward.lr=1e-3+teacher.beta=0.5",
                         "pref-random+reward.lr=1e-3+teacher.beta=1",
                         "pref-random+reward.lr=3e-4+teacher.beta=0.5",
                         "pref-random+reward.lr=3e-4+teacher.beta=1"]
    assert len(cells) == 8 and cells[4].startswith("pref-bald+noisy+reward.lr=1e-3")
    assert expand_grid([], [("reward.lr", ["1e-3"])]) == ["reward.lr=1e-3"]
    assert parse_arms(",".join(cells)) == cells
    # A cell's config is its presets, then its settings, then the sweep's own flags.
    got = arm_config("smoke", "pref-bald+noisy+reward.lr=3e-4+teacher.beta=1",
                     {"run.budget": 40}, 3)
    from configs.presets import get_preset

    want = replace(get_preset("smoke+pref-bald+noisy"),
                   **{"reward.lr": 3e-4, "teacher.beta": 1.0, "run.budget": 40, "seeds": 3,
                      "name": "smoke+pref-bald+noisy+reward.lr=3e-4+teacher.beta=1"})
    assert got == want.validate()
    assert isinstance(got.teacher.beta, float) and got.reward.lr == 3e-4


@pytest.mark.parametrize(
    "specs, arms, message",
    [
        (["reward.nope=1,2"], ["pref-random"], "unknown config field 'reward.nope'"),
        (["reward.lr="], ["pref-random"], "expected a comma-separated list"),
        (["reward.lr=1e-3,,3e-4"], ["pref-random"], "expected a comma-separated list"),
        (["reward.lr"], ["pref-random"], "expected FIELD=V1,V2"),
        (["reward.lr=1e-3,1e-3"], ["pref-random"], "listed twice"),
        (["reward.lr=1e-3", "reward.lr=3e-4"], ["pref-random"], "given twice"),
        (["reward.hidden=64"], ["pref-random"], "holds a tuple"),
        (["reward.lr=1e+3"], ["pref-random"], "cannot hold"),
        (["reward.lr=1e-3"], ["pref-random+reward.lr=3e-4"], "set by arm"),
    ],
)
def test_bad_grids_name_the_grid(specs, arms, message):
    with pytest.raises(ConfigError, match=message) as info:
        expand_grid(arms, parse_grid(specs))
    assert info.value.field == "grid"


@pytest.mark.parametrize(
    "args, field",
    [
        (["--arms", "pref-bald,no-such-arm"], "arms"),
        (["--arms", "pref-bald,,pref-random"], "arms"),
        (["--arms", "pref-bald,pref-bald"], "arms"),
        (["--arms", "pref-bald", "--run.budget", "-1"], "run.budget"),
        (["--arms", "pref-bald", "--seeds", "0"], "seeds"),
        (["--arms", "pref-bald", "--gym-eval-episodes", "-1"], "gym_eval_episodes"),
        (["--arms", "pref-bald", "--cells-per-call", "-1"], "cells_per_call"),
        (["--arms", "pref-bald+reward.nope=1"], "arms"),
        (["--arms", "pref-bald+reward.lr=abc"], "reward.lr"),
        (["--arms", "pref-bald", "--grid", "reward.lr="], "grid"),
        (["--grid", "acquisition.method=random,nope"], "acquisition.method"),
        ([], "arms"),
    ],
)
def test_bad_sweeps_exit_2_without_writing(tmp_path, capsys, args, field):
    out = tmp_path / "m"
    code = main(["sweep", "--preset", "smoke", "--out", str(out), "--no-progress"] + args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and field in err[0], err
    assert not out.exists()


def test_an_arm_valid_only_with_the_sweeps_flags_is_accepted(tmp_path, capsys):
    """A two-phase smoke arm cannot spend its budget in half of smoke's 8 iterations, but
    can with the sweep's --run.total_ppo_timesteps doubling them: the flags are read
    against the arm unchecked, and the arm is checked with them (here the sweep then stops
    at its output path, a file, before compiling anything)."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    base = ["sweep", "--preset", "smoke", "--arms", "pref-random+two-phase", "--seeds", "2",
            "--out", str(blocker), "--no-progress"]
    for extra, field in (([], "run.budget"), (["--run.total_ppo_timesteps", "3200"], "out")):
        assert main(base + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"active-rlhf: error: {field}:"), err


def test_rerun_with_other_seeds_is_refused(sweep_dir, capsys):
    code = main(["sweep", "--preset", "smoke", "--arms", "pref-bald", "--seeds", "3",
                 "--out", str(sweep_dir), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "seeds" in err[0]


def test_plan_groups_cells_by_program_and_progress(tmp_path):
    """Cells share a call when they differ only in what the program reads at run time and
    are equally far; --cells-per-call splits a group; no compile."""
    names = ["pref-random", "ground-truth", BALD, "pref-random+reward.lr=0.003",
             "pref-random+run.budget=40"]
    configs = {n: arm_config("smoke", n, {}, 2) for n in names}
    assert plan_programs(tmp_path, configs) == [
        ("new", ["pref-random", BALD, "pref-random+reward.lr=0.003"]),
        ("new", ["ground-truth"]),
        ("new", ["pref-random+run.budget=40"]),
    ]
    assert plan_programs(tmp_path, configs, cells_per_call=2)[:2] == [
        ("new", ["pref-random", BALD]), ("new", ["pref-random+reward.lr=0.003"])]
    # an interrupted cell resumes apart from new ones; a finished one is not planned
    (tmp_path / BALD).mkdir()
    (tmp_path / BALD / "config.json").write_text("{}")
    (tmp_path / "ground-truth").mkdir()
    (tmp_path / "ground-truth" / "config.json").write_text("{}")
    (tmp_path / "ground-truth" / "final_eval.json").write_text("{}")
    assert plan_programs(tmp_path, configs) == [
        ("new", ["pref-random", "pref-random+reward.lr=0.003"]),
        ("partial", [BALD]),
        ("new", ["pref-random+run.budget=40"]),
    ]


def test_compare_pair_adds_any_paired_difference(sweep_dir, capsys):
    """``--pair ARM BASELINE`` adds that paired difference after the automatic ones (a pair
    already there is not repeated); an arm not in the table exits 2 naming ``pair``."""
    runs = load_matrix(sweep_dir)
    rows, pairs = compute_matrix(runs, reps=200, extra_pairs=[
        ("pref-random", "ground-truth"), (BALD, "pref-random")])
    assert [(p["arm"], p["baseline"]) for p in pairs] == [
        (BALD, "pref-random"), ("pref-random", "ground-truth")]

    def finals(arm):
        data = json.loads((sweep_dir / arm / "final_eval.json").read_text())
        return {s["seed"]: s["mean"] for s in data["seeds"]}

    rnd, gt = finals("pref-random"), finals("ground-truth")
    d = np.array([rnd[s] - gt[s] for s in (0, 1)])
    assert pairs[1]["return"]["mean"] == pytest.approx(d.mean())
    assert pairs[1]["return"]["ci_hi"] - pairs[1]["return"]["mean"] == pytest.approx(
        12.706205 * d.std(ddof=1) / np.sqrt(2), rel=1e-5)
    assert main(["compare", str(sweep_dir), "--bootstrap-reps", "200",
                 "--pair", "pref-random", "ground-truth"]) == 0
    assert capsys.readouterr().out == format_matrix(rows, pairs, reps=200)
    assert main(["compare", str(sweep_dir), "--pair", "pref-bald", "pref-random"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pair" in err and "'pref-bald'" in err


def test_a_finished_sweep_without_rliable_says_how_to_get_its_table(sweep_dir, capsys,
                                                                     monkeypatch):
    """A lent GPU image lacks rliable: the sweep's runs are all written, so it exits 0 with
    one line saying how to get the closing table instead of a traceback."""
    import builtins

    real_import = builtins.__import__

    def no_rliable(name, *args, **kwargs):
        if name == "rliable" or name.startswith("rliable."):
            raise ModuleNotFoundError(f"No module named {name!r}", name="rliable")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rliable)
    code = main(["sweep", "--preset", "smoke", "--arms", ",".join(ARMS), "--seeds", "2",
                 "--out", str(sweep_dir), "--no-progress"])
    cap = capsys.readouterr()
    assert code == 0
    assert cap.out == ""
    line = [ln for ln in cap.err.splitlines() if "rliable" in ln]
    assert len(line) == 1 and f"active-rlhf compare {sweep_dir}" in line[0]
