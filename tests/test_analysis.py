"""Analysis: loading, mean/t-CI, rliable aggregates, every figure and its CSV, the tables.

Synthetic run directories are generated here (several seeds, several runs); every number
written beside a figure is recomputed independently from metrics.jsonl with plain Python
and scipy, and IQM CIs with rliable called directly on the same array and seed.
"""

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from active_rlhf_jax.analysis import commands
from active_rlhf_jax.analysis.loading import load_run, load_runs
from active_rlhf_jax.analysis.stats import compute_iqm_ci, compute_mean_ci
from active_rlhf_jax.config import ConfigError

REPS = 500  # bootstrap resamples in tests (fast; the CLI default is 2000)


def make_run(
    path,
    env_id="HalfCheetah-v5",
    n_seeds=4,
    n_iters=6,
    offset=0.0,
    rng_seed=0,
    adaptive=False,
    final_eval=False,
    missing=True,
):
    """Write config.json + metrics.jsonl (+ final_eval.json) with random but known values."""
    rng = np.random.default_rng(rng_seed)
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"env": {"env_id": env_id}, "seeds": n_seeds}))
    rows = []
    for s in range(n_seeds):
        q = 0
        for it in range(n_iters):
            n_pref = int(rng.integers(0, 10)) if adaptive else 5
            n_eval = int(rng.integers(0, 10)) if adaptive else 5
            q += n_pref + n_eval
            row = {
                "seed": s,
                "iteration": it,
                "env_steps": 2048 * (it + 1),
                "queries_pref": 0,
                "queries_eval": 0,
                "queries_total": q,
                "true_return": float(offset + 100 * it + rng.normal(0, 30)),
                "learned_return": float(rng.normal()),
                "reward_corr": float(np.tanh(0.3 * it + rng.normal(0, 0.1))),
                "bald_pref": float(abs(rng.normal(0.3, 0.1))),
                "bald_eval": float(abs(rng.normal(0.8, 0.2))),
                "n_pref": n_pref,
                "n_eval": n_eval,
                "sps": 1000.0,
            }
            if missing and s == 1 and it == 2:
                row["reward_corr"] = None  # logged NaN
            rows.append(row)
    rng.shuffle(rows)  # order in the file must not matter
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if final_eval:
        seeds = [
            {"seed": s, "returns": [offset + s, offset + s + 2.0], "mean": offset + s + 1.0}
            for s in range(n_seeds)
        ]
        (path / "final_eval.json").write_text(
            json.dumps(
                {"env_id": env_id, "episodes": 2, "seeds": seeds, "mean": 0.0, "ci95": [0, 0]}
            )
        )
    return path


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def f(x):
    return math.nan if x == "" else float(x)


