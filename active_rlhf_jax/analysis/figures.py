"""Figures for ``active-rlhf plot``: PNG + SVG, with the numbers behind each in a CSV beside it.

Every curve is the mean over a run's seeds at each iteration with a Student-t 95% band
(:func:`~active_rlhf_jax.analysis.stats.compute_mean_ci`); its x value is the mean over
seeds of ``env_steps`` or ``queries_total`` logged in the same row, so x and y always come
from the same metrics row (the reference project's mixed step axes cannot happen).
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
    compute_iqm_ci,
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


def series_rows(run: RunData, y_field: str, x_field: str) -> list[dict]:
    """Per-iteration mean and CI of ``y_field`` over seeds, at the mean ``x_field``."""
    x = run.field(x_field)
    y = run.field(y_field)
    mean, lo, hi, n = compute_mean_ci(y, axis=0)
    with np.errstate(all="ignore"):
        xm, _, _, _ = compute_mean_ci(x, axis=0)
    rows = []
    for j, it in enumerate(run.iterations):
        rows.append(
            {
                "run": run.label,
                "iteration": int(it),
                x_field: float(xm[j]),
                "mean": float(mean[j]),
                "ci_lo": float(lo[j]),
                "ci_hi": float(hi[j]),
                "n_seeds": int(n[j]),
            }
        )
    return rows


#: Valid range of a plotted quantity: the drawn CI band is clipped to it (the CSV keeps
#: the raw Student-t interval, which with few seeds can leave the range).
Y_RANGE = {"reward_corr": (-1.0, 1.0)}


def _draw_series(ax, rows: list[dict], x_field: str, color, label: str,
                 y_range=(-np.inf, np.inf)) -> bool:
    xs = np.array([r[x_field] for r in rows])
    m = np.array([r["mean"] for r in rows])
    lo = np.array([r["ci_lo"] for r in rows])
    hi = np.array([r["ci_hi"] for r in rows])
    ok = np.isfinite(xs) & np.isfinite(m)
    if not ok.any():
        return False
    order = np.argsort(xs[ok], kind="stable")
    xs, m, lo, hi = xs[ok][order], m[ok][order], lo[ok][order], hi[ok][order]
    lo, hi = np.clip(lo, *y_range), np.clip(hi, *y_range)
    n_seeds = max(r["n_seeds"] for r in rows)
    ax.plot(
        xs,
        m,
        color=color,
        lw=1.8,
        marker="o" if len(xs) < 15 else None,
        ms=3,
        label=f"{label} (n={n_seeds})",
    )
    band = np.isfinite(lo) & np.isfinite(hi)
    if band.any():
        ax.fill_between(
            xs, np.where(band, lo, m), np.where(band, hi, m), color=color, alpha=0.2, lw=0
        )
    return True


def plot_line_figure(runs: list[RunData], out_dir: pathlib.Path, name: str) -> list[pathlib.Path]:
    """One of :data:`LINE_FIGURES`: one line per run, mean ± 95% CI over seeds."""
    y_field, x_field, ylabel, title = LINE_FIGURES[name]
    fig, ax = plt.subplots(figsize=(7, 4.3))
    all_rows, drawn = [], False
    for i, run in enumerate(runs):
        rows = series_rows(run, y_field, x_field)
        all_rows += rows
        drawn |= _draw_series(
            ax, rows, x_field, _color(i), run.label, Y_RANGE.get(y_field, (-np.inf, np.inf))
        )
    ax.set_xlabel(X_LABELS[x_field])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))
    if drawn:
        ax.legend(loc="best", frameon=False)
    else:
        _no_data(ax, f"{y_field} against {x_field}")
    write_csv(
        out_dir / f"{name}.csv",
        all_rows,
        ["run", "iteration", x_field, "mean", "ci_lo", "ci_hi", "n_seeds"],
    )
    return _save(fig, out_dir, name) + [out_dir / f"{name}.csv"]


def plot_bald(runs: list[RunData], out_dir: pathlib.Path, name: str = "bald_vs_env_steps"):
    """Mean BALD of the acquired queries per modality (nats) vs env steps, one panel each."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharex=True)
    all_rows = []
    for ax, (field, title) in zip(
        axes,
        [("bald_pref", "preferences (pairs)"), ("bald_eval", "ratings (single clips)")],
        strict=False,
    ):
        drawn = False
        for i, run in enumerate(runs):
            rows = series_rows(run, field, "env_steps")
            for r in rows:
                r["modality"] = field
            all_rows += rows
            drawn |= _draw_series(ax, rows, "env_steps", _color(i), run.label)
        ax.set_title(f"Mean BALD: {title}")
        ax.set_xlabel(X_LABELS["env_steps"])
        ax.set_ylabel("mean BALD (nats)")
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        if drawn:
            ax.legend(loc="best", frameon=False)
        else:
            _no_data(ax, field)
    fig.tight_layout()
    write_csv(
        out_dir / f"{name}.csv",
        all_rows,
        ["run", "modality", "iteration", "env_steps", "mean", "ci_lo", "ci_hi", "n_seeds"],
    )
    return _save(fig, out_dir, name) + [out_dir / f"{name}.csv"]


