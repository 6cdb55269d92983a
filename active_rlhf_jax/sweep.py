"""``active-rlhf sweep``: an experiment matrix, one run directory per arm.

An *arm* is a preset part (or several joined by ``+``) appended to the sweep's base preset:
``--preset cheetah+results --arms ground-truth,pref-random,pref-bald`` runs
``cheetah+results+ground-truth`` into ``OUT/ground-truth``, and so on. Every arm uses the
same seeds (``PRNGKey(seed + i)``), so arms are paired seed by seed; each arm's seeds run in
one vmapped call (:func:`active_rlhf_jax.pipeline.runner.run`).

Rerunning the same command continues the matrix: an arm with a ``final_eval.json`` is
skipped, an arm with a ``config.json`` but no final evaluation is resumed from its newest
checkpoint, and the others start. ``OUT/sweep.json`` records the base preset, the seeds and
the field overrides; a rerun that would change them exits 2 (arms may be added).

After each arm (for MuJoCo tasks, when ``gym_eval_episodes > 0``) the final policies are
evaluated deterministically in Gymnasium's own environment with the run's task options,
into ``OUT/ARM/final_eval_gymnasium.json``: the protocol's headline number.

Grids. An arm part may also be a field setting, ``FIELD=VALUE`` (e.g.
``pref-bald+reward.lr=0.001``), and ``--grid FIELD=V1,V2`` crosses every arm with every
value (:func:`expand_grid`): ``--arms pref-random,pref-bald --grid reward.lr=1e-3,3e-4``
gives four cells, ``pref-random+reward.lr=1e-3`` and so on, each its own run directory,
paired seed by seed like any arms.

One program, many cells. Cells (and arms) that differ only in what the pipeline reads
from its state (``pipeline/hyper.py``: teacher noise, the reward model's optimiser, loss
weights and dropout, the acquisition's split and cost scalars, PPO's step size, clip
range and loss coefficients, the acquisition method and allocation rule, the feedback
kind other than ground truth) run as one batch of ``cells x seeds`` runs of one compiled
program (:func:`active_rlhf_jax.pipeline.runner.run_cells`), split over the devices like
seeds. Cells that differ in a field the program compiles in (e.g. ``ppo.num_envs``, the
teacher's rating scale) fall back to one program per combination of those fields, and the sweep names the
fields on stderr. ``cells_per_call`` caps the cells of one call (memory); new and
interrupted cells never share a call, so an interrupted cell keeps its progress.
"""

from __future__ import annotations

import functools
import io
import json
import os
import sys
from pathlib import Path

from active_rlhf_jax.analysis.matrix import GYM_EVAL_FILE, SWEEP_FILE
from active_rlhf_jax.config import ConfigError, load_config_dict, to_dict


@functools.lru_cache(maxsize=1)
def _field_defaults() -> dict:
    """``{dotted leaf field: default value}`` of the whole Config (built once)."""
    from active_rlhf_jax.config import Config, leaf_values

    return leaf_values(Config())


def _check_setting(part: str, where: str) -> tuple[str, str]:
    """``"reward.lr=0.001"`` -> ``("reward.lr", "0.001")``, naming ``where`` if it is not a
    scalar config field (tuple fields hold commas, which separate arms and grid values)."""
    name, _, text = part.partition("=")
    defaults = _field_defaults()
    if name not in defaults or name == "seeds":
        raise ConfigError(where, f"unknown config field {name!r} in {part!r}")
    if isinstance(defaults[name], tuple):
        raise ConfigError(where, f"{name} holds a tuple, which a sweep cannot vary (use "
                          "--preset or the field's own flag)")
    if not text:
        raise ConfigError(where, f"no value for {name} in {part!r}")
    return name, text


def parse_arms(text: str) -> list[str]:
    """``"a,b+noisy,c+reward.lr=0.001"`` -> a list of arms; one-line ConfigError on an empty
    or bad list. An arm joins preset parts and ``FIELD=VALUE`` settings with ``+``."""
    from configs.presets import all_names

    arms = [a.strip() for a in (text or "").split(",")]
    if not text or any(not a for a in arms):
        raise ConfigError("arms", f"expected a comma-separated list of presets, got {text!r}")
    known = set(all_names())
    for arm in arms:
        for part in arm.split("+"):
            if "=" in part:
                _check_setting(part, "arms")
            elif part not in known:
                raise ConfigError("arms", f"unknown preset {part!r} in arm {arm!r}")
    if len(set(arms)) != len(arms):
        raise ConfigError("arms", f"an arm is listed twice: {text!r}")
    return arms


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
    """``["reward.lr=1e-3,3e-4", ...]`` -> ``[("reward.lr", ["1e-3", "3e-4"]), ...]``.

    Raises:
        ConfigError("grid"): not FIELD=V1,V2,..., an unknown or tuple field, an empty or
            repeated value, a field given twice.
    """
    out, seen = [], set()
    for spec in specs:
        if "=" not in spec:
            raise ConfigError("grid", f"expected FIELD=V1,V2,..., got {spec!r}")
        name, _, values_text = spec.partition("=")
        values = [v.strip() for v in values_text.split(",")]
        if not values_text or any(not v for v in values):
            raise ConfigError("grid", f"{name}: expected a comma-separated list of values, "
                              f"got {values_text!r}")
        for v in values:
            if "+" in v:
                raise ConfigError("grid", f"{name}: '+' joins arm parts, so a value cannot hold "
                                  f"it ({v!r}: write 1e3, not 1e+3)")
            _check_setting(f"{name}={v}", "grid")
        if len(set(values)) != len(values):
            raise ConfigError("grid", f"{name}: a value is listed twice: {values_text!r}")
        if name in seen:
            raise ConfigError("grid", f"{name} is given twice")
        seen.add(name)
        out.append((name, values))
    return out