def oracle_mean_ci(values):
    """Plain-Python t-interval: mean ± t(0.975, n-1) * s / sqrt(n), s with ddof 1."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    n = len(v)
    m = sum(v) / n
    if n < 2:
        return m, math.nan, math.nan, n
    s = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    half = sps.t.ppf(0.975, n - 1) * s / math.sqrt(n)
    return m, m - half, m + half, n


def oracle_bootstrap_ci(columns, reps=None, seed=0, lo_hi=(-math.inf, math.inf)):
    """Percentile bootstrap of the mean over seeds, as documented in
    ``compute_mean_bootstrap_ci``: one ``[reps, S]`` index draw from
    ``default_rng(seed)`` shared by every point, NaN-ignoring means, 2.5/97.5 percentiles,
    clipped to ``lo_hi``; NaN below 3 finite seeds. ``columns``: per point, the S values."""
    reps = REPS if reps is None else reps
    n_seeds = len(columns[0])
    idx = np.random.default_rng(seed).integers(0, n_seeds, size=(reps, n_seeds))
    out = []
    for col in columns:
        col = [math.nan if v is None else float(v) for v in col]
        if sum(math.isfinite(v) for v in col) < 3:
            out.append((math.nan, math.nan))
            continue
        means = []
        for r in range(reps):
            vals = [col[i] for i in idx[r] if math.isfinite(col[i])]
            if vals:
                means.append(sum(vals) / len(vals))
        lo, hi = np.percentile(means, [2.5, 97.5])
        out.append((min(max(lo, lo_hi[0]), lo_hi[1]), min(max(hi, lo_hi[0]), lo_hi[1])))
    return out


def seed_columns(raw, field):
    """Per iteration, the values of ``field`` of every seed in seed order (None if absent)."""
    seeds = sorted({r["seed"] for r in raw})
    iters = sorted({r["iteration"] for r in raw})
    by = {(r["seed"], r["iteration"]): r.get(field) for r in raw}
    return iters, [[by.get((s, it)) for s in seeds] for it in iters]


def raw_rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def close(a, b, tol=1e-9):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(b))


# ---------------------------------------------------------------- statistics


def test_mean_ci_hand_computed():
    # [1,2,3,4]: mean 2.5, s = sqrt(5/3) = 1.290994, t(0.975, 3) = 3.182446,
    # half = 3.182446 * 1.290994 / 2 = 4.108520 / 2 = 2.054260.
    m, lo, hi, n = compute_mean_ci(np.array([1.0, 2.0, 3.0, 4.0]))
    assert n == 4 and m == 2.5
    assert hi - m == pytest.approx(2.054260, abs=1e-6)
    assert m - lo == pytest.approx(2.054260, abs=1e-6)


def test_mean_ci_nan_and_single_value():
    x = np.array([[1.0, 7.0, np.nan], [3.0, np.nan, np.nan], [5.0, np.nan, np.nan]])
    m, lo, hi, n = compute_mean_ci(x, axis=0)
    assert list(n) == [3, 1, 0]
    assert m[0] == 3.0 and m[1] == 7.0 and np.isnan(m[2])
    assert np.isnan(lo[1]) and np.isnan(hi[1])  # undefined with one seed
    assert hi[0] - m[0] == pytest.approx(sps.t.ppf(0.975, 2) * 2.0 / np.sqrt(3))


def rliable_iqm(scores, reps, seed):
    """rliable called directly; rliable 1.2.0 bootstraps with NumPy's global RNG (it
    ignores ``random_state``), so "the same seed" means seeding that RNG first."""
    from rliable import library as rly
    from rliable import metrics

    np.random.seed(seed)
    return rly.get_interval_estimates(
        {"x": np.asarray(scores, float)[:, None]},
        lambda x: np.array([metrics.aggregate_iqm(x)]),
        reps=reps,
    )


def test_iqm_matches_rliable_and_is_deterministic():
    scores = np.array([1.0, 5.0, 2.0, 40.0, 3.0, 4.0, -20.0, 6.0])
    np.random.seed(123)
    iqm, lo, hi = compute_iqm_ci(scores, reps=REPS, seed=3)
    assert np.random.randint(1 << 30) == np.random.RandomState(123).randint(1 << 30)  # restored
    est, ci = rliable_iqm(scores, REPS, 3)
    assert iqm == est["x"][0] == pytest.approx(3.5)  # mean of the middle half [2,3,4,5]
    assert (lo, hi) == (ci["x"][0, 0], ci["x"][1, 0])
    assert compute_iqm_ci(scores, reps=REPS, seed=3) == (iqm, lo, hi)
    assert lo <= iqm <= hi


# ---------------------------------------------------------------- loading


def test_load_run_aligns_seeds_and_iterations(tmp_path):
    d = make_run(tmp_path / "a", n_seeds=3, n_iters=4)
    run = load_run(d)
    assert run.env_id == "HalfCheetah-v5" and run.label == "a"
    assert list(run.seeds) == [0, 1, 2] and list(run.iterations) == [0, 1, 2, 3]
    assert run.field("true_return").shape == (3, 4)
    assert np.isnan(run.field("reward_corr")[1, 2])
    assert np.isnan(run.field("not_logged")).all()
    for r in raw_rows(d):
        assert run.field("true_return")[r["seed"], r["iteration"]] == r["true_return"]


def test_gzipped_metrics_record_loads_as_the_plain_file(tmp_path):
    """Committed records keep metrics.jsonl gzipped; load_run, the matrix loader and
    label_efficiency read it as the plain file (every field, bitwise)."""
    import gzip
    import shutil

    from active_rlhf_jax.analysis.matrix import is_matrix_dir, load_matrix
    from benchmarks.label_efficiency import _rows

    plain = make_run(tmp_path / "plain" / "arm", n_seeds=3, n_iters=4)
    packed = tmp_path / "packed" / "arm"
    shutil.copytree(plain, packed)
    with open(packed / "metrics.jsonl", "rb") as src, gzip.open(packed / "metrics.jsonl.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    (packed / "metrics.jsonl").unlink()
    a, b = load_run(plain), load_run(packed)
    assert sorted(a.fields) == sorted(b.fields)
    for name in a.fields:
        np.testing.assert_array_equal(a.field(name), b.field(name))
    assert is_matrix_dir(packed.parent) and not is_matrix_dir(packed)
    assert [r.label for r in load_matrix(packed.parent)] == ["arm"]
    assert _rows(packed) == _rows(plain) == raw_rows(plain)


def test_load_run_tolerates_truncated_last_line(tmp_path):
    d = make_run(tmp_path / "a", n_seeds=2, n_iters=2)
    with open(d / "metrics.jsonl", "a") as fh:
        fh.write('{"seed": 0, "iteration": 9, "true_ret')
    assert list(load_run(d).iterations) == [0, 1]


def test_load_runs_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        load_run(tmp_path)
    a = make_run(tmp_path / "x" / "run", n_seeds=2, n_iters=2)
    b = make_run(tmp_path / "y" / "run", n_seeds=2, n_iters=2)
    with pytest.raises(ValueError, match="duplicate run labels"):
        load_runs([a, b])
    with pytest.raises(ValueError, match="--labels"):
        load_runs([a, b], ["only-one"])
    assert [r.label for r in load_runs([a, b], ["A", "B"])] == ["A", "B"]


# ---------------------------------------------------------------- plot command

LINE_CSVS = {
    "return_vs_env_steps": ("true_return", "env_steps"),
    "return_vs_queries": ("true_return", "queries_total"),
    "reward_corr_vs_queries": ("reward_corr", "queries_total"),
}


def check_line_csv(csv_path, runs):
    """Every CSV row equals the oracle over seeds of metrics.jsonl: the t-interval for the
    return, the percentile bootstrap within [-1, 1] for Spearman; no interval below 3."""
    name = csv_path.stem
    y_field, x_field = LINE_CSVS[name]
    rows = read_csv(csv_path)
    n_checked = 0
    for label, d in runs.items():
        raw = raw_rows(d)
        iters = sorted({r["iteration"] for r in raw})
        got = {int(r["iteration"]): r for r in rows if r["run"] == label}
        assert sorted(got) == iters
        boot = dict(zip(iters, oracle_bootstrap_ci(seed_columns(raw, y_field)[1],
                                                   lo_hi=(-1.0, 1.0)), strict=True))
        for it in iters:
            ys = [r[y_field] for r in raw if r["iteration"] == it]
            xs = [r[x_field] for r in raw if r["iteration"] == it]
            m, lo, hi, n = oracle_mean_ci(ys)
            if y_field == "reward_corr":
                lo, hi = boot[it]
            elif n < 3:
                lo = hi = math.nan
            row = got[it]
            assert close(f(row["mean"]), m) and int(row["n_seeds"]) == n
            assert close(f(row["ci_lo"]), lo) and close(f(row["ci_hi"]), hi)
            assert close(f(row[x_field]), sum(xs) / len(xs))
            n_checked += 1
    assert n_checked == sum(len({r["iteration"] for r in raw_rows(d)}) for d in runs.values())


def check_bald_csv(csv_path, runs):
    rows = read_csv(csv_path)
    for label, d in runs.items():
        raw = raw_rows(d)
        for field in ("bald_pref", "bald_eval"):
            iters, cols = seed_columns(raw, field)
            for it, (lo, hi) in zip(iters, oracle_bootstrap_ci(cols, lo_hi=(0.0, math.inf)),
                                    strict=True):
                (row,) = [
                    r
                    for r in rows
                    if r["run"] == label and r["modality"] == field and int(r["iteration"]) == it
                ]
                m, _, _, _ = oracle_mean_ci([r[field] for r in raw if r["iteration"] == it])
                assert close(f(row["mean"]), m) and close(f(row["ci_lo"]), lo)
                assert close(f(row["ci_hi"]), hi)


def check_split_csv(csv_path, runs):
    rows = read_csv(csv_path)
    for label, d in runs.items():
        raw = raw_rows(d)
        for field in ("n_pref", "n_eval"):
            iters, cols = seed_columns(raw, field)
            top = max(r[field] for r in raw)
            for it, (lo, hi) in zip(iters, oracle_bootstrap_ci(cols, lo_hi=(0.0, top)),
                                    strict=True):
                (row,) = [r for r in rows if r["run"] == label and int(r["iteration"]) == it]
                m, _, _, _ = oracle_mean_ci([r[field] for r in raw if r["iteration"] == it])
                assert close(f(row[f"{field}_mean"]), m)
                assert close(f(row[f"{field}_ci_lo"]), lo) and close(f(row[f"{field}_ci_hi"]), hi)


def oracle_final(d):
    """Final score per seed: final_eval.json's per-seed mean, else the last true_return."""
    if (d / "final_eval.json").exists():
        return [s["mean"] for s in json.loads((d / "final_eval.json").read_text())["seeds"]]
    raw = raw_rows(d)
    out = []
    for s in sorted({r["seed"] for r in raw}):
        last = max((r for r in raw if r["seed"] == s), key=lambda r: r["iteration"])
        out.append(last["true_return"])
    return out


