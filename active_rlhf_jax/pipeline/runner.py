"""Host side of a run: chunks, seeds on devices, logs, checkpoints, resume, final eval.

The device runs ``iterations_per_chunk`` RLHF iterations per jitted call for all seeds at
once (a ``vmap`` over seeds; with several devices the seed axis is split over them with
``shard_map``, so each device runs its own seeds, and C-MuJoCo callbacks run per device).
Between chunks the host writes ``metrics.jsonl`` and TensorBoard scalars, advances the
progress bar and saves an orbax checkpoint (atomic: orbax writes a temporary directory and
renames it). ``resume`` restores the newest checkpoint and drops metric lines written after
it, so a resumed run ends with exactly the metrics of an uninterrupted one.

Reliability (docs/reliability.md): the run holds a lock on its directory from before its
first write to the end (``pipeline/rundir.py``); every iteration carries the NaN/Inf guard's
flag (``nonfinite``), and a chunk that ends with a non-finite state stops the run with
:class:`NonFiniteError` (exit status 3) before its checkpoint is saved, so the last
checkpoint is always finite; a resume repairs a torn metrics line, falls back past a
damaged checkpoint, removes leftovers of interrupted saves and deletions, and rewrites
TensorBoard from ``metrics.jsonl``.

Under ``jax.distributed`` (several processes, see ``pipeline/distributed.py``) the mesh
spans every process's devices; process 0 writes the files, all processes checkpoint.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax import strict_json
from active_rlhf_jax.compile_cache import uncacheable_reason
from active_rlhf_jax.config import Config, ConfigError, load_config_dict, to_dict
from active_rlhf_jax.envs.host_call import raise_pending
from active_rlhf_jax.envs.registry import fidelity_note
from active_rlhf_jax.evaluation import eval_record
from active_rlhf_jax.pipeline import distributed as dist
from active_rlhf_jax.pipeline import interrupt, rundir
from active_rlhf_jax.pipeline.hyper import check_one_program, program_choices, stack_hyper
from active_rlhf_jax.pipeline.train import make_train

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
FINAL_EVAL_FILE = "final_eval.json"
CHECKPOINTS_TO_KEEP = 2

#: Fields that stay meaningful in a row whose state is non-finite (counts, not values of
#: the diverged model); every other field of such a row is written as null.
COUNT_FIELDS = frozenset({
    "seed", "iteration", "env_steps", "queries_pref", "queries_eval", "queries_total",
    "labels_used", "collection_steps", "n_requested", "n_pref", "n_eval", "sps", "nonfinite",
})


class NonFiniteError(RuntimeError):
    """The run's PPO or reward-model state became NaN/Inf (the CLI exits with status 3)."""


def _seed_mesh(num_seeds: int, quiet: bool = False):
    """A 1-D mesh over the devices that evenly divide the seeds (None for one device).

    When the seeds do not divide the devices, fewer devices run them, with a note.
    """
    devices = jax.devices()
    n = len(devices)
    while n > 1 and num_seeds % n:
        n -= 1
    if n < len(devices) and not quiet:
        rundir.note(f"{num_seeds} seeds on {len(devices)} devices: running on {n} of them "
                    f"(a multiple of {len(devices)} seeds uses them all)")
    if n <= 1:
        return None
    return jax.sharding.Mesh(np.array(devices[:n]), ("seeds",))


