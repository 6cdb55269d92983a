"""The experiment-matrix table of a sweep directory (``active-rlhf compare OUT``).

One row per arm: seeds, labels (all, and per kind: how the allocation split them), final
return (mean with Student-t 95% CI over seeds, IQM with a bootstrap CI), its percentage
of the ground-truth arm's mean, the mean length of the evaluation episodes (where a task
ends episodes early, e.g. a fallen Hopper, short episodes say the policy fell), and the
last logged reward-model Spearman (``reward_corr``). Then paired differences, seed by
seed, of every BALD arm against its random-acquisition arm (same seeds, same keys): mean
difference with a Student-t 95% CI over the paired seeds, for the final return and for
``reward_corr``, and for the *training-return area* (per seed, the mean over the run's
iterations of the logged ``true_return``, a sample-efficiency summary that sees an arm
which learns faster but ends level); any other pair of arms on request (``--pair ARM BASELINE``, e.g. a BALD
arm against a random arm with BALD's reward-model dropout).

Several sweep directories of the same arms on other seeds (``active-rlhf compare M1 M2``,
e.g. a matrix extended later with ``--seed 105``) form one table: an arm's seeds are the
union of its directories' seeds, which must not overlap, and its configs must agree in
everything but the seeds (:func:`load_matrices`).

The final return of an arm is its Gymnasium evaluation (``final_eval_gymnasium.json``,
deterministic episodes in Gymnasium's own env) when the sweep wrote one, else the run's own
``final_eval.json`` (our backend); the table says which.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from active_rlhf_jax.analysis.loading import METRICS_FILE, RunData, load_run, metrics_path
from active_rlhf_jax.analysis.stats import DEFAULT_BOOTSTRAP_REPS, compute_iqm_ci, compute_mean_ci
from active_rlhf_jax.config import ConfigError

#: Written by :mod:`active_rlhf_jax.sweep`: the sweep's record and each arm's Gymnasium evaluation.
SWEEP_FILE = "sweep.json"
GYM_EVAL_FILE = "final_eval_gymnasium.json"
GROUND_TRUTH = "ground-truth"

#: BALD experiment type -> the random-acquisition arm it is paired with.
RANDOM_COUNTERPART = {
    "pref-bald": "pref-random",
    "rating-bald": "rating-random",
    "bald-fixed": "unified-random",
    "bald-adaptive": "unified-random",
    "bald-info": "unified-random",
}


def is_matrix_dir(path) -> bool:
    """A sweep output: a ``sweep.json``, or no metrics of its own but run subdirectories."""
    p = pathlib.Path(path)
    if (p / SWEEP_FILE).is_file():
        return True
    return (
        p.is_dir()
        and metrics_path(p) is None
        and any(metrics_path(c) is not None for c in p.iterdir() if c.is_dir())
    )


def load_matrix(path) -> list[RunData]:
    """The arms of a sweep directory in the sweep's order (then any other run subdirs).

    Raises:
        FileNotFoundError: no arm has metrics yet.
    """
    p = pathlib.Path(path)
    order = []
    if (p / SWEEP_FILE).is_file():
        order = json.loads((p / SWEEP_FILE).read_text()).get("arms", [])
    found = sorted(c.name for c in p.iterdir() if c.is_dir() and metrics_path(c) is not None)
    names = [a for a in order if a in found] + [a for a in found if a not in order]
    if not names:
        raise FileNotFoundError(f"{p}: no arm with a {METRICS_FILE} (is this a sweep directory?)")
    return [load_run(p / n, n) for n in names]


def load_matrices(paths) -> list[list[RunData]]:
    """The arms of one or more sweep directories, each arm with its directories.

    Arms are in the order of their first appearance. Refused (ConfigError, one line naming
    the directories and the field): two directories of one arm whose configs differ in
    anything but ``seed``, ``seeds`` and ``name``; a seed twice (:func:`compute_matrix`).
    """
    groups: dict[str, list[RunData]] = {}
    for path in paths:
        for run in load_matrix(path):
            groups.setdefault(run.label, []).append(run)
    for runs in groups.values():
        first = _comparable_config(runs[0])
        for other in runs[1:]:
            diff = _first_difference(first, _comparable_config(other))
            if diff is not None:
                raise ConfigError(str(other.path), f"differs from {runs[0].path} in {diff}; "
                                  "only the seeds of an arm may differ between the "
                                  "directories of one table")
    return list(groups.values())


def _comparable_config(run: RunData) -> dict:
    """The run's config in this version's fields (older files upgraded), seeds left out."""
    from active_rlhf_jax.config import leaf_values, load_config_dict

    flat = leaf_values(load_config_dict(run.config))
    for key in ("seed", "seeds", "name"):
        flat.pop(key, None)
    return flat


def _first_difference(a: dict, b: dict) -> str | None:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"{key} ({a.get(key)!r} against {b.get(key)!r})"
    return None


def _merge_seeds(arm: str, dicts: list[tuple[pathlib.Path, dict[int, float]]],
                 replace: bool = False, replaced: dict[int, str] | None = None,
                 ) -> dict[int, float]:
    """Union of per-seed dicts of one arm's directories, in the directories' order.

    A seed in two directories is an error, unless ``replace``: then the later directory's
    value replaces the earlier one (a seed rerun, e.g. after a bug fix) and ``replaced``
    (when given) gets ``{seed: later directory}``.
    """
    out: dict[int, float] = {}
    where: dict[int, pathlib.Path] = {}
    for path, d in dicts:
        for seed, v in d.items():
            if seed in out and not replace:
                raise ConfigError(str(path), f"seed {seed} of arm {arm} is also in "
                                  f"{where[seed]}; one table takes each seed once (or pass "
                                  "--rerun-replaces to let the later directory's run replace it)")
            if seed in where and replaced is not None:
                replaced[seed] = str(path)
            out[seed], where[seed] = v, path
    return out


def random_counterpart(arm: str) -> str | None:
    """``"bald-info+noisy"`` -> ``"unified-random+noisy"``; a grid cell
    ``"pref-random+acquisition.method=bald"`` -> ``"pref-random+acquisition.method=random"``;
    None for non-BALD arms."""
    parts = arm.split("+")
    for i, part in enumerate(parts):
        if part in RANDOM_COUNTERPART:
            return "+".join(parts[:i] + [RANDOM_COUNTERPART[part]] + parts[i + 1:])
        name, eq, value = part.partition("=")
        if eq and name == "acquisition.method" and value != "random":
            return "+".join(parts[:i] + ["acquisition.method=random"] + parts[i + 1:])
    return None


def eval_file_scores(path) -> dict[int, float]:
    """``{seed: mean evaluation return}`` of an evaluation file (``final_eval.json`` or
    ``final_eval_gymnasium.json``)."""
    data = json.loads(pathlib.Path(path).read_text())
    # "per_seed": files written before the evaluation schema was unified.
    rows = data["seeds"] if "seeds" in data else data["per_seed"]
    return {int(s["seed"]): float(s["mean"]) for s in rows}


def final_scores(run: RunData) -> tuple[dict[int, float], str]:
    """``{seed: final return}`` and its source (Gymnasium evaluation if present)."""
    gym = run.path / GYM_EVAL_FILE
    if gym.is_file():
        return eval_file_scores(gym), "gymnasium"
    scores, source = run.final_scores()
    seeds = [int(s["seed"]) for s in run.final_eval["seeds"]] if (
        run.final_eval and run.final_eval.get("seeds")) else [int(s) for s in run.seeds]
    return {s: float(v) for s, v in zip(seeds, scores)}, source


def final_lengths(run: RunData) -> dict[int, float]:
    """``{seed: mean length of its evaluation episodes}`` from the same evaluation as
    :func:`final_scores` (seeds whose record has no lengths are left out)."""
    gym = run.path / GYM_EVAL_FILE
    data = json.loads(gym.read_text()) if gym.is_file() else (run.final_eval or {})
    rows = data.get("seeds") or data.get("per_seed") or []
    return {int(s["seed"]): float(np.mean(s["lengths"])) for s in rows if s.get("lengths")}


def last_values(run: RunData, name: str) -> dict[int, float]:
    """``{seed: last finite value of the metric}`` (seeds with none are left out)."""
    out = {}
    for seed, row in zip(run.seeds, run.field(name)):
        finite = np.flatnonzero(np.isfinite(row))
        if finite.size:
            out[int(seed)] = float(row[finite[-1]])
    return out


def run_means(run: RunData, name: str) -> dict[int, float]:
    """``{seed: mean of the metric's finite values over the run's iterations}`` (seeds with
    none are left out); for ``true_return`` the area under the training curve divided by
    the number of iterations that logged one."""
    out = {}
    for seed, row in zip(run.seeds, run.field(name)):
        finite = row[np.isfinite(row)]
        if finite.size:
            out[int(seed)] = float(np.mean(finite))
    return out


def paired_difference(a: dict[int, float], b: dict[int, float]) -> dict:
    """Mean of ``a[s] - b[s]`` over the seeds in both, with a Student-t 95% CI."""
    seeds = sorted(set(a) & set(b))
    d = np.array([a[s] - b[s] for s in seeds], np.float64)
    d = d[np.isfinite(d)]
    mean, lo, hi, n = compute_mean_ci(d)
    return {"mean": float(mean), "ci_lo": float(lo), "ci_hi": float(hi), "n": int(n)}


def compute_matrix(
    runs: list[RunData] | list[list[RunData]], reps: int = DEFAULT_BOOTSTRAP_REPS, seed: int = 0,
    extra_pairs: list[tuple[str, str]] = (), rerun_replaces: bool = False,
) -> tuple[list[dict], list[dict]]:
    """(one row per arm, one row per BALD-vs-random pair); see the module docstring.

    ``runs``: one RunData per arm (:func:`load_matrix`), or per arm the list of its
    directories (:func:`load_matrices`), whose seeds are pooled.
    ``extra_pairs``: more ``(arm, baseline)`` paired differences, after the automatic ones
    (e.g. a BALD arm against a control random arm that differs from its own counterpart
    in one setting); a pair already listed is not repeated.

    ``rerun_replaces``: a seed an arm has in two directories is taken from the later one
    (a rerun; the row's ``replaced_seeds`` lists them) instead of refused.

    Raises:
        ConfigError: an arm of ``extra_pairs`` is not in the table (field ``pair``); a seed
            in two directories of one arm without ``rerun_replaces``.
    """
    groups = [g if isinstance(g, list) else [g] for g in runs]
    by_name = {g[0].label: g[0] for g in groups}
    for pair in extra_pairs:
        for name in pair:
            if name not in by_name:
                raise ConfigError("pair", f"no arm named {name!r} in the table (arms: "
                                  + ", ".join(by_name) + ")")

    def merged(fn, replaced=None) -> dict[str, dict[int, float]]:
        return {g[0].label: _merge_seeds(
                    g[0].label, [(r.path, fn(r)) for r in g], rerun_replaces,
                    None if replaced is None else replaced[g[0].label])
                for g in groups}

    final = {r.path: final_scores(r) for g in groups for r in g}  # each file read once
    sources = {g[0].label: ", ".join(sorted({final[r.path][1] for r in g})) for g in groups}
    replaced_seeds: dict[str, dict[int, str]] = {g[0].label: {} for g in groups}
    scores = merged(lambda r: final[r.path][0], replaced_seeds)
    corr = merged(lambda r: last_values(r, "reward_corr"))
    area = merged(lambda r: run_means(r, "true_return"))
    lengths_of = merged(final_lengths)
    # labels asked in all and of each kind (the allocation's split), last logged per seed
    labels_of = {key: merged(lambda r, f=field: last_values(r, f)) for key, field in
                 (("queries", "queries_total"), ("pairs", "queries_pref"),
                  ("ratings", "queries_eval"))}

    def seed_mean(per_seed: dict[int, float]) -> float:
        """Mean over an arm's seeds; NaN for an arm with none."""
        v = np.array(list(per_seed.values()), np.float64)
        return float(np.mean(v)) if v.size else math.nan

    gt_mean = math.nan
    if GROUND_TRUTH in scores:
        gt_vals = np.array(list(scores[GROUND_TRUTH].values()))
        gt_mean = float(np.nanmean(gt_vals)) if gt_vals.size else math.nan
    rows = []
    for g in groups:
        r = g[0]
        vals = np.array(list(scores[r.label].values()), np.float64)
        vals = vals[np.isfinite(vals)]
        mean, lo, hi, n = compute_mean_ci(vals)
        iqm, iqm_lo, iqm_hi = compute_iqm_ci(vals, reps=reps, seed=seed)
        rows.append({
            "arm": r.label,
            "env_id": r.env_id,
            "n_seeds": int(n),
            "mean": float(mean), "ci_lo": float(lo), "ci_hi": float(hi),
            "iqm": iqm, "iqm_ci_lo": iqm_lo, "iqm_ci_hi": iqm_hi,
            "pct_ground_truth": 100.0 * float(mean) / gt_mean
            if math.isfinite(gt_mean) and gt_mean != 0 else math.nan,
            "reward_corr": seed_mean(corr[r.label]),
            "episode_length": seed_mean(lengths_of[r.label]),
            **{key: seed_mean(per_arm[r.label]) for key, per_arm in labels_of.items()},
            "source": sources[r.label],
            "replaced_seeds": replaced_seeds[r.label],
        })
    wanted = []
    for r in by_name.values():
        other = random_counterpart(r.label)
        if other is not None and other not in by_name:
            # "a+acquisition.method=bald" pairs with "a" itself when "a" acquires at random
            plain = "+".join(p for p in other.split("+") if p != "acquisition.method=random")
            if plain in by_name and by_name[plain].config.get("acquisition", {}).get(
                    "method") == "random":
                other = plain
        if other is None or other not in by_name:
            continue
        wanted.append((r.label, other))
    wanted += [tuple(p) for p in extra_pairs if tuple(p) not in wanted]
    pairs = [{
        "arm": arm,
        "baseline": other,
        "return": paired_difference(scores[arm], scores[other]),
        "reward_corr": paired_difference(corr[arm], corr[other]),
        "return_area": paired_difference(area[arm], area[other]),
    } for arm, other in wanted]
    return rows, pairs


def _f(x: float, digits: int = 1) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:,.{digits}f}"