def check_aggregates_csv(csv_path, runs, seed=0):
    rows = {r["run"]: r for r in read_csv(csv_path)}
    assert set(rows) == set(runs)
    for label, d in runs.items():
        scores = np.array(oracle_final(d))
        m, lo, hi, n = oracle_mean_ci(list(scores))
        row = rows[label]
        assert int(row["n_seeds"]) == n
        assert close(f(row["mean"]), m) and close(f(row["mean_ci_lo"]), lo)
        assert close(f(row["mean_ci_hi"]), hi)
        est, ci = rliable_iqm(scores, REPS, seed)
        assert close(f(row["iqm"]), est["x"][0])
        assert close(f(row["iqm_ci_lo"]), ci["x"][0, 0])
        assert close(f(row["iqm_ci_hi"]), ci["x"][1, 0])


def check_profile_csv(csv_path, runs):
    rows = read_csv(csv_path)
    for label, d in runs.items():
        scores = np.array(oracle_final(d))
        mine = [r for r in rows if r["run"] == label]
        assert len(mine) == 101
        for r in mine:  # point estimate: fraction of seeds strictly above tau
            assert close(f(r["fraction"]), float(np.mean(scores > f(r["tau"]))))
            assert f(r["ci_lo"]) <= f(r["fraction"]) + 1e-12 <= f(r["ci_hi"]) + 2e-12


