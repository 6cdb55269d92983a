"""Figures for ``active-rlhf plot``: PNG + SVG, with the numbers behind each in a CSV beside it.

Every curve is the mean over a run's seeds at each iteration; its x value is the mean over
seeds of ``env_steps`` or ``queries_total`` logged in the same row, so x and y always come
from the same metrics row (the reference project's mixed step axes cannot happen).

Intervals (95%): the true return gets a Student-t band
(:func:`~active_rlhf_jax.analysis.stats.compute_mean_ci`); bounded quantities (Spearman
rho in [-1, 1], BALD >= 0) and the per-iteration query counts get percentile-bootstrap
intervals over seeds (:func:`~active_rlhf_jax.analysis.stats.compute_mean_bootstrap_ci`),
which stay inside the range. With fewer than 3 seeds no band is drawn: each seed is drawn
instead (the CSV's CI cells are then empty). An iteration in which no seed finished an
episode has no true return: the line breaks there (and the figure says so) instead of
bridging it. Runs on different environments get separate figures (file suffix ``_ENV``).

Two-phase runs (``run.retrain_fraction``; rows with ``phase`` 2): the figures against
queries show the first phase only, since the second buys no query and would draw a vertical
line at the final count; the figures against env steps show both phases and mark the
switch with a dotted line. Long run labels (sweep arms) put the legend below the axes.
"""

from __future__ import annotations

import math
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import EngFormatter, MaxNLocator  # noqa: E402

from active_rlhf_jax.analysis.loading import RunData  # noqa: E402
from active_rlhf_jax.analysis.stats import (  # noqa: E402
    DEFAULT_BOOTSTRAP_REPS,
    MIN_SEEDS_FOR_BAND,
    compute_iqm_ci,
    compute_mean_bootstrap_ci,
    compute_mean_ci,
    compute_performance_profile,
)
from active_rlhf_jax.analysis.summary import write_csv  # noqa: E402

STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.fonttype": "none",
}
PNG_DPI = 150
PREF_COLOR = "#E69F00"
EVAL_COLOR = "#4477AA"
X_LABELS = {
    "env_steps": "environment steps",
    "queries_total": "queries used (preferences + ratings)",
}

#: name -> (y field, x field, y label, title) of the per-iteration line figures.
LINE_FIGURES = {
    "return_vs_env_steps": (
        "true_return",
        "env_steps",
        "true episode return",
        "True return vs environment steps",
    ),
    "return_vs_queries": (
        "true_return",
        "queries_total",
        "true episode return",
        "True return vs queries used",
    ),
    "reward_corr_vs_queries": (
        "reward_corr",
        "queries_total",
        "Spearman ρ (learned vs true clip return)",
        "Reward-model quality vs queries used",
    ),
}


def _color(i: int):
    return plt.get_cmap("tab10")(i % 10)