def format_matrix(rows: list[dict], pairs: list[dict], reps: int = DEFAULT_BOOTSTRAP_REPS) -> str:
    """Markdown: the arm table, the paired-difference table and a note on the statistics."""
    lines = [
        "| arm | seeds | labels | pairs / ratings | final return [95% CI] | IQM [95% CI] "
        "| % of ground truth | episode length | reward_corr |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {r['n_seeds']} | {_f(r['queries'], 0)} "
            f"| {_f(r['pairs'], 0)} / {_f(r['ratings'], 0)} "
            f"| {_f(r['mean'])} [{_f(r['ci_lo'])}, {_f(r['ci_hi'])}] "
            f"| {_f(r['iqm'])} [{_f(r['iqm_ci_lo'])}, {_f(r['iqm_ci_hi'])}] "
            f"| {_f(r['pct_ground_truth'])} | {_f(r['episode_length'], 0)} "
            f"| {_f(r['reward_corr'], 3)} |"
        )
    if pairs:
        lines += [
            "",
            "| paired (same seeds) | seeds | return difference [95% CI] "
            "| reward_corr difference [95% CI] | training-return area difference [95% CI] |",
            "|---|---:|---|---|---|",
        ]
        for p in pairs:
            d, c, a = p["return"], p["reward_corr"], p["return_area"]
            lines.append(
                f"| {p['arm']} - {p['baseline']} | {d['n']} "
                f"| {_f(d['mean'])} [{_f(d['ci_lo'])}, {_f(d['ci_hi'])}] "
                f"| {_f(c['mean'], 3)} [{_f(c['ci_lo'], 3)}, {_f(c['ci_hi'], 3)}] "
                f"| {_f(a['mean'])} [{_f(a['ci_lo'])}, {_f(a['ci_hi'])}] |"
            )
    reruns = [f"{r['arm']}: seed{'s' if len(r['replaced_seeds']) > 1 else ''} "
              + ", ".join(f"{seed} from {d}" for seed, d in sorted(r["replaced_seeds"].items()))
              for r in rows if r.get("replaced_seeds")]
    if reruns:
        lines += ["", "Seeds rerun (the later directory's run replaces the earlier one): "
                  + "; ".join(reruns) + "."]
    sources = sorted({r["source"] for r in rows})
    lines += [
        "",
        "Final return: deterministic evaluation per seed (source: " + ", ".join(sources)
        + "). Means with Student-t 95% CIs over seeds; IQM with a percentile stratified-"
        f"bootstrap 95% CI ({reps} resamples, rliable); % of ground truth = arm mean / "
        "ground-truth mean; pairs / ratings = the labels of each kind asked, mean over seeds; "
        "episode length = mean over seeds of the evaluation episodes' mean length; "
        "reward_corr = last logged Spearman of learned vs true clip returns on the pool, mean "
        "over seeds; training-return area = per seed the mean over iterations of the logged "
        "training-episode true_return; paired differences over the seeds both arms ran.",
    ]
    return "\n".join(lines) + "\n"