def seed_parallel(fn, mesh):
    """``vmap`` over the leading seed axis, split over ``mesh`` with ``shard_map`` if given.

    A seed axis of size 1 (one seed, or one seed per device) is squeezed instead of
    vmapped: on CPU a vmap of size 1 ran the default pipeline 1.4x slower, the PPO
    rollout taking twice as long (``benchmarks/ppo_vmap_cost.py``); larger seed batches
    cost no more per seed than plain calls.
    """

    def batched(*args):
        if jax.tree_util.tree_leaves(args)[0].shape[0] == 1:  # static under jit
            out = fn(*jax.tree_util.tree_map(lambda x: x[0], args))
            return jax.tree_util.tree_map(lambda x: x[None], out)
        return jax.vmap(fn)(*args)
    if mesh is None:
        return jax.jit(batched)
    from jax.sharding import PartitionSpec as P

    spec = P("seeds")
    # Seeds never communicate, so the per-device program is the plain vmapped one; the
    # varying-axis type check is off because library code (lax.cond with an unbatched
    # branch) need not know it runs under shard_map.
    return jax.jit(
        jax.shard_map(batched, mesh=mesh, in_specs=spec, out_specs=spec, check_vma=False)
    )


def seed_keys(config: Config) -> jax.Array:
    """One PRNG key per seed: PRNGKey(seed + i). -> ``[seeds, 2]``."""
    return jax.vmap(jax.random.PRNGKey)(jnp.arange(config.seed, config.seed + config.seeds))


def batch_inputs(configs: list) -> tuple:
    """The ``init`` arguments of one program's runs, cells outermost then seeds:
    ``(keys [cells * seeds, 2],)`` for one cell (its values compiled in), else
    ``(keys, hyper {field: [cells * seeds]})`` (pipeline/hyper.py)."""
    keys = jnp.concatenate([seed_keys(c) for c in configs])
    if len(configs) == 1:
        return (keys,)
    return keys, stack_hyper(configs, configs[0].seeds)


def metrics_rows(config: Config, metrics: dict, sps: float, guarded_names=()) -> list[dict]:
    """Chunk metrics ``{name: [seeds, chunk]}`` (host arrays: the runner fetches a chunk's
    metrics once, then splits them by cell) -> one dict per seed per iteration.

    Non-finite values become None. The guard's code becomes ``nonfinite``: None, or the
    name of the first non-finite quantity; such a row keeps only its counts
    (:data:`COUNT_FIELDS`), the rest is None, so no number of a diverged model is read
    as a result (a NaN model's reward_corr once read 1.0).
    """
    seeds, length = np.asarray(metrics["iteration"]).shape
    rows = []
    for i in range(length):
        for s in range(seeds):
            row = {"seed": config.seed + s}
            for k, v in metrics.items():
                row[k] = strict_json.clean(np.asarray(v)[s, i])
            code = row.pop("nonfinite", 0) or 0
            row["sps"] = sps
            row["nonfinite"] = guarded_names[code - 1] if code else None
            if code:
                row = {k: (v if k in COUNT_FIELDS else None) for k, v in row.items()}
            rows.append(row)
    return rows


class _Logger:
    """metrics.jsonl + TensorBoard (tensorboardX), every scalar on the env-step axis."""

    KEY_CURVES = ("true_return", "learned_return", "reward_corr")

    def __init__(self, out: Path, config: Config, rewrite_tb: bool = False):
        """``rewrite_tb``: replace ``tb/`` by the rows already in ``metrics.jsonl`` (resume:
        the killed process may have flushed any part of its events, or none)."""
        from tensorboardX import SummaryWriter

        self.path = out / METRICS_FILE
        if rewrite_tb:
            shutil.rmtree(out / "tb", ignore_errors=True)
        self.writers = {
            config.seed + s: SummaryWriter(str(out / "tb" / f"seed_{config.seed + s}"))
            for s in range(config.seeds)
        }
        if rewrite_tb:
            self.write_tb(rundir.read_metrics_rows(self.path))

    def write(self, rows: list[dict]):
        with open(self.path, "a") as f:
            f.write("".join(strict_json.dumps(row) + "\n" for row in rows))
        self.write_tb(rows)

    def write_tb(self, rows: list[dict]):
        for row in rows:
            w = self.writers[row["seed"]]
            step = row["env_steps"]
            for k, v in row.items():
                if k in ("seed",) or v is None or isinstance(v, str):
                    continue
                w.add_scalar(k, v, step)
            for k in self.KEY_CURVES:
                if row.get(k) is not None and row.get("queries_total") is not None:
                    w.add_scalar(f"by_queries/{k}", row[k], row["queries_total"])
        for w in self.writers.values():
            w.flush()

    def close(self):
        for w in self.writers.values():
            w.close()