def expand_grid(arms: list[str], grid: list[tuple[str, list[str]]]) -> list[str]:
    """Every arm crossed with every combination of grid values, in order (arms outermost,
    the last grid field fastest): ``["a"] x [("x", ["1", "2"])]`` -> ``["a+x=1", "a+x=2"]``.
    With no arms, the cells are the grid's combinations alone. A field both in an arm and
    in the grid is refused (ConfigError naming "grid")."""
    import itertools

    combos = [[f"{name}={v}" for v in values] for name, values in grid]
    cells = []
    for arm in arms or [""]:
        fixed = {p.partition("=")[0] for p in arm.split("+") if "=" in p}
        for name, _ in grid:
            if name in fixed:
                raise ConfigError("grid", f"{name} is set by arm {arm!r} and by the grid")
        for combo in itertools.product(*combos):
            cells.append("+".join(([arm] if arm else []) + list(combo)))
    return cells


def arm_config(preset: str, arm: str, changes: dict, seeds: int | None,
               validate: bool = True):
    """The validated Config of one arm: ``preset`` plus the arm's preset parts, then the
    arm's ``FIELD=VALUE`` settings, then ``changes`` (the sweep's own flags) and seeds.
    ``validate=False`` skips the check (an arm valid only with the sweep's flags, read for
    the flags' types)."""
    from active_rlhf_jax.config import parse_value, replace
    from configs.presets import get_preset

    parts = [p for p in arm.split("+") if p] if arm else []
    presets = [p for p in parts if "=" not in p]
    cfg = get_preset("+".join([preset] + presets))
    defaults = _field_defaults()
    settings = {}
    for part in parts:
        if "=" in part:
            name, text = _check_setting(part, "arms")
            settings[name] = parse_value(text, defaults[name], name)
    if settings:
        settings["name"] = f"{preset}+{arm}"
    cfg = replace(cfg, **settings)
    changes = dict(changes)
    if seeds is not None:
        changes["seeds"] = seeds
    cfg = replace(cfg, **changes)
    return cfg.validate() if validate else cfg


def _check_sweep_file(out: Path, record: dict) -> list[str]:
    """Compare with a previous sweep into ``out``; returns the arms it already listed."""
    path = out / SWEEP_FILE
    if not path.is_file():
        return []
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise ConfigError("out", f"{path} is not valid JSON") from None
    for key in ("preset", "seeds", "changes"):
        if old.get(key) != record[key]:
            raise ConfigError(
                key if key != "changes" else "fields",
                f"{out} holds a sweep with {key}={old.get(key)!r}, this call has "
                f"{record[key]!r} (arms must stay paired; use another --out)",
            )
    return list(old.get("arms", []))


def arm_status(arm_dir: Path) -> str:
    """``done`` (final_eval.json), ``partial`` (config.json only) or ``new``."""
    if (arm_dir / "final_eval.json").is_file():
        return "done"
    if (arm_dir / "config.json").is_file():
        return "partial"
    return "new"


