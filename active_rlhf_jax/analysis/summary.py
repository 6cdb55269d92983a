"""Final-return summary table across runs: mean with t-CI, IQM with bootstrap CI (rliable)."""

from __future__ import annotations

import csv
import math
import pathlib

import numpy as np

from active_rlhf_jax.analysis.loading import RunData
from active_rlhf_jax.analysis.stats import DEFAULT_BOOTSTRAP_REPS, compute_iqm_ci, compute_mean_ci

COLUMNS = (
    "run",
    "env_id",
    "n_seeds",
    "mean",
    "mean_ci_lo",
    "mean_ci_hi",
    "iqm",
    "iqm_ci_lo",
    "iqm_ci_hi",
    "env_steps",
    "queries_total",
    "source",
)


def _last_mean(run: RunData, name: str) -> float:
    """Mean over seeds of each seed's last finite value of ``name``."""
    vals = []
    for row in run.field(name):
        finite = np.flatnonzero(np.isfinite(row))
        if finite.size:
            vals.append(row[finite[-1]])
    return float(np.mean(vals)) if vals else math.nan


def compute_summary(
    runs: list[RunData], reps: int = DEFAULT_BOOTSTRAP_REPS, seed: int = 0
) -> list[dict]:
    """One row per run: final true return statistics over seeds (see module docstring)."""
    rows = []
    for run in runs:
        scores, source = run.final_scores()
        finite = scores[np.isfinite(scores)]
        mean, lo, hi, n = compute_mean_ci(finite)
        iqm, iqm_lo, iqm_hi = compute_iqm_ci(finite, reps=reps, seed=seed)
        rows.append(
            {
                "run": run.label,
                "env_id": run.env_id,
                "n_seeds": int(n),
                "mean": float(mean),
                "mean_ci_lo": float(lo),
                "mean_ci_hi": float(hi),
                "iqm": iqm,
                "iqm_ci_lo": iqm_lo,
                "iqm_ci_hi": iqm_hi,
                "env_steps": _last_mean(run, "env_steps"),
                "queries_total": _last_mean(run, "queries_total"),
                "source": source,
            }
        )
    return rows


def _fmt(x: float, digits: int = 1) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:,.{digits}f}"


def _fmt_count(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:,.0f}"


def format_markdown(rows: list[dict], reps: int = DEFAULT_BOOTSTRAP_REPS) -> str:
    """Markdown table of :func:`compute_summary` rows, with a note on the statistics."""
    lines = [
        "| run | env | seeds | env steps | queries | mean return [95% CI] | IQM [95% CI] |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['run']} | {r['env_id'] or '?'} | {r['n_seeds']} | {_fmt_count(r['env_steps'])} "
            f"| {_fmt_count(r['queries_total'])} "
            f"| {_fmt(r['mean'])} [{_fmt(r['mean_ci_lo'])}, {_fmt(r['mean_ci_hi'])}] "
            f"| {_fmt(r['iqm'])} [{_fmt(r['iqm_ci_lo'])}, {_fmt(r['iqm_ci_hi'])}] |"
        )
    sources = sorted({r["source"] for r in rows})
    lines.append("")
    lines.append(
        "Final true episode return per seed (source: " + ", ".join(sources) + "). Mean: "
        "Student-t 95% CI over seeds. IQM: interquartile mean with a percentile "
        f"stratified-bootstrap 95% CI ({reps} resamples, rliable)."
    )
    return "\n".join(lines) + "\n"


def write_csv(path: pathlib.Path, rows: list[dict], columns=None) -> None:
    """Write dict rows as CSV (NaN written as an empty cell)."""
    columns = list(columns or (rows[0].keys() if rows else []))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow(
                {k: ("" if isinstance(r[k], float) and math.isnan(r[k]) else r[k]) for k in columns}
            )
