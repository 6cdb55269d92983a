"""Read run directories (``config.json``, ``metrics.jsonl``, ``final_eval.json``).

A finished run's metrics may also be stored gzipped, ``metrics.jsonl.gz``: the records
committed under ``benchmarks/results/`` are, because metrics are four fifths of the
tracked tree and a device call carries the whole tree in 64 MiB with the wheels. Every
reader here takes either file (the plain one when both exist).

A run directory is one configuration trained with several seeds (see docs/CONTRACTS.md).
``metrics.jsonl`` holds one JSON object per seed per iteration; here it becomes one
``[n_seeds, n_iterations]`` float array per field, aligned on ``iteration`` (NaN where a
seed has no row for an iteration or logged ``null``).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import pathlib
from typing import Any

import numpy as np

from active_rlhf_jax.config import ConfigError

METRICS_FILE = "metrics.jsonl"
METRICS_FILE_GZ = METRICS_FILE + ".gz"
CONFIG_FILE = "config.json"
FINAL_EVAL_FILE = "final_eval.json"

#: Fields the figures read (all other numeric fields are loaded too).
PLOT_FIELDS = (
    "env_steps",
    "queries_pref",
    "queries_eval",
    "queries_total",
    "true_return",
    "reward_corr",
    "bald_pref",
    "bald_eval",
    "n_pref",
    "n_eval",
)


@dataclasses.dataclass(frozen=True)
class RunData:
    """One run directory in memory.

    Attributes:
        path: the directory.
        label: legend label (the directory name unless given).
        config: parsed ``config.json`` (empty dict when missing).
        env_id: environment id found in the config (``""`` when unknown).
        seeds: seed ids ``[S]`` in row order.
        iterations: iteration numbers ``[I]`` (sorted union over seeds).
        fields: field name -> ``[S, I]`` float64 (NaN = missing).
        final_eval: parsed ``final_eval.json`` or None.
    """

    path: pathlib.Path
    label: str
    config: dict
    env_id: str
    seeds: np.ndarray
    iterations: np.ndarray
    fields: dict[str, np.ndarray]
    final_eval: dict | None

    def field(self, name: str) -> np.ndarray:
        """``[S, I]`` values of ``name`` (all NaN when the field was never logged)."""
        if name in self.fields:
            return self.fields[name]
        return np.full((len(self.seeds), len(self.iterations)), np.nan)

    def final_scores(self) -> tuple[np.ndarray, str]:
        """Final true return per seed ``[S']`` and where it came from.

        ``final_eval.json`` (deterministic evaluation episodes, mean per seed) when the
        directory has one, else the last logged ``true_return`` of each seed.
        """
        if self.final_eval and self.final_eval.get("seeds"):
            vals = [_to_float(s.get("mean")) for s in self.final_eval["seeds"]]
            return np.asarray(vals, np.float64), FINAL_EVAL_FILE
        tr = self.field("true_return")
        last = np.full(tr.shape[0], np.nan)
        for i, row in enumerate(tr):
            finite = np.flatnonzero(np.isfinite(row))
            if finite.size:
                last[i] = row[finite[-1]]
        return last, "last true_return"


def _to_float(v: Any) -> float:
    if v is None or isinstance(v, bool):
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _find_key(tree: Any, key: str) -> Any:
    """Depth-first search for ``key`` in nested dicts (config layouts may nest env_id)."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for v in tree.values():
            found = _find_key(v, key)
            if found is not None:
                return found
    return None


def metrics_path(run_dir) -> pathlib.Path | None:
    """``run_dir``'s ``metrics.jsonl``, else its ``metrics.jsonl.gz``, else None."""
    run_dir = pathlib.Path(run_dir)
    for name in (METRICS_FILE, METRICS_FILE_GZ):
        if (run_dir / name).is_file():
            return run_dir / name
    return None


def read_metrics(path: pathlib.Path) -> list[dict]:
    """Parse ``metrics.jsonl`` (gzipped if the name ends in ``.gz``); a truncated last
    line (a run still writing) is skipped.

    Raises:
        ConfigError (a ValueError naming the file): a malformed line other than the last,
            or a row without seed/iteration.
    """
    rows = []
    path = pathlib.Path(path)
    if path.suffix == ".gz":
        with gzip.open(path, "rt") as fh:
            lines = fh.read().splitlines()
    else:
        lines = path.read_text().splitlines()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if lineno == len(lines):
                break
            raise ConfigError(f"{path}:{lineno}", f"not JSON ({e.msg})") from None
        if not isinstance(row, dict) or "seed" not in row or "iteration" not in row:
            raise ConfigError(f"{path}:{lineno}", "row lacks 'seed' or 'iteration'")
        rows.append(row)
    return rows


def load_run(run_dir: str | pathlib.Path, label: str | None = None) -> RunData:
    """Load one run directory.

    Raises:
        FileNotFoundError: the directory has no ``metrics.jsonl``.
        ConfigError (a ValueError naming the file): no rows yet, or a damaged file.
    """
    run_dir = pathlib.Path(run_dir)
    mpath = metrics_path(run_dir)
    if mpath is None:
        what = "no such directory" if not run_dir.is_dir() else f"no {METRICS_FILE}(.gz)"
        raise FileNotFoundError(f"{run_dir}: {what} (is this a run directory?)")
    rows = read_metrics(mpath)
    if not rows:
        raise ConfigError(str(mpath), "has no rows yet (the run has not finished a chunk)")
    config = _read_json(run_dir / CONFIG_FILE) or {}
    final_eval = _read_json(run_dir / FINAL_EVAL_FILE)
    env_id = _find_key(config, "env_id") or (final_eval or {}).get("env_id") or ""

    seeds = np.array(sorted({int(r["seed"]) for r in rows}), dtype=np.int64)
    iterations = np.array(sorted({int(r["iteration"]) for r in rows}), dtype=np.int64)
    s_idx = {int(s): i for i, s in enumerate(seeds)}
    i_idx = {int(it): j for j, it in enumerate(iterations)}
    names = sorted({k for r in rows for k in r} - {"seed", "iteration"})
    fields = {}
    for name in names:
        arr = np.full((len(seeds), len(iterations)), np.nan)
        numeric = False
        for r in rows:
            if name in r and not isinstance(r[name], (str, list, dict)):
                arr[s_idx[int(r["seed"])], i_idx[int(r["iteration"])]] = _to_float(r[name])
                numeric = True
        if numeric:
            fields[name] = arr
    return RunData(
        path=run_dir,
        label=label or run_dir.resolve().name,
        config=config,
        env_id=str(env_id),
        seeds=seeds,
        iterations=iterations,
        fields=fields,
        final_eval=final_eval,
    )


def pool_runs(runs: list[RunData], label: str) -> RunData:
    """One RunData with the seeds of ``runs`` (one arm's directories, e.g. the seed groups
    of a sweep), aligned on the union of their iterations; the first run's path and config,
    and the final evaluations' seeds concatenated.

    Raises:
        ConfigError: a seed in two of the runs (naming the second directory).
    """
    if len(runs) == 1:
        return dataclasses.replace(runs[0], label=label)
    seen: dict[int, pathlib.Path] = {}
    for r in runs:
        for sd in r.seeds.tolist():
            if sd in seen:
                raise ConfigError(str(r.path), f"seed {sd} is also in {seen[sd]}; each seed "
                                  "of an arm once")
            seen[sd] = r.path
    iterations = np.array(sorted(set().union(*(r.iterations.tolist() for r in runs))), np.int64)
    names = sorted(set().union(*(r.fields for r in runs)))
    fields = {}
    for name in names:
        parts = []
        for r in runs:
            arr = np.full((len(r.seeds), len(iterations)), np.nan)
            arr[:, np.searchsorted(iterations, r.iterations)] = r.field(name)
            parts.append(arr)
        fields[name] = np.concatenate(parts, axis=0)
    evals = [r.final_eval for r in runs]
    final_eval = None
    if all(e and e.get("seeds") for e in evals):
        final_eval = dict(evals[0], seeds=[sd for e in evals for sd in e["seeds"]])
    return RunData(path=runs[0].path, label=label, config=runs[0].config,
                   env_id=runs[0].env_id,
                   seeds=np.concatenate([r.seeds for r in runs]), iterations=iterations,
                   fields=fields, final_eval=final_eval)


def _read_json(path: pathlib.Path):
    """Parsed JSON object of ``path``, None when missing; damage is a ConfigError."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(str(path), f"is not valid JSON ({e.msg}); the file is damaged") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "is not a JSON object; the file is damaged")
    return data


def load_runs(run_dirs, labels=None) -> list[RunData]:
    """Load several run directories; ``labels`` (optional) must match their number.

    Raises:
        ValueError: wrong number of labels, or duplicate labels.
    """
    run_dirs = list(run_dirs)
    if labels is not None and len(labels) != len(run_dirs):
        raise ConfigError("labels", f"--labels gives {len(labels)} labels for {len(run_dirs)} "
                          "run directories")
    runs = [load_run(d, None if labels is None else labels[i]) for i, d in enumerate(run_dirs)]
    seen: dict[str, int] = {}
    for r in runs:
        seen[r.label] = seen.get(r.label, 0) + 1
    dups = [k for k, v in seen.items() if v > 1]
    if dups:
        raise ConfigError("labels", f"duplicate run labels {dups}; pass --labels to tell the "
                          "runs apart")
    return runs