FIGURES = [
    "return_vs_env_steps",
    "return_vs_queries",
    "reward_corr_vs_queries",
    "bald_vs_env_steps",
    "feedback_split",
    "final_return_aggregates",
    "performance_profile",
]


def check_all_files(out):
    for name in FIGURES:
        for ext in ("png", "svg", "csv"):
            p = out / f"{name}.{ext}"
            assert p.is_file() and p.stat().st_size > 0, p
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (out / f"{name}.svg").read_bytes()[:2000]
    assert (out / "summary.md").is_file() and (out / "summary.csv").is_file()


def test_plot_one_run_several_seeds(tmp_path, capsys):
    d = make_run(tmp_path / "active", n_seeds=5, n_iters=7)
    out = tmp_path / "figs"
    assert commands.main(["plot", str(d), "--out", str(out), "--bootstrap-reps", str(REPS)]) == 0
    check_all_files(out)
    runs = {"active": d}
    for name in LINE_CSVS:
        check_line_csv(out / f"{name}.csv", runs)
    check_bald_csv(out / "bald_vs_env_steps.csv", runs)
    check_split_csv(out / "feedback_split.csv", runs)
    check_aggregates_csv(out / "final_return_aggregates.csv", runs)
    check_profile_csv(out / "performance_profile.csv", runs)
    printed = capsys.readouterr().out
    assert printed == (out / "summary.md").read_text() + "\n"


def test_plot_several_runs(tmp_path, capsys):
    runs = {
        "random": make_run(tmp_path / "r1", n_seeds=4, n_iters=6, offset=0.0, rng_seed=1),
        "bald": make_run(
            tmp_path / "r2", n_seeds=3, n_iters=6, offset=50.0, rng_seed=2, final_eval=True
        ),
        "adaptive": make_run(
            tmp_path / "r3", n_seeds=6, n_iters=5, offset=80.0, rng_seed=3, adaptive=True
        ),
    }
    out = tmp_path / "figs"
    argv = [
        "plot",
        *map(str, runs.values()),
        "--labels",
        *runs,
        "--out",
        str(out),
        "--bootstrap-reps",
        str(REPS),
    ]
    assert commands.main(argv) == 0
    check_all_files(out)
    for name in LINE_CSVS:
        check_line_csv(out / f"{name}.csv", runs)
    check_bald_csv(out / "bald_vs_env_steps.csv", runs)
    check_split_csv(out / "feedback_split.csv", runs)
    check_aggregates_csv(out / "final_return_aggregates.csv", runs)
    check_profile_csv(out / "performance_profile.csv", runs)
    summary = {r["run"]: r for r in read_csv(out / "summary.csv")}
    assert summary["bald"]["source"] == "final_eval.json"
    assert summary["random"]["source"] == "last true_return"
    table = capsys.readouterr().out
    for label in runs:
        assert f"| {label} |" in table