def plot_feedback_split(runs: list[RunData], out_dir: pathlib.Path, name: str = "feedback_split"):
    """Per-iteration queries by modality (``n_pref`` below, ``n_eval`` stacked on top), mean
    over seeds with 95% CI whiskers; one panel per run (what the fixed or adaptive
    allocation rule chose)."""
    n = len(runs)
    cols = 1 if n == 1 else 2
    rows_n = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows_n, cols, figsize=(7 if cols == 1 else 11, 3.6 * rows_n), squeeze=False
    )
    all_rows = []
    for k, run in enumerate(runs):
        ax = axes[k // cols][k % cols]
        pm, plo, phi, pn = compute_mean_ci(run.field("n_pref"))
        em, elo, ehi, _ = compute_mean_ci(run.field("n_eval"))
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
                }
            )
        it = run.iterations.astype(float)
        p = np.nan_to_num(pm)
        e = np.nan_to_num(em)
        if np.isfinite(pm).any() or np.isfinite(em).any():
            width = 0.85
            ax.bar(it, p, width, color=PREF_COLOR, label="preferences (n_pref)")
            ax.bar(it, e, width, bottom=p, color=EVAL_COLOR, label="ratings (n_eval)")
            if len(it) <= 60:  # whiskers are unreadable on long runs
                ax.errorbar(
                    it,
                    p,
                    yerr=_yerr(pm, plo, phi),
                    fmt="none",
                    ecolor="0.2",
                    elinewidth=0.8,
                    capsize=2,
                )
                ax.errorbar(
                    it,
                    p + e,
                    yerr=_yerr(em, elo, ehi),
                    fmt="none",
                    ecolor="0.2",
                    elinewidth=0.8,
                    capsize=2,
                )
            ax.legend(loc="upper right", frameon=True, framealpha=0.9)
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
    """Whisker lengths; counts cannot be negative, so the lower end stops at 0."""
    m = np.asarray(m)
    return np.stack([np.nan_to_num(m - np.maximum(lo, 0.0)), np.nan_to_num(hi - m)])


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
            for i, (r, y) in enumerate(zip(agg_rows, ypos, strict=False)):
                c = _color(runs.index(group[i]))
                v, lo, hi = r[key], r[f"{key}_ci_lo"], r[f"{key}_ci_hi"]
                if np.isfinite(lo) and np.isfinite(hi):
                    ax.barh(y, hi - lo, left=lo, height=0.5, color=c, alpha=0.45)
                ax.plot([v, v], [y - 0.3, y + 0.3], color=c, lw=2.5)
            ax.set_title(title)
            ax.margins(x=0.08)
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
        ax.legend(loc="best", frameon=False)
        write_csv(out_dir / f"{name}.csv", prof_rows)
        paths += _save(fig, out_dir, name) + [out_dir / f"{name}.csv"]
    return paths


def make_all_figures(
    runs: list[RunData], out_dir, reps: int = DEFAULT_BOOTSTRAP_REPS, seed: int = 0
) -> list[pathlib.Path]:
    """Write every figure (PNG, SVG and CSV) for ``runs`` into ``out_dir``."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    with plt.rc_context(STYLE):
        for name in LINE_FIGURES:
            paths += plot_line_figure(runs, out_dir, name)
        paths += plot_bald(runs, out_dir)
        paths += plot_feedback_split(runs, out_dir)
        paths += plot_final_aggregates(runs, out_dir, reps=reps, seed=seed)
    return paths