def _save(fig, out_dir: pathlib.Path, stem: str) -> list[pathlib.Path]:
    paths = [out_dir / f"{stem}.png", out_dir / f"{stem}.svg"]
    fig.savefig(paths[0], dpi=PNG_DPI, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    plt.close(fig)
    return paths


def _no_data(ax, what: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"no {what} logged by these runs",
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="0.4",
    )


#: Range of each bounded quantity: its interval is a percentile bootstrap within it.
BOUNDED = {"reward_corr": (-1.0, 1.0), "bald_pref": (0.0, np.inf), "bald_eval": (0.0, np.inf)}
NO_BAND = f"none (fewer than {MIN_SEEDS_FOR_BAND} seeds: seeds drawn)"


#: Legend labels longer than this put the legend below the axes (it would cover them).
LONG_LABEL = 40
#: The x axes along which a two-phase run's second phase (no queries) is left out.
LABEL_AXES = ("queries_total",)


def _second_phase(run: RunData) -> np.ndarray:
    """``[S, I]`` bool: True where a two-phase run's row is of its second phase."""
    return run.field("phase") == 2


def _xy(run: RunData, x_field: str, y_field: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``, each ``[S, I]``; NaN in both for second-phase rows on a label axis."""
    x, y = run.field(x_field), run.field(y_field)
    if x_field in LABEL_AXES:
        drop = _second_phase(run)
        x, y = np.where(drop, np.nan, x), np.where(drop, np.nan, y)
    return x, y


def _legend(ax) -> None:
    """The legend inside the axes (``best``), or below them when a label is long."""
    labels = ax.get_legend_handles_labels()[1]
    if max((len(label) for label in labels), default=0) > LONG_LABEL:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), frameon=False, ncol=1)
    else:
        ax.legend(loc="best", frameon=False)


def _interval(y: np.ndarray, field: str, reps: int, seed: int, value_range=None):
    """``(mean, lo, hi, n, method)`` over the seed axis of ``y [S, P]`` (see module doc)."""
    if value_range is not None or field in BOUNDED:
        rng = value_range if value_range is not None else BOUNDED[field]
        mean, lo, hi, n = compute_mean_bootstrap_ci(y, reps=reps, seed=seed, value_range=rng)
        return mean, lo, hi, n, "bootstrap percentile"
    mean, lo, hi, n = compute_mean_ci(y, axis=0)
    few = n < MIN_SEEDS_FOR_BAND
    return mean, np.where(few, np.nan, lo), np.where(few, np.nan, hi), n, "student-t"


def series_rows(run: RunData, y_field: str, x_field: str, reps: int = DEFAULT_BOOTSTRAP_REPS,
                seed: int = 0) -> list[dict]:
    """Per-iteration mean and 95% CI of ``y_field`` over seeds, at the mean ``x_field``
    (no row for an iteration every seed ran in a two-phase run's second phase when
    ``x_field`` counts queries)."""
    x, y = _xy(run, x_field, y_field)
    mean, lo, hi, n, method = _interval(y, y_field, reps, seed)
    with np.errstate(all="ignore"):
        xm, _, _, _ = compute_mean_ci(x, axis=0)
    skip = (_second_phase(run).all(axis=0) if x_field in LABEL_AXES
            else np.zeros(len(run.iterations), bool))
    rows = []
    for j, it in enumerate(run.iterations):
        if skip[j]:
            continue
        rows.append(
            {
                "run": run.label,
                "iteration": int(it),
                x_field: float(xm[j]),
                "mean": float(mean[j]),
                "ci_lo": float(lo[j]),
                "ci_hi": float(hi[j]),
                "n_seeds": int(n[j]),
                "ci_method": method if np.isfinite(lo[j]) else NO_BAND,
            }
        )
    return rows


def _draw_series(ax, run: RunData, rows: list[dict], x_field: str, y_field: str, color,
                 label: str) -> tuple[bool, int]:
    """Draw one run: the mean with its band, or each seed when there are fewer than
    :data:`MIN_SEEDS_FOR_BAND`. NaN points stay in the arrays so the line breaks there.

    Returns:
        ``(drawn, gaps)``: whether anything was drawn, and how many iterations inside the
        curve have no value (the line is broken there, never bridged).
    """
    xs = np.array([r[x_field] for r in rows])
    m = np.array([r["mean"] for r in rows])
    lo = np.array([r["ci_lo"] for r in rows])
    hi = np.array([r["ci_hi"] for r in rows])
    ok = np.isfinite(xs)
    if not (ok & np.isfinite(m)).any():
        return False, 0
    order = np.argsort(xs[ok], kind="stable")
    xs, m, lo, hi = xs[ok][order], m[ok][order], lo[ok][order], hi[ok][order]
    finite = np.flatnonzero(np.isfinite(m))
    gaps = int(np.sum(~np.isfinite(m[finite[0]:finite[-1] + 1])))
    n_seeds = max(r["n_seeds"] for r in rows)
    if n_seeds < MIN_SEEDS_FOR_BAND:
        x_all, y_all = _xy(run, x_field, y_field)
        styles = ["-", "--", ":", "-."]
        for i, sid in enumerate(run.seeds):
            xi, yi = x_all[i], y_all[i]
            keep = np.isfinite(xi)
            o = np.argsort(xi[keep], kind="stable")
            ax.plot(xi[keep][o], yi[keep][o], color=color, lw=1.3, ls=styles[i % 4],
                    marker="o" if keep.sum() < 15 else None, ms=2.5,
                    label=f"{label}, seed {int(sid)}")
        return True, gaps
    ax.plot(xs, m, color=color, lw=1.8, marker="o" if len(xs) < 15 else None, ms=3,
            label=f"{label} (n={n_seeds})")
    band = np.isfinite(lo) & np.isfinite(hi)
    if band.any():
        ax.fill_between(xs, np.where(band, lo, m), np.where(band, hi, m), where=band,
                        color=color, alpha=0.2, lw=0)
    return True, gaps


def _note(ax, text: str) -> None:
    ax.text(0.01, 0.01, text, transform=ax.transAxes, ha="left", va="bottom", fontsize=8,
            color="0.35")


def plot_line_figure(runs: list[RunData], out_dir: pathlib.Path, name: str, suffix: str = "",
                     reps: int = DEFAULT_BOOTSTRAP_REPS, seed: int = 0) -> list[pathlib.Path]:
    """One of :data:`LINE_FIGURES`: one line per run, mean ± 95% CI over seeds."""
    y_field, x_field, ylabel, title = LINE_FIGURES[name]
    fig, ax = plt.subplots(figsize=(7, 4.3))
    all_rows, drawn, gaps = [], False, {}
    for i, run in enumerate(runs):
        rows = series_rows(run, y_field, x_field, reps, seed)
        all_rows += rows
        d, g = _draw_series(ax, run, rows, x_field, y_field, _color(i), run.label)
        drawn |= d
        if g:
            gaps[run.label] = g
    ax.set_xlabel(X_LABELS[x_field])
    ax.set_ylabel(ylabel)
    ax.set_title(title + (f", {runs[0].env_id}" if suffix else ""))
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    if y_field in BOUNDED:  # never show values the quantity cannot take
        lo_lim, hi_lim = ax.get_ylim()
        b_lo, b_hi = BOUNDED[y_field]
        ax.set_ylim(max(lo_lim, b_lo - 0.05), min(hi_lim, b_hi + 0.05))
    notes = []
    two_phase = [i for i, run in enumerate(runs) if _second_phase(run).any()]
    if two_phase and x_field in LABEL_AXES:
        notes.append("two-phase runs: first phase only (the second asks no queries)")
    elif two_phase:
        for i in two_phase:  # at the first second-phase iteration's mean x
            run = runs[i]
            j = int(np.flatnonzero(_second_phase(run).any(axis=0))[0])
            with np.errstate(all="ignore"):
                ax.axvline(float(np.nanmean(run.field(x_field)[:, j])), color=_color(i),
                           ls=":", lw=1.2)
        notes.append("dotted: a two-phase run's switch to PPO afresh on its final reward")
    if drawn:
        _legend(ax)
        if gaps:
            why = "no episode finished" if y_field == "true_return" else "no value was logged"
            notes.append("line broken where " + why + ": " + ", ".join(
                f"{label} at {g} iteration(s)" for label, g in gaps.items()))
        if notes:
            _note(ax, "; ".join(notes))
    else:
        _no_data(ax, f"{y_field} against {x_field}")
    stem = name + suffix
    write_csv(
        out_dir / f"{stem}.csv",
        all_rows,
        ["run", "iteration", x_field, "mean", "ci_lo", "ci_hi", "n_seeds", "ci_method"],
    )
    return _save(fig, out_dir, stem) + [out_dir / f"{stem}.csv"]


def acquisition_method(run: RunData) -> str | None:
    """The run's ``acquisition.method`` from config.json (None when unknown)."""
    acq = run.config.get("acquisition") if isinstance(run.config, dict) else None
    return acq.get("method") if isinstance(acq, dict) else None


def plot_bald(runs: list[RunData], out_dir: pathlib.Path, name: str = "bald_vs_env_steps",
              reps: int = DEFAULT_BOOTSTRAP_REPS, seed: int = 0):
    """Mean BALD over the candidates per modality (nats) vs env steps, one panel each.

    Runs with random acquisition are left out (their BALD chose nothing) and named in
    a note; intervals are percentile bootstraps, so they never go below 0.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    all_rows = []
    skipped = [r.label for r in runs if acquisition_method(r) == "random"]
    for ax, (field, title) in zip(
        axes,
        [("bald_pref", "preferences (pairs)"), ("bald_eval", "ratings (single clips)")],
        strict=False,
    ):
        drawn = False
        for i, run in enumerate(runs):
            if run.label in skipped:
                continue
            rows = series_rows(run, field, "env_steps", reps, seed)
            for r in rows:
                r["modality"] = field
            all_rows += rows
            drawn |= _draw_series(ax, run, rows, "env_steps", field, _color(i), run.label)[0]
        ax.set_title(f"Mean BALD: {title}")
        ax.set_xlabel(X_LABELS["env_steps"])
        ax.set_ylabel("mean BALD (nats)")
        ax.set_ylim(bottom=0.0)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        if drawn:
            _legend(ax)
        else:
            _no_data(ax, field)
        if skipped:
            _note(ax, "not drawn (random acquisition): " + ", ".join(skipped))
    fig.tight_layout()
    write_csv(
        out_dir / f"{name}.csv",
        all_rows,
        ["run", "modality", "iteration", "env_steps", "mean", "ci_lo", "ci_hi", "n_seeds",
         "ci_method"],
    )
    return _save(fig, out_dir, name) + [out_dir / f"{name}.csv"]


def plot_feedback_split(runs: list[RunData], out_dir: pathlib.Path, name: str = "feedback_split",
                        reps: int = DEFAULT_BOOTSTRAP_REPS, seed: int = 0):
    """Per-iteration queries by modality (``n_pref`` below, ``n_eval`` stacked on top), mean
    over seeds; one panel per run (what the fixed or adaptive allocation rule chose).

    Whiskers are percentile-bootstrap 95% intervals of each mean over seeds, so they stay
    within the counts the seeds logged (never below 0 nor above the largest); with fewer
    than 3 seeds each seed's counts are drawn as dots instead.
    """
    n = len(runs)
    cols = 1 if n == 1 else 2
    rows_n = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows_n, cols, figsize=(7 if cols == 1 else 11, 3.6 * rows_n), squeeze=False
    )
    all_rows = []
    for k, run in enumerate(runs):
        ax = axes[k // cols][k % cols]
        pref, ev = run.field("n_pref"), run.field("n_eval")
        counts = {}
        for key, v in (("n_pref", pref), ("n_eval", ev)):
            top = float(np.nanmax(v)) if np.isfinite(v).any() else np.inf
            counts[key] = _interval(v, key, reps, seed, value_range=(0.0, top))
        pm, plo, phi, pn, method = counts["n_pref"]
        em, elo, ehi, _, _ = counts["n_eval"]
        for j, it in enumerate(run.iterations):
            all_rows.append(
                {
                    "run": run.label,
                    "iteration": int(it),
                    "n_pref_mean": float(pm[j]),
                    "n_pref_ci_lo": float(plo[j]),
                    "n_pref_ci_hi": float(phi[j]),
                    "n_eval_mean": float(em[j]),
                    "n_eval_ci_lo": float(elo[j]),
                    "n_eval_ci_hi": float(ehi[j]),
                    "n_seeds": int(pn[j]),
                    "ci_method": method if np.isfinite(plo[j]) else NO_BAND,
                }
            )
        it = run.iterations.astype(float)
        p = np.nan_to_num(pm)
        e = np.nan_to_num(em)
        if np.isfinite(pm).any() or np.isfinite(em).any():
            width = 0.85
            ax.bar(it, p, width, color=PREF_COLOR, label="preferences (n_pref)")
            ax.bar(it, e, width, bottom=p, color=EVAL_COLOR, label="ratings (n_eval)")
            if int(np.max(pn)) < MIN_SEEDS_FOR_BAND:
                for i in range(pref.shape[0]):
                    ax.plot(it, pref[i], ".", color="0.15", ms=4)
                    ax.plot(it, pref[i] + ev[i], ".", color="0.15", ms=4,
                            label="each seed" if i == 0 else None)
            elif len(it) <= 60:  # whiskers are unreadable on long runs
                for base, mean, lo, hi in ((0.0, pm, plo, phi), (p, em, elo, ehi)):
                    ax.errorbar(it, base + np.nan_to_num(mean), yerr=_yerr(mean, lo, hi),
                                fmt="none", ecolor="0.2", elinewidth=0.8, capsize=2)
            # Headroom above the tallest bar, whisker or dot, so the legend covers none.
            tops = [p + e, np.nan_to_num(phi), p + np.nan_to_num(ehi), pref + ev]
            top = max(float(np.nanmax(t)) if np.isfinite(t).any() else 0.0 for t in tops)
            ax.set_ylim(0.0, max(top, 1.0) * 1.45)
            ax.legend(loc="upper right", frameon=True, framealpha=0.9, ncol=3, fontsize=8)
        else:
            _no_data(ax, "n_pref / n_eval")
        ax.set_title(f"{run.label}: queries per iteration by modality")
        ax.set_xlabel("RLHF iteration")
        ax.set_ylabel("queries in iteration")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for k in range(n, rows_n * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.tight_layout()
    write_csv(out_dir / f"{name}.csv", all_rows)
    return _save(fig, out_dir, name) + [out_dir / f"{name}.csv"]


def _yerr(m, lo, hi):
    """Whisker lengths below and above the mean (0 where there is no interval)."""
    m = np.asarray(m)
    return np.stack([np.nan_to_num(np.maximum(m - lo, 0.0)), np.nan_to_num(np.maximum(hi - m, 0.0))])


def _env_groups(runs: list[RunData]) -> dict[str, list[RunData]]:
    groups: dict[str, list[RunData]] = {}
    for r in runs:
        groups.setdefault(r.env_id or "unknown-env", []).append(r)
    return groups


def _suffix(env: str, groups: dict) -> str:
    return "" if len(groups) == 1 else "_" + "".join(c if c.isalnum() else "-" for c in env)


def plot_final_aggregates(
    runs: list[RunData], out_dir: pathlib.Path, reps: int = DEFAULT_BOOTSTRAP_REPS, seed: int = 0
):
    """Agarwal et al. (2021) aggregates of the final return, per environment: IQM with a
    stratified-bootstrap 95% CI next to the mean with its t-CI, and performance profiles
    (fraction of seeds with final return > tau, bootstrap 95% band), both by rliable."""
    paths = []
    groups = _env_groups(runs)
    for env, group in groups.items():
        sfx = _suffix(env, groups)
        agg_rows, scores = [], {}
        for run in group:
            s, source = run.final_scores()
            s = s[np.isfinite(s)]
            scores[run.label] = s
            mean, lo, hi, n = compute_mean_ci(s)
            iqm, ilo, ihi = compute_iqm_ci(s, reps=reps, seed=seed)
            if n < MIN_SEEDS_FOR_BAND:  # the seeds are drawn instead of an interval
                lo = hi = ilo = ihi = float("nan")
            agg_rows.append(
                {
                    "run": run.label,
                    "env_id": env,
                    "n_seeds": int(n),
                    "mean": float(mean),
                    "mean_ci_lo": float(lo),
                    "mean_ci_hi": float(hi),
                    "iqm": iqm,
                    "iqm_ci_lo": ilo,
                    "iqm_ci_hi": ihi,
                    "source": source,
                }
            )
        name = f"final_return_aggregates{sfx}"
        fig, axes = plt.subplots(1, 2, figsize=(10, 0.9 + 0.6 * len(group) + 1.2), sharey=True)
        ypos = np.arange(len(group))[::-1]
        for ax, (key, title) in zip(
            axes,
            [("iqm", "IQM (stratified bootstrap CI)"), ("mean", "Mean (Student-t CI)")],
            strict=False,
        ):
            xs = []
            for i, (r, y) in enumerate(zip(agg_rows, ypos, strict=False)):
                c = _color(runs.index(group[i]))
                v, lo, hi = r[key], r[f"{key}_ci_lo"], r[f"{key}_ci_hi"]
                if np.isfinite(lo) and np.isfinite(hi):
                    ax.barh(y, hi - lo, left=lo, height=0.5, color=c, alpha=0.45)
                    xs += [lo, hi]
                else:  # fewer than 3 seeds: each seed's score
                    seeds_s = scores[r["run"]]
                    ax.plot(seeds_s, np.full(seeds_s.shape, y), "o", color=c, ms=5,
                            mfc="none", label="each seed" if not xs else None)
                    xs += list(seeds_s)
                ax.plot([v, v], [y - 0.3, y + 0.3], color=c, lw=2.5)
                xs.append(v)
            ax.set_title(title)
            # Explicit limits over every bar, seed and estimate: autoscaling stops at a
            # bar's sticky left edge, which clipped bars and estimates at the axis.
            xs = np.asarray([x for x in xs if np.isfinite(x)])
            if xs.size:
                span = float(xs.max() - xs.min()) or max(1.0, abs(float(xs.max())))
                ax.set_xlim(float(xs.min()) - 0.08 * span, float(xs.max()) + 0.08 * span)
            ax.set_xlabel("final true episode return")
            ax.grid(axis="y", visible=False)
        axes[0].set_yticks(ypos, [r["run"] for r in agg_rows])
        fig.suptitle(f"Final return over seeds, {env} (95% CIs)", y=1.0)
        fig.tight_layout()
        write_csv(out_dir / f"{name}.csv", agg_rows)
        paths += _save(fig, out_dir, name) + [out_dir / f"{name}.csv"]

        name = f"performance_profile{sfx}"
        finite = np.concatenate([v for v in scores.values() if v.size] or [np.zeros(1)])
        lo_t, hi_t = float(finite.min()), float(finite.max())
        pad = 0.05 * (hi_t - lo_t) if hi_t > lo_t else 1.0
        taus = np.linspace(lo_t - pad, hi_t + pad, 101)
        prof = compute_performance_profile(scores, taus, reps=reps, seed=seed)
        prof_rows = []
        fig, ax = plt.subplots(figsize=(7, 4.3))
        for run in group:
            frac, plo, phi = prof[run.label]
            c = _color(runs.index(run))
            ax.plot(taus, frac, color=c, lw=1.8, label=f"{run.label} (n={scores[run.label].size})")
            if scores[run.label].size < MIN_SEEDS_FOR_BAND:  # a step per seed, no band
                plo, phi = np.full_like(frac, np.nan), np.full_like(frac, np.nan)
            else:
                ax.fill_between(taus, plo, phi, color=c, alpha=0.2, lw=0)
            prof_rows += [
                {
                    "run": run.label,
                    "env_id": env,
                    "tau": float(t),
                    "fraction": float(f),
                    "ci_lo": float(a),
                    "ci_hi": float(b),
                }
                for t, f, a, b in zip(taus, frac, plo, phi, strict=False)
            ]
        ax.set_xlabel("final true episode return threshold τ")
        ax.set_ylabel("fraction of seeds with return > τ")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"Performance profile, {env} (95% bootstrap bands)")
        # Below the axes: a profile falls from 1 to 0 across the whole width, so any spot
        # inside covers some curve.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=min(3, len(group)),
                  frameon=False)
        write_csv(out_dir / f"{name}.csv", prof_rows)
        paths += _save(fig, out_dir, name) + [out_dir / f"{name}.csv"]
    return paths


def make_all_figures(
    runs: list[RunData], out_dir, reps: int = DEFAULT_BOOTSTRAP_REPS, seed: int = 0
) -> list[pathlib.Path]:
    """Write every figure (PNG, SVG and CSV) for ``runs`` into ``out_dir``.

    Runs on different environments are never overlaid: the curves, BALD and aggregate
    figures are drawn per environment (stem suffix ``_ENV``); see :func:`env_warning`.
    """
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    groups = _env_groups(runs)
    with plt.rc_context(STYLE):
        for env, group in groups.items():
            sfx = _suffix(env, groups)
            for name in LINE_FIGURES:
                paths += plot_line_figure(group, out_dir, name, sfx, reps, seed)
            paths += plot_bald(group, out_dir, "bald_vs_env_steps" + sfx, reps, seed)
        paths += plot_feedback_split(runs, out_dir, reps=reps, seed=seed)
        paths += plot_final_aggregates(runs, out_dir, reps=reps, seed=seed)
    return paths


def env_warning(runs: list[RunData]) -> str | None:
    """One line when the runs are on several environments (None otherwise)."""
    groups = _env_groups(runs)
    if len(groups) < 2:
        return None
    parts = "; ".join(f"{env}: {', '.join(r.label for r in g)}" for env, g in groups.items())
    return (f"warning: the runs are on {len(groups)} environments ({parts}); their returns "
            "are not comparable, so each figure is drawn per environment (file suffix _ENV)")