def load_config(run_dir, field: str = "resume") -> Config:
    """The run's saved config; a missing or damaged config.json is a one-line ConfigError."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(field, f"{Path(run_dir)} holds no run ({CONFIG_FILE} is missing)")
    try:
        return load_config_dict(json.loads(path.read_text())).validate()
    except json.JSONDecodeError as e:
        raise ConfigError(str(path), f"is not valid JSON ({e.msg} at line {e.lineno}); "
                          "the file is damaged") from None
    except (ConfigError, TypeError, AttributeError) as e:
        raise ConfigError(str(path), f"does not describe a valid config ({e})") from None


def run(config: Config | None, out_dir, resume: bool = False, progress: bool = True,
        max_chunks: int | None = None) -> dict:
    """Run (or resume) an experiment into ``out_dir``. Returns the final-eval summary.

    Args:
        config: the experiment (ignored with ``resume``: the saved config is used).
        out_dir: run directory. A fresh run refuses a directory that already holds a run.
        resume: continue from the newest checkpoint in ``out_dir`` that restores.
        max_chunks: stop after this many chunks in this call (for tests of resume).

    Raises:
        ConfigError: bad input, a directory in use or beyond repair (nothing written).
        NonFiniteError: the state became NaN/Inf (see the module docstring).
    """
    return run_cells([config], [out_dir], resume, progress, max_chunks)[0]


def run_cells(configs: list, out_dirs: list, resume: bool = False, progress: bool = True,
              max_chunks: int | None = None) -> list[dict]:
    """Run (or resume) several runs that share one compiled program; one summary each.

    The runs (*cells* of a sweep) may differ only in what ``pipeline/hyper.py`` lets a
    program read from its state (traced scalars, choices such as the acquisition method,
    the reward model's dropout) and in their names: their ``cells x seeds`` runs are one batch of one program, ``vmap``-ed over
    ``(keys, hyper)`` and split over devices like seeds.
    Each cell still gets a run directory of its own with its own config, metrics,
    checkpoints (its slice of the state), final evaluation and policies, so
    ``compare``, ``plot``, ``evaluate`` and ``train --resume`` read it like any run. One
    cell is exactly :func:`run`'s program (its hyperparameters compiled from the config).

    Args:
        configs: one Config per cell (ignored with ``resume``: each saved config is used).
        out_dirs: one run directory per cell.

    Raises:
        ConfigError: as :func:`run`; also cells that differ in a field the program compiles
            in (naming it), or one directory given twice. Nothing is written then.
        NonFiniteError: a cell's state became NaN/Inf (all cells stop; the message names it).
    """
    outs = [Path(d).resolve() for d in out_dirs]
    if not outs or len(outs) != len(configs):
        raise ConfigError("out", f"{len(configs)} configs for {len(outs)} run directories")
    if len(set(outs)) != len(outs):
        raise ConfigError("out", "a run directory is given twice")
    main = dist.is_main_process()
    field = "resume" if resume else "out"
    for i, out in enumerate(outs):
        if resume:
            if not out.is_dir():
                raise ConfigError("resume", f"{out} is not a directory")
            if not (out / CONFIG_FILE).is_file():  # before the lock: nothing written
                raise ConfigError("resume", f"{out} holds no run ({CONFIG_FILE} is missing)")
        else:
            configs[i].validate()
            if (out / CONFIG_FILE).exists():  # early, cheap; checked again under the lock
                raise ConfigError("out", f"{out} already holds a run (use --resume)")
            if out.exists() and not out.is_dir():
                raise ConfigError("out", f"{out} exists and is not a directory")
    locks = []
    try:
        if resume:
            for out in outs:  # lock before reading anything a concurrent writer could change
                if main:
                    locks.append(rundir.RunLock(out, field).acquire())
            configs = [load_config(out) for out in outs]
        check_one_program(configs)  # before anything is written
        choices = program_choices(configs)  # e.g. the random and the BALD cells' methods
        config = configs[0]
        runs = config.seeds * len(configs)
        mesh = _seed_mesh(runs)
        if dist.is_multiprocess() and (mesh is None or len(mesh.devices) != jax.device_count()):
            raise ConfigError("seeds", f"the runs of one program (cells x seeds) must be a "
                              f"multiple of the {jax.device_count()} devices of the "
                              f"{jax.process_count()} processes, got {runs}")
        pipe = make_train(config, choices)  # validates again, builds all before writing
        if main and not resume:
            for out in outs:
                rundir.check_out_dir(out)
                locks.append(rundir.RunLock(out, field).acquire())
                if (out / CONFIG_FILE).exists():  # atomic with the lock held
                    raise ConfigError("out", f"{out} already holds a run (use --resume)")
            for cfg, out in zip(configs, outs):  # every directory checked before one is written
                tmp = out / (CONFIG_FILE + ".tmp")
                tmp.write_text(strict_json.dumps(to_dict(cfg), indent=2))
                os.replace(tmp, out / CONFIG_FILE)
        if main and resume:
            for out in outs:
                rundir.clean_checkpoints(out / "checkpoints", CHECKPOINTS_TO_KEEP)
        dist.barrier("run-dir-checked")  # no process writes before every process checked
        return _run_locked(configs, pipe, mesh, outs, resume, progress, max_chunks, main)
    finally:
        for lock in locks:
            lock.release()


def _cell_slices(tree, cells: int, seeds: int, mesh=None) -> list:
    """``tree`` with leading axis ``cells * seeds`` -> one tree per cell (``[seeds, ...]``).

    With a mesh the slices are taken inside jit and come back whole on every device
    (replicated): a cell's seeds need not divide the devices, and under several processes
    an array split over them cannot be sliced eagerly.
    """
    if cells == 1:
        return [tree]
    if mesh is None:
        return [_cut(tree, c, seeds) for c in range(cells)]
    return [cut(tree) for cut in _jitted_cuts(cells, seeds, mesh)]


def _cut(tree, c: int, seeds: int):
    return jax.tree_util.tree_map(lambda x: x[c * seeds:(c + 1) * seeds], tree)


@functools.lru_cache(maxsize=8)
def _jitted_cuts(cells: int, seeds: int, mesh) -> list:
    """One jitted slicer per cell, its output replicated over ``mesh`` (built once)."""
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    whole = NamedSharding(mesh, P())
    return [jax.jit(functools.partial(_cut, c=c, seeds=seeds), out_shardings=whole)
            for c in range(cells)]


def _run_locked(configs, pipe, mesh, outs: list, resume: bool, progress: bool,
                max_chunks: int | None, main: bool) -> list[dict]:
    """The body of :func:`run_cells`, with the directories locked and checked.

    Every checkpoint manager it opens is closed on the way out, whatever the way: an error
    before the training loop (a non-finite initial state, a damaged metrics file, a failed
    restore, a Ctrl-C during a compile) would otherwise leave orbax's background threads
    and event loops to the garbage collector."""
    opened = []
    try:
        return _run_managed(configs, pipe, mesh, outs, resume, progress, max_chunks, main,
                            opened)
    finally:
        for m in opened:
            m.close()  # idempotent: those read for a resume were closed once already


def _run_managed(configs, pipe, mesh, outs: list, resume: bool, progress: bool,
                 max_chunks: int | None, main: bool, opened: list) -> list[dict]:
    """:func:`_run_locked`'s work; each checkpoint manager it makes is appended to
    ``opened`` for the caller to close."""
    import orbax.checkpoint as ocp

    config = configs[0]
    cells, seeds = len(configs), config.seeds
    chunk = config.run.iterations_per_chunk
    n_iter = config.num_iterations
    n_learn = config.learning_iterations  # n_iter online; the first phase's of two
    init_fn = seed_parallel(pipe.init, mesh)
    guard_fn = seed_parallel(pipe.first_nonfinite, mesh)
    chunk_fns = {}
    # Compile time of each program, reported on stderr and in the returned summary (a
    # program found in the persistent compilation cache takes about a second).
    compile_seconds = {}
    if main:
        for line in (uncacheable_reason(pipe.env.backend), fidelity_note(pipe.env)):
            if line:
                rundir.note(line)

    def chunk_fn(length, retrain, state):
        """The compiled chunk program of ``length`` iterations of the first phase, or with
        ``retrain`` of the two-phase schedule's second (compiled ahead of its first call,
        so the progress bar's steps/s never include the compile)."""
        if (length, retrain) not in chunk_fns:
            fn = seed_parallel(functools.partial(pipe.run_chunk, length=length,
                                                 retrain=retrain), mesh)
            name = f"{'retrain_' if retrain else ''}chunk_{length}"
            t = time.time()
            chunk_fns[length, retrain] = fn.lower(state).compile()
            compile_seconds[name] = time.time() - t
            if main:
                what = "second-phase " if retrain else ""
                rundir.note(f"compiled the {length}-iteration {what}chunk program in "
                            f"{compile_seconds[name]:.1f} s")
        return chunk_fns[length, retrain]

    def make_managers():
        made = [ocp.CheckpointManager(out / "checkpoints", options=ocp.CheckpointManagerOptions(
            max_to_keep=CHECKPOINTS_TO_KEEP, create=True)) for out in outs]
        opened.extend(made)
        return made

    managers = make_managers()
    init_args = batch_inputs(configs)
    keys = init_args[0]  # [cells * seeds, 2]
    if dist.is_multiprocess():
        init_args = jax.tree_util.tree_map(lambda x: dist.to_global(np.asarray(x), mesh),
                                           init_args)
    t_compile = time.time()
    step, state = None, None
    if resume:
        abstract = jax.eval_shape(init_fn, *init_args)
        sharding = None
        if mesh is not None:  # one run: restore straight onto the seed-sharded layout
            from jax.sharding import NamedSharding
            from jax.sharding import PartitionSpec as P

            # Cells: each cell's slice is read whole (replicated), then joined and split
            # over the devices, since a cell's seeds need not divide them.
            sharding = NamedSharding(mesh, P("seeds") if cells == 1 else P())
        abstract = jax.tree_util.tree_map(
            lambda a: jax.ShapeDtypeStruct((seeds,) + a.shape[1:], a.dtype, sharding=sharding),
            abstract)
        step, states = rundir.restore_newest(
            managers,
            lambda i, s: rundir.unsaved_filled(managers[i].restore(
                s, args=ocp.args.StandardRestore(rundir.savable(abstract))), abstract),
            outs, move=main)
        for m in managers:
            m.close()  # its step list may name checkpoints moved aside
        if main and cells > 1:
            for out in outs:
                rundir.drop_checkpoints_after(out / "checkpoints", step)
        dist.barrier("checkpoints-aligned")
        managers = make_managers()
        if states is not None:
            state = states[0] if cells == 1 else _join_cells(states, mesh)
            if mesh is None:
                state = _uncommitted(state)
    done_iters = int(step) if step is not None else 0
    if state is None:
        t = time.time()
        init_program = init_fn.lower(*init_args).compile()
        compile_seconds["init"] = time.time() - t
        if main:
            rundir.note(f"compiled the initial phase in {compile_seconds['init']:.1f} s")
        state = init_program(*init_args)
    if main:
        for out in outs:
            rundir.recover_metrics(out / METRICS_FILE, done_iters)
    jax.block_until_ready(state)
    raise_pending()  # a host step (C MuJoCo) that raised inside the program
    init_seconds = time.time() - t_compile
    codes = np.asarray(dist.fetch(guard_fn(state)))  # [runs]; once, not per chunk
    if codes.any():
        r = int(np.flatnonzero(codes)[0])
        where = f"checkpoint {step}" if step is not None else "the initial phase"
        raise NonFiniteError(f"non-finite {pipe.guarded_names[codes[r] - 1]} after {where} "
                             f"(seed {config.seed + r % seeds}{_cell_name(outs, r // seeds)})"
                             f", before iteration {done_iters + 1}")

    loggers = [_Logger(out, cfg, rewrite_tb=resume) for cfg, out in zip(configs, outs)] \
        if main else []
    bar = None
    if progress and main:
        from tqdm import tqdm

        desc = config.name if cells == 1 else f"{cells} cells"
        bar = tqdm(total=n_iter, initial=done_iters, unit="it", desc=desc, file=sys.stderr)
    chunks_run = 0
    last_saved = step
    cell_rows = [[] for _ in outs]
    last_return = "-"  # the bar shows the last iteration with a finished episode
    try:
        while done_iters < n_iter:
            if max_chunks is not None and chunks_run >= max_chunks:
                return [{"interrupted_at": done_iters} for _ in outs]
            # Chunks never span the two phases of run.retrain_fraction.
            retrain = done_iters >= n_learn
            length = min(chunk, (n_iter if retrain else n_learn) - done_iters)
            program = chunk_fn(length, retrain, state)
            t0 = time.time()
            state, metrics = program(state)
            jax.block_until_ready(metrics)
            raise_pending()  # before anything of this chunk is written
            wall = time.time() - t0
            sps = length * config.steps_per_iteration * seeds * cells / max(wall, 1e-9)
            metrics = dist.fetch(metrics)
            cell_rows = [metrics_rows(cfg, m, sps, pipe.guarded_names)
                         for cfg, m in zip(configs, _cell_slices(metrics, cells, seeds))]
            with interrupt.writing():  # a Ctrl-C waits for the metrics and the checkpoints
                for logger, rows in zip(loggers, cell_rows):
                    logger.write(rows)
                done_iters += length
                for c, rows in enumerate(cell_rows):
                    bad = [r for r in rows if r["nonfinite"]]
                    if not bad:
                        continue
                    # No checkpoint of this state: the newest stays the last finite one.
                    first = bad[0]  # rows are ordered by iteration, then seed
                    kept = (f"the last finite checkpoint is iteration {last_saved}"
                            if last_saved is not None else "no checkpoint was saved before it")
                    raise NonFiniteError(
                        f"non-finite {first['nonfinite']} at iteration {first['iteration']} "
                        f"(seed {first['seed']}{_cell_name(outs, c)}); stopped after "
                        f"iteration {done_iters}, {kept} (in {outs[c] / 'checkpoints'})")
                for m, cell_state in zip(managers, _cell_slices(state, cells, seeds, mesh)):
                    m.save(done_iters,
                           args=ocp.args.StandardSave(rundir.savable(cell_state)))
                for m in managers:
                    m.wait_until_finished()
                last_saved = done_iters
            chunks_run += 1
            if bar is not None:
                joined = [row for i in range(length) for rows in cell_rows
                          for row in rows[i * seeds:(i + 1) * seeds]]
                last_return = _bar_return(joined, seeds * cells, last_return)
                bar.set_postfix(true_return=last_return, sps=f"{sps:.0f}")
                bar.update(length)
    finally:
        if bar is not None:
            bar.close()
        for logger in loggers:
            logger.close()

    for c, (cfg, rows) in enumerate(zip(configs, cell_rows)):
        if main and cfg.run.feedback != "none" and rows:
            used = min(r["labels_used"] for r in rows[-seeds:])
            if used < cfg.run.budget:
                who = f"{outs[c].name}: " if cells > 1 else ""
                rundir.note(f"{who}spent {used} of the {cfg.run.budget}-label budget "
                            "(run.budget): acquisition found too few unlabelled clips or "
                            "pairs in the pool")
    eval_fn = seed_parallel(pipe.evaluate, mesh)
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, 10_000))(keys)
    if dist.is_multiprocess():
        eval_keys = dist.to_global(np.asarray(eval_keys), mesh)
    returns, lengths = (np.asarray(x) for x in dist.fetch(eval_fn(state, eval_keys)))
    cell_ppo = _cell_slices(dist.fetch(state.ppo), cells, seeds)  # host arrays
    summaries = []
    for c, (cfg, out) in enumerate(zip(configs, outs)):
        part = slice(c * seeds, (c + 1) * seeds)
        summary = eval_record(  # [seeds, E] each
            cfg.env.env_id, cfg.env.backend, [cfg.seed + i for i in range(seeds)],
            returns[part], lengths[part], env_options=cfg.env.options())
        if main:
            with interrupt.writing():
                tmp = out / (FINAL_EVAL_FILE + ".tmp")
                tmp.write_text(strict_json.dumps(summary, indent=2))
                os.replace(tmp, out / FINAL_EVAL_FILE)
                _save_policy(out, cfg, cell_ppo[c], pipe.env)
        summaries.append(summary)
    dist.barrier("run-finished")
    for summary in summaries:
        summary["init_seconds"] = init_seconds
        summary["compile_seconds"] = {k: round(v, 2) for k, v in compile_seconds.items()}
        # Compiled chunk programs, one per distinct chunk length (compiled ahead of time:
        # an input of another shape would raise, never recompile).
        summary["chunk_compilations"] = len(chunk_fns)
        summary["cells_in_program"] = cells
    return summaries