def test_plot_runs_on_two_envs_split_aggregates(tmp_path):
    a = make_run(tmp_path / "a", env_id="HalfCheetah-v5", n_seeds=3, n_iters=3)
    b = make_run(tmp_path / "b", env_id="Hopper-v5", n_seeds=3, n_iters=3)
    out = tmp_path / "figs"
    assert (
        commands.main(["plot", str(a), str(b), "--out", str(out), "--bootstrap-reps", str(REPS)])
        == 0
    )
    for env in ("HalfCheetah-v5", "Hopper-v5"):
        for stem in ("final_return_aggregates", "performance_profile"):
            assert (out / f"{stem}_{env}.png").is_file()


def test_plot_ground_truth_run_without_rlhf_fields(tmp_path):
    # A ground-truth PPO run logs no queries, BALD or reward_corr (null): figures still
    # appear, saying the data is absent, and the CSVs hold NaNs (empty cells).
    d = tmp_path / "gt"
    d.mkdir()
    rows = [
        {
            "seed": s,
            "iteration": i,
            "env_steps": 1000 * (i + 1),
            "true_return": float(i + s),
            "queries_total": None,
            "reward_corr": None,
            "bald_pref": None,
            "bald_eval": None,
            "n_pref": None,
            "n_eval": None,
        }
        for s in range(2)
        for i in range(3)
    ]
    (d / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "figs"
    assert commands.main(["plot", str(d), "--out", str(out), "--bootstrap-reps", str(REPS)]) == 0
    check_all_files(out)
    assert all(r["mean"] == "" for r in read_csv(out / "reward_corr_vs_queries.csv"))


def test_compare_prints_table_and_json(tmp_path, capsys):
    a = make_run(tmp_path / "a", n_seeds=4, n_iters=3, rng_seed=5)
    b = make_run(tmp_path / "b", n_seeds=1, n_iters=3, rng_seed=6)
    assert commands.main(["compare", str(a), str(b), "--bootstrap-reps", str(REPS)]) == 0
    table = capsys.readouterr().out
    lines = table.splitlines()
    assert lines[0].startswith("| run | env | seeds |")
    assert lines[3].startswith("| b | HalfCheetah-v5 | 1 |") and "n/a" in lines[3]
    assert commands.main(["compare", str(a), "--json", "--bootstrap-reps", str(REPS)]) == 0
    rec = json.loads(capsys.readouterr().out)
    m, lo, hi, n = oracle_mean_ci(oracle_final(a))
    assert rec["n_seeds"] == n and close(rec["mean"], m) and close(rec["mean_ci_lo"], lo)


# ---------------------------------------------------------------- figure data in range


def _write_run(path, rows, config=None):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config or {"env": {"env_id": "HalfCheetah-v5"}}))
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _extreme_rows(n_seeds, n_iters=4):
    """Values at the edge of each range, where a symmetric t-interval leaves it: one seed
    far from the others (Spearman -0.9 among 1.0s, BALD 0.5 among zeros, 15 queries among
    zeros), and no finished episode in iteration 2."""
    rows = []
    for s in range(n_seeds):
        for it in range(n_iters):
            odd = s == 0
            rows.append({
                "seed": s, "iteration": it, "env_steps": 1000 * (it + 1),
                "queries_total": 15 * (it + 1),
                "true_return": None if it == 2 else float(10 * it + s),
                "reward_corr": -0.9 if odd else 1.0,
                "bald_pref": 0.5 if odd else 0.0, "bald_eval": 0.5 if odd else 0.0,
                "n_pref": 15 if odd else 0, "n_eval": 0 if odd else 15,
            })
    return rows