def gym_evaluate(arm_dir: Path, episodes: int) -> dict | None:
    """Deterministic episodes in Gymnasium's env -> the evaluation record (the schema of
    ``final_eval.json``), written to GYM_EVAL_FILE."""
    from active_rlhf_jax.evaluation import evaluate

    record = evaluate(arm_dir, episodes=episodes, backend="gymnasium")
    tmp = arm_dir / (GYM_EVAL_FILE + ".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, arm_dir / GYM_EVAL_FILE)
    return record


def run_sweep(
    preset: str,
    arms: list[str],
    out_dir,
    changes: dict | None = None,
    seeds: int | None = None,
    progress: bool = True,
    gym_eval_episodes: int = 10,
    max_chunks: int | None = None,
    log=None,
    cells_per_call: int = 0,
) -> list[dict]:
    """Run every arm into ``out_dir/ARM`` (skipping finished ones, resuming partial ones).

    Args:
        preset: base preset, e.g. ``cheetah+results``.
        arms: arm preset parts (see :func:`parse_arms`).
        changes: ``{dotted field: value}`` applied to every arm after its presets.
        seeds: seeds per arm (the preset's when None).
        gym_eval_episodes: episodes per seed of the Gymnasium evaluation (0: none; never
            for probe environments, which Gymnasium does not have).
        max_chunks: stop each arm after this many chunks in this call (tests of resume).
        log: where the one-line notes go (default stderr).
        cells_per_call: at most this many cells in one compiled call (0: no limit).

    Returns:
        one record per arm: ``{"arm", "dir", "status" (before this call), "summary"}``.
    """
    from active_rlhf_jax.pipeline.runner import run_cells

    log = log or sys.stderr
    changes = dict(changes or {})
    # Every arm's config is built and validated before anything is written or compiled.
    configs = {arm: arm_config(preset, arm, changes, seeds) for arm in arms}
    n_seeds = {c.seeds for c in configs.values()}
    if len(n_seeds) != 1:
        raise ConfigError("seeds", f"arms disagree on the number of seeds: {sorted(n_seeds)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError("out", f"{out} exists and is not a directory")
    record = {"preset": preset, "seeds": n_seeds.pop(), "changes": _jsonable(changes)}
    previous = _check_sweep_file(out, record)
    for arm, cfg in configs.items():
        arm_dir = out / arm
        if arm_status(arm_dir) != "new":
            saved = json.loads((arm_dir / "config.json").read_text())
            if to_dict(load_config_dict(saved)) != to_dict(cfg):
                raise ConfigError(
                    "arms", f"{arm_dir} holds a run with another config than arm {arm!r} "
                    "(the code's defaults or the preset changed?); use another --out"
                )
    from active_rlhf_jax.pipeline import distributed as dist

    main = dist.is_main_process()  # under jax.distributed, process 0 writes the files
    record["arms"] = previous + [a for a in arms if a not in previous]
    if main:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / (SWEEP_FILE + ".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, out / SWEEP_FILE)
    # Every process plans from the same directory state before any call writes to it.
    groups = plan_programs(out, configs, cells_per_call)
    dist.barrier("sweep-planned")

    log = log if main else io.StringIO()  # one process speaks
    _say_plan(groups, configs, log)
    results = {}
    for arm in configs:
        if arm_status(out / arm) == "done":
            print(f"sweep: {arm}: done, skipped", file=log, flush=True)
            results[arm] = {"arm": arm, "dir": str(out / arm), "status": "done",
                            "summary": None}
    for g, (status, group) in enumerate(groups, 1):
        print(f"sweep: program {g}/{len(groups)}: {', '.join(group)}"
              + (" (resuming)" if status == "partial" else ""), file=log, flush=True)
        dirs = [out / arm for arm in group]
        if status == "new":
            summaries = run_cells([configs[a] for a in group], dirs, progress=progress,
                                  max_chunks=max_chunks)
        else:
            summaries = run_cells([None] * len(group), dirs, resume=True, progress=progress,
                                  max_chunks=max_chunks)
        for arm, summary in zip(group, summaries):
            results[arm] = {"arm": arm, "dir": str(out / arm), "status": status,
                            "summary": summary}
    for arm, cfg in configs.items():
        arm_dir = out / arm
        if (main and arm_status(arm_dir) == "done" and gym_eval_episodes > 0
                and not cfg.env.env_id.startswith("probe/")
                and not (arm_dir / GYM_EVAL_FILE).is_file()):
            gs = gym_evaluate(arm_dir, gym_eval_episodes)
            print(f"sweep: {arm}: Gymnasium evaluation {gs['mean']:.1f} "
                  f"({gym_eval_episodes} episodes x {gs['num_seeds']} seeds)", file=log, flush=True)
    return [results[arm] for arm in configs]


def plan_programs(out: Path, configs: dict, cells_per_call: int = 0) -> list[tuple[str, list]]:
    """The unfinished arms grouped into calls: ``[(status, [arm, ...]), ...]`` in arm order.

    Arms share a call when they are equally far (all new, or all interrupted) and their
    configs differ only in traced fields (:func:`~active_rlhf_jax.pipeline.hyper.program_key`);
    ``cells_per_call > 0`` splits larger groups.
    """
    from active_rlhf_jax.pipeline.hyper import program_key

    groups: dict = {}
    for arm, cfg in configs.items():
        status = arm_status(out / arm)
        if status != "done":
            groups.setdefault((status, program_key(cfg)), []).append(arm)
    calls = []
    for (status, _), arms in groups.items():
        size = cells_per_call if cells_per_call > 0 else len(arms)
        calls += [(status, arms[i:i + size]) for i in range(0, len(arms), size)]
    return calls


def _say_plan(groups, configs: dict, log) -> None:
    """One stderr line: how many cells run in how many compiled programs, and why more
    than one (the static fields in which they differ)."""
    from active_rlhf_jax.pipeline.hyper import static_differences

    cells = sum(len(g) for _, g in groups)
    if cells <= 1:
        return
    line = f"sweep: {cells} cells to run in {len(groups)} compiled program(s)"
    if len(groups) > 1:
        todo = [configs[a] for _, g in groups for a in g]
        fields = static_differences(todo)
        line += (f"; they differ in static fields ({', '.join(fields)}), one program per "
                 "combination" if fields else "")
        if len({s for s, _ in groups}) > 1:
            line += "; new and interrupted cells run apart"
    print(line, file=log, flush=True)


def _jsonable(changes: dict) -> dict:
    return json.loads(json.dumps({k: list(v) if isinstance(v, tuple) else v
                                  for k, v in sorted(changes.items())}))
