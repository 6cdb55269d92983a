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
from active_rlhf_jax.config import Config, ConfigError, load_config_dict, to_dict
from active_rlhf_jax.evaluation import eval_record
from active_rlhf_jax.pipeline import distributed as dist
from active_rlhf_jax.pipeline import interrupt, rundir
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


def metrics_rows(config: Config, metrics: dict, sps: float, guarded_names=()) -> list[dict]:
    """Chunk metrics ``{name: [seeds, chunk]}`` -> one dict per seed per iteration.

    Non-finite values become None. The guard's code becomes ``nonfinite``: None, or the
    name of the first non-finite quantity; such a row keeps only its counts
    (:data:`COUNT_FIELDS`), the rest is None, so no number of a diverged model is read
    as a result (a NaN model's reward_corr once read 1.0).
    """
    metrics = dist.fetch(metrics)
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
    out = Path(out_dir).resolve()
    main = dist.is_main_process()
    field = "resume" if resume else "out"
    if resume:
        if not out.is_dir():
            raise ConfigError("resume", f"{out} is not a directory")
        if not (out / CONFIG_FILE).is_file():  # before the lock: nothing written
            raise ConfigError("resume", f"{out} holds no run ({CONFIG_FILE} is missing)")
    else:
        config.validate()
        if (out / CONFIG_FILE).exists():  # early, cheap; checked again under the lock
            raise ConfigError("out", f"{out} already holds a run (use --resume)")
        if out.exists() and not out.is_dir():
            raise ConfigError("out", f"{out} exists and is not a directory")
    lock = None
    try:
        if resume:
            # Lock before reading anything a concurrent writer could be changing.
            lock = rundir.RunLock(out, field).acquire() if main else None
            config = load_config(out)
        mesh = _seed_mesh(config.seeds)
        if dist.is_multiprocess() and (mesh is None or len(mesh.devices) != jax.device_count()):
            raise ConfigError("seeds", f"must be a multiple of the {jax.device_count()} devices "
                              f"of the {jax.process_count()} processes, got {config.seeds}")
        pipe = make_train(config)  # validates again, builds everything before writing
        if main and not resume:
            rundir.check_out_dir(out)
            lock = rundir.RunLock(out, field).acquire()
            if (out / CONFIG_FILE).exists():  # atomic with the lock held
                raise ConfigError("out", f"{out} already holds a run (use --resume)")
            tmp = out / (CONFIG_FILE + ".tmp")
            tmp.write_text(strict_json.dumps(to_dict(config), indent=2))
            os.replace(tmp, out / CONFIG_FILE)
        if main and resume:
            rundir.clean_checkpoints(out / "checkpoints", CHECKPOINTS_TO_KEEP)
        dist.barrier("run-dir-checked")  # no process writes before every process checked
        return _run_locked(config, pipe, mesh, out, resume, progress, max_chunks, main)
    finally:
        if lock is not None:
            lock.release()