def test_figure_data_of_bounded_quantities_and_counts_stays_in_range(tmp_path, capsys):
    four = _write_run(tmp_path / "four", _extreme_rows(4))
    two = _write_run(tmp_path / "two", _extreme_rows(2))
    rnd = _write_run(tmp_path / "rnd", _extreme_rows(4),
                     {"env": {"env_id": "HalfCheetah-v5"}, "acquisition": {"method": "random"}})
    # The t-interval would leave every range here (what the figures drew before).
    _, t_lo, t_hi, _ = oracle_mean_ci([-0.9, 1.0, 1.0, 1.0])
    assert t_hi > 1.0
    assert oracle_mean_ci([0.5, 0.0, 0.0, 0.0])[1] < 0.0
    assert oracle_mean_ci([15, 0, 0, 0])[2] > 15 or oracle_mean_ci([15, 0, 0, 0])[1] < 0
    out = tmp_path / "figs"
    argv = ["plot", str(four), str(two), str(rnd), "--out", str(out), "--bootstrap-reps", "300"]
    assert commands.main(argv) == 0
    corr = read_csv(out / "reward_corr_vs_queries.csv")
    bald = read_csv(out / "bald_vs_env_steps.csv")
    split = read_csv(out / "feedback_split.csv")
    for r in corr:
        if r["run"] != "two":
            assert -1.0 <= f(r["ci_lo"]) <= f(r["mean"]) <= f(r["ci_hi"]) <= 1.0, r
            assert f(r["ci_lo"]) < 0.9  # a real interval, not a point
    for r in bald:
        if r["run"] == "four":
            assert 0.0 <= f(r["ci_lo"]) <= f(r["mean"]) <= f(r["ci_hi"]) <= 0.5, r
    for r in split:
        if r["run"] != "two":
            for k in ("n_pref", "n_eval"):
                assert 0.0 <= f(r[f"{k}_ci_lo"]) <= f(r[f"{k}_mean"]) <= f(r[f"{k}_ci_hi"]) <= 15
    # Fewer than 3 seeds: no interval in any figure's data (the seeds are drawn instead).
    for rows in (corr, bald, split, read_csv(out / "return_vs_env_steps.csv")):
        for r in rows:
            if r["run"] == "two":
                assert all(v == "" for k, v in r.items() if "_ci_" in k or k in ("ci_lo", "ci_hi"))
                assert r["ci_method"].startswith("none")
    # No BALD curve for the random-acquisition run.
    assert {r["run"] for r in bald} == {"four", "two"}
    # No episode finished in iteration 2: empty in the data, and the drawn line breaks.
    ret = [r for r in read_csv(out / "return_vs_env_steps.csv") if r["run"] == "four"]
    assert ret[2]["mean"] == "" and all(ret[i]["mean"] != "" for i in (0, 1, 3))


def test_curves_break_at_missing_iterations_and_draw_few_seeds(tmp_path):
    import matplotlib.pyplot as plt

    from active_rlhf_jax.analysis import figures

    four = load_run(_write_run(tmp_path / "four", _extreme_rows(4)))
    two = load_run(_write_run(tmp_path / "two", _extreme_rows(2)))
    fig, ax = plt.subplots()
    rows = figures.series_rows(four, "true_return", "env_steps", reps=50)
    drawn, gaps = figures._draw_series(ax, four, rows, "env_steps", "true_return", "C0", "four")
    assert drawn and gaps == 1
    (line,) = ax.lines
    assert np.isnan(line.get_ydata()[2]) and np.isfinite(line.get_ydata()[[0, 1, 3]]).all()
    rows = figures.series_rows(two, "true_return", "env_steps", reps=50)
    figures._draw_series(ax, two, rows, "env_steps", "true_return", "C1", "two")
    assert [ln.get_label() for ln in ax.lines[1:]] == ["two, seed 0", "two, seed 1"]
    plt.close(fig)


def test_plot_warns_and_splits_runs_on_different_envs(tmp_path, capsys):
    a = make_run(tmp_path / "a", env_id="HalfCheetah-v5", n_seeds=3, n_iters=3)
    b = make_run(tmp_path / "b", env_id="Hopper-v5", n_seeds=3, n_iters=3)
    out = tmp_path / "figs"
    assert commands.main(["plot", str(a), str(b), "--out", str(out), "--bootstrap-reps", "50"]) == 0
    err = capsys.readouterr().err
    assert "warning: the runs are on 2 environments" in err
    for env in ("HalfCheetah-v5", "Hopper-v5"):
        for stem in ("return_vs_env_steps", "reward_corr_vs_queries", "bald_vs_env_steps"):
            rows = read_csv(out / f"{stem}_{env}.csv")
            assert {r["run"] for r in rows} == {"a" if env.startswith("Half") else "b"}