def _cell_name(outs: list, c: int) -> str:
    """``", cell NAME"`` for a program of several cells, else ``""`` (for messages)."""
    return f", cell {outs[c].name}" if len(outs) > 1 else ""


def _uncommitted(state):
    """``state`` as arrays on the default device without a committed sharding, as a fresh
    run's state is.

    Orbax restores committed single-device arrays, and jit lowers a committed argument
    with its sharding in the program, so a resumed run's chunk program differed from the
    fresh run's and missed the persistent compilation cache (measured on the smoke preset:
    a resume recompiled its chunk program for 15 s where the same program was cached). One
    host round trip of the state per resume."""
    return jax.tree_util.tree_map(jnp.asarray, jax.device_get(state))


def _join_cells(states: list, mesh):
    """Cells' restored states (``[seeds, ...]`` each) -> one batch ``[cells * seeds, ...]``,
    split over ``mesh``'s devices when given (joined inside jit: under several processes
    the restored arrays are global ones)."""
    def join(*parts):
        return jax.tree_util.tree_map(lambda *xs: jnp.concatenate(xs), *parts)

    if mesh is None:
        return join(*states)
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    return jax.jit(join, out_shardings=NamedSharding(mesh, P("seeds")))(*states)


def _bar_return(rows: list[dict], seeds: int, previous: str) -> str:
    """Mean true return over seeds of the chunk's last iteration that has one, else
    ``previous`` (an iteration in which no episode finished logs ``null``)."""
    for i in range(len(rows) - seeds, -1, -seeds):
        tr = [r["true_return"] for r in rows[i:i + seeds] if r["true_return"] is not None]
        if tr:
            return f"{np.mean(tr):.1f}"
    return previous


def _save_policy(out: Path, config: Config, ppo_state, env):
    """Final policy of every seed (``ppo_state``: host arrays, leading seed axis), with its
    observation normaliser (see policy_io)."""
    from active_rlhf_jax.policy_io import save_policy

    save_policy(
        out,
        config.env.env_id,
        config.env.options(),
        to_dict(config.ppo),
        ppo_state,
        seeds=[config.seed + i for i in range(config.seeds)],
        env=env,
    )