def _run_locked(config, pipe, mesh, out: Path, resume: bool, progress: bool,
                max_chunks: int | None, main: bool) -> dict:
    """The body of :func:`run`, with the directory locked and checked."""
    import orbax.checkpoint as ocp

    chunk = config.run.iterations_per_chunk
    n_iter = config.num_iterations
    init_fn = seed_parallel(pipe.init, mesh)
    guard_fn = seed_parallel(pipe.first_nonfinite, mesh)
    chunk_fns = {}
    # Compile time of each program, reported on stderr and in the returned summary (a
    # program found in the persistent compilation cache takes about a second).
    compile_seconds = {}

    def chunk_fn(length, state):
        """The compiled chunk program of ``length`` iterations (compiled ahead of its first
        call, so the progress bar's steps/s never include the compile)."""
        if length not in chunk_fns:
            fn = seed_parallel(functools.partial(pipe.run_chunk, length=length), mesh)
            t = time.time()
            chunk_fns[length] = fn.lower(state).compile()
            compile_seconds[f"chunk_{length}"] = time.time() - t
            if main:
                rundir.note(f"compiled the {length}-iteration chunk program in "
                            f"{compile_seconds[f'chunk_{length}']:.1f} s")
        return chunk_fns[length]

    def make_manager():
        return ocp.CheckpointManager(out / "checkpoints", options=ocp.CheckpointManagerOptions(
            max_to_keep=CHECKPOINTS_TO_KEEP, create=True))

    manager = make_manager()
    keys = seed_keys(config)
    if dist.is_multiprocess():
        keys = dist.to_global(np.asarray(keys), mesh)
    t_compile = time.time()
    step, state = None, None
    if resume:
        abstract = jax.eval_shape(init_fn, keys)
        if mesh is not None:  # restore straight onto the seed-sharded layout
            from jax.sharding import NamedSharding
            from jax.sharding import PartitionSpec as P

            sharding = NamedSharding(mesh, P("seeds"))
            abstract = jax.tree_util.tree_map(
                lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)
        step, state = rundir.restore_newest(
            manager, lambda s: manager.restore(s, args=ocp.args.StandardRestore(abstract)), out,
            move=main)
        manager.close()  # its step list may name checkpoints moved aside
        manager = make_manager()
    done_iters = int(step) if step is not None else 0
    if state is None:
        t = time.time()
        init_program = init_fn.lower(keys).compile()
        compile_seconds["init"] = time.time() - t
        if main:
            rundir.note(f"compiled the initial phase in {compile_seconds['init']:.1f} s")
        state = init_program(keys)
    if main:
        rundir.recover_metrics(out / METRICS_FILE, done_iters)
    jax.block_until_ready(state)
    init_seconds = time.time() - t_compile
    codes = np.asarray(dist.fetch(guard_fn(state)))  # [seeds]; once, not per chunk
    if codes.any():
        s = int(np.flatnonzero(codes)[0])
        where = f"checkpoint {step}" if step is not None else "the initial phase"
        raise NonFiniteError(f"non-finite {pipe.guarded_names[codes[s] - 1]} after {where} "
                             f"(seed {config.seed + s}), before iteration {done_iters + 1}")

    logger = _Logger(out, config, rewrite_tb=resume) if main else None
    bar = None
    if progress and main:
        from tqdm import tqdm

        bar = tqdm(total=n_iter, initial=done_iters, unit="it", desc=config.name, file=sys.stderr)
    chunks_run = 0
    last_saved = step
    rows = []
    last_return = "-"  # the bar shows the last iteration with a finished episode
    try:
        while done_iters < n_iter:
            if max_chunks is not None and chunks_run >= max_chunks:
                return {"interrupted_at": done_iters}
            length = min(chunk, n_iter - done_iters)
            program = chunk_fn(length, state)
            t0 = time.time()
            state, metrics = program(state)
            jax.block_until_ready(metrics)
            wall = time.time() - t0
            sps = length * config.steps_per_iteration * config.seeds / max(wall, 1e-9)
            rows = metrics_rows(config, metrics, sps, pipe.guarded_names)
            with interrupt.writing():  # a Ctrl-C waits for the metrics and the checkpoint
                if logger is not None:
                    logger.write(rows)
                done_iters += length
                bad = [r for r in rows if r["nonfinite"]]
                if bad:  # no checkpoint of this state: the newest one stays the last finite one
                    first = bad[0]  # rows are ordered by iteration, then seed
                    kept = (f"the last finite checkpoint is iteration {last_saved}"
                            if last_saved is not None else "no checkpoint was saved before it")
                    raise NonFiniteError(
                        f"non-finite {first['nonfinite']} at iteration {first['iteration']} "
                        f"(seed {first['seed']}); stopped after iteration {done_iters}, {kept} "
                        f"(in {out / 'checkpoints'})")
                manager.save(done_iters, args=ocp.args.StandardSave(state))
                manager.wait_until_finished()
                last_saved = done_iters
            chunks_run += 1
            if bar is not None:
                last_return = _bar_return(rows, config.seeds, last_return)
                bar.set_postfix(true_return=last_return, sps=f"{sps:.0f}")
                bar.update(length)
    finally:
        if bar is not None:
            bar.close()
        if logger is not None:
            logger.close()
        manager.close()

    if main and config.run.feedback != "none" and rows:
        used = min(r["labels_used"] for r in rows[-config.seeds:])
        if used < config.run.budget:
            rundir.note(f"spent {used} of the {config.run.budget}-label budget (run.budget): "
                        "acquisition found too few unlabelled clips or pairs in the pool")
    eval_fn = seed_parallel(pipe.evaluate, mesh)
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, 10_000))(seed_keys(config))
    if dist.is_multiprocess():
        eval_keys = dist.to_global(np.asarray(eval_keys), mesh)
    returns, lengths = (np.asarray(x) for x in dist.fetch(eval_fn(state, eval_keys)))
    summary = eval_record(  # [seeds, E] each
        config.env.env_id, config.env.backend, [config.seed + i for i in range(config.seeds)],
        returns, lengths, env_options=config.env.options())
    ppo_state = dist.fetch(state.ppo)
    if main:
        with interrupt.writing():
            tmp = out / (FINAL_EVAL_FILE + ".tmp")
            tmp.write_text(strict_json.dumps(summary, indent=2))
            os.replace(tmp, out / FINAL_EVAL_FILE)
            _save_policy(out, config, ppo_state, pipe.env)
    dist.barrier("run-finished")
    summary["init_seconds"] = init_seconds
    summary["compile_seconds"] = {k: round(v, 2) for k, v in compile_seconds.items()}
    # Compiled chunk programs, one per distinct chunk length (compiled ahead of time: an
    # input of another shape would raise, never recompile).
    summary["chunk_compilations"] = len(chunk_fns)
    return summary


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
