"""Offline analysis of run directories: loading, statistics, figures and summary tables.

Nothing here imports JAX or MuJoCo, so ``active-rlhf plot``/``compare`` start fast and run
on any machine that has the run directories.
"""

from active_rlhf_jax.analysis.loading import RunData, load_run, load_runs
from active_rlhf_jax.analysis.stats import (
    compute_iqm_ci,
    compute_mean_ci,
    compute_performance_profile,
)

__all__ = [
    "RunData",
    "compute_iqm_ci",
    "compute_mean_ci",
    "compute_performance_profile",
    "load_run",
    "load_runs",
]