def test_two_phase_runs_leave_the_second_phase_off_the_query_axes(tmp_path):
    """A two-phase run (``phase`` 2 rows ask no queries) appears on the query axes with its
    first phase only, each row still the oracle over its seeds, and on the env-step axis
    with every iteration."""
    rows = []
    for s in range(3):
        for it in range(1, 7):
            second = it > 3
            rows.append({
                "seed": s, "iteration": it, "env_steps": 1000 * it,
                "queries_total": 40 * min(it, 3), "phase": 2 if second else 1,
                "true_return": float(10 * it + s), "reward_corr": 0.5 + 0.1 * s,
            })
    run_dir = _write_run(tmp_path / "two_phase", rows)
    out = tmp_path / "figs"
    assert commands.main(["plot", str(run_dir), "--out", str(out), "--bootstrap-reps", "50"]) == 0
    q = read_csv(out / "return_vs_queries.csv")
    assert [int(r["iteration"]) for r in q] == [1, 2, 3]
    assert [f(r["queries_total"]) for r in q] == [40.0, 80.0, 120.0]
    assert [f(r["mean"]) for r in q] == [11.0, 21.0, 31.0]  # mean of 10 it + {0, 1, 2}
    assert [int(r["iteration"]) for r in read_csv(out / "reward_corr_vs_queries.csv")] == [1, 2, 3]
    e = read_csv(out / "return_vs_env_steps.csv")
    assert [int(r["iteration"]) for r in e] == list(range(1, 7))
    assert f(e[-1]["mean"]) == 61.0


def test_plot_pools_an_arms_seeds_over_sweep_directories(tmp_path):
    """Two sweep directories (seeds 0-1 and 2-4) of the same two arms: one curve per arm,
    each iteration the t-interval over all five seeds; the second arm ran one iteration
    fewer in the first directory (its seeds there count only where they logged)."""
    def arm_rows(seeds, n_iters, offset):
        return [{"seed": s, "iteration": it, "env_steps": 100 * it, "queries_total": 10 * it,
                 "true_return": float(offset + 7 * it + s * s), "reward_corr": 0.1 * s}
                for s in seeds for it in range(1, n_iters + 1)]

    dirs = []
    for name, seeds, iters_b in (("g0", (0, 1), 2), ("g1", (2, 3, 4), 3)):
        d = tmp_path / name
        _write_run(d / "arm-a", arm_rows(seeds, 3, 0.0))
        _write_run(d / "arm-b", arm_rows(seeds, iters_b, 50.0))
        (d / "sweep.json").write_text(json.dumps({"arms": ["arm-a", "arm-b"]}))
        dirs.append(str(d))
    out = tmp_path / "figs"
    assert commands.main(["plot", *dirs, "--out", str(out), "--bootstrap-reps", "50"]) == 0
    rows = read_csv(out / "return_vs_env_steps.csv")
    assert sorted({r["run"] for r in rows}) == ["arm-a", "arm-b"]
    for arm, offset in (("arm-a", 0.0), ("arm-b", 50.0)):
        for r in (r for r in rows if r["run"] == arm):
            it = int(r["iteration"])
            seeds = range(5) if (arm == "arm-a" or it <= 2) else range(2, 5)
            m, lo, hi, n = oracle_mean_ci([offset + 7 * it + s * s for s in seeds])
            assert int(r["n_seeds"]) == n and close(f(r["mean"]), m)
            assert close(f(r["ci_lo"]), lo) and close(f(r["ci_hi"]), hi)
    with pytest.raises(ConfigError, match="^labels: "):
        commands.main(["plot", *dirs, "--labels", "x", "y", "--out", str(out)])
    with pytest.raises(ConfigError, match="mixes sweep directories and run directories"):
        commands.main(["plot", dirs[0], dirs[1] + "/arm-a", "--out", str(out)])
    # A seed in two directories of one arm is refused.
    _write_run(tmp_path / "g2" / "arm-a", arm_rows((1,), 3, 0.0))
    with pytest.raises(ConfigError, match="seed 1 "):
        commands.main(["plot", dirs[0], str(tmp_path / "g2"), "--out", str(out)])
