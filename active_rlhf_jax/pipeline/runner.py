"""Host side of a run: chunks, seeds on devices, logs, checkpoints, resume, final eval.

The device runs ``iterations_per_chunk`` RLHF iterations per jitted call for all seeds at
once (a ``vmap`` over seeds; with several devices the seed axis is split over them with
``shard_map``, so each device runs its own seeds, and C-MuJoCo callbacks run per device).
Between chunks the host writes ``metrics.jsonl`` and TensorBoard scalars, advances the
progress bar and saves an orbax checkpoint (atomic: orbax writes a temporary directory and
renames it). ``resume`` restores the newest checkpoint and drops metric lines written after
it, so a resumed run ends with exactly the metrics of an uninterrupted one.

Under ``jax.distributed`` (several processes, see ``pipeline/distributed.py``) the mesh
spans every process's devices; process 0 writes the files, all processes checkpoint.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax.config_utils import ConfigError, from_dict, to_dict
from active_rlhf_jax.pipeline import distributed as dist
from active_rlhf_jax.pipeline import interrupt
from active_rlhf_jax.pipeline.config import Config
from active_rlhf_jax.pipeline.train import make_train

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
FINAL_EVAL_FILE = "final_eval.json"


def _seed_mesh(num_seeds: int):
    """A 1-D mesh over the devices that evenly divide the seeds (None for one device)."""
    devices = jax.devices()
    n = len(devices)
    while n > 1 and num_seeds % n:
        n -= 1
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


def _jsonable(x):
    x = float(x) if np.ndim(x) == 0 and np.issubdtype(np.asarray(x).dtype, np.floating) else x
    if isinstance(x, float):
        return None if not math.isfinite(x) else x
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return _jsonable(x.item())
    return x


def metrics_rows(config: Config, metrics: dict, sps: float) -> list[dict]:
    """Chunk metrics ``{name: [seeds, chunk]}`` -> one dict per seed per iteration."""
    metrics = dist.fetch(metrics)
    seeds, length = np.asarray(metrics["iteration"]).shape
    rows = []
    for i in range(length):
        for s in range(seeds):
            row = {"seed": config.seed + s}
            for k, v in metrics.items():
                row[k] = _jsonable(np.asarray(v)[s, i])
            row["sps"] = sps
            rows.append(row)
    return rows


class _Logger:
    """metrics.jsonl + TensorBoard (tensorboardX), every scalar on the env-step axis."""

    KEY_CURVES = ("true_return", "learned_return", "reward_corr")

    def __init__(self, out: Path, config: Config):
        from tensorboardX import SummaryWriter

        self.path = out / METRICS_FILE
        self.writers = {
            config.seed + s: SummaryWriter(str(out / "tb" / f"seed_{config.seed + s}"))
            for s in range(config.seeds)
        }

    def write(self, rows: list[dict]):
        with open(self.path, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")
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

    def close(self):
        for w in self.writers.values():
            w.close()


def _truncate_metrics(path: Path, last_iteration: int):
    if not path.exists():
        return
    keep = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line)["iteration"] <= last_iteration
    ]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


def load_config(run_dir) -> Config:
    data = json.loads((Path(run_dir) / CONFIG_FILE).read_text())
    return from_dict(Config, data)


def run(config: Config | None, out_dir, resume: bool = False, progress: bool = True,
        max_chunks: int | None = None) -> dict:
    """Run (or resume) an experiment into ``out_dir``. Returns the final-eval summary.

    Args:
        config: the experiment (ignored with ``resume``: the saved config is used).
        out_dir: run directory. A fresh run refuses a directory that already holds a run.
        resume: continue from the newest checkpoint in ``out_dir``.
        max_chunks: stop after this many chunks in this call (for tests of resume).
    """
    import orbax.checkpoint as ocp

    out = Path(out_dir).resolve()
    main = dist.is_main_process()
    if resume:
        if not (out / CONFIG_FILE).exists():
            raise ConfigError("resume", f"{out} holds no run to resume")
        config = load_config(out)
    else:
        config.validate()
        if (out / CONFIG_FILE).exists():
            raise ConfigError("out", f"{out} already holds a run (use --resume)")
    mesh = _seed_mesh(config.seeds)
    if dist.is_multiprocess() and (mesh is None or len(mesh.devices) != jax.device_count()):
        raise ConfigError("seeds", f"must be a multiple of the {jax.device_count()} devices of "
                          f"the {jax.process_count()} processes, got {config.seeds}")
    pipe = make_train(config)  # validates again, builds everything before writing
    dist.barrier("run-dir-checked")  # no process writes before every process checked
    if main:
        out.mkdir(parents=True, exist_ok=True)
    if main and not resume:
        tmp = out / (CONFIG_FILE + ".tmp")
        tmp.write_text(json.dumps(to_dict(config), indent=2))
        os.replace(tmp, out / CONFIG_FILE)

    chunk = config.run.iterations_per_chunk
    n_iter = config.num_iterations
    init_fn = seed_parallel(pipe.init, mesh)
    chunk_fns = {}

    def chunk_fn(length, state):
        """The compiled chunk program of ``length`` iterations (compiled ahead of its first
        call, so the progress bar's steps/s never include the compile)."""
        if length not in chunk_fns:
            fn = seed_parallel(functools.partial(pipe.run_chunk, length=length), mesh)
            chunk_fns[length] = fn.lower(state).compile()
        return chunk_fns[length]

    manager = ocp.CheckpointManager(
        out / "checkpoints", options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
    )
    keys = seed_keys(config)
    if dist.is_multiprocess():
        keys = dist.to_global(np.asarray(keys), mesh)
    t_compile = time.time()
    done_iters = 0
    if resume and manager.latest_step() is not None:
        step = manager.latest_step()
        abstract = jax.eval_shape(init_fn, keys)
        if mesh is not None:  # restore straight onto the seed-sharded layout
            from jax.sharding import NamedSharding
            from jax.sharding import PartitionSpec as P

            sharding = NamedSharding(mesh, P("seeds"))
            abstract = jax.tree_util.tree_map(
                lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)
        state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
        done_iters = int(step)
        if main:
            _truncate_metrics(out / METRICS_FILE, done_iters)
    else:
        state = init_fn(keys)
        if main:
            _truncate_metrics(out / METRICS_FILE, 0)
    jax.block_until_ready(state)
    init_seconds = time.time() - t_compile

    logger = _Logger(out, config) if main else None
    bar = None
    if progress and main:
        from tqdm import tqdm

        bar = tqdm(total=n_iter, initial=done_iters, unit="it", desc=config.name, file=sys.stderr)
    chunks_run = 0
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
            rows = metrics_rows(config, metrics, sps)
            with interrupt.writing():  # a Ctrl-C waits for the metrics and the checkpoint
                if logger is not None:
                    logger.write(rows)
                done_iters += length
                manager.save(done_iters, args=ocp.args.StandardSave(state))
                manager.wait_until_finished()
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

    eval_fn = seed_parallel(pipe.evaluate, mesh)
    eval_keys = jax.vmap(lambda k: jax.random.fold_in(k, 10_000))(seed_keys(config))
    if dist.is_multiprocess():
        eval_keys = dist.to_global(np.asarray(eval_keys), mesh)
    returns = np.asarray(dist.fetch(eval_fn(state, eval_keys)))  # [seeds, E]
    summary = final_eval_summary(config, returns)
    ppo_state = dist.fetch(state.ppo)
    if main:
        with interrupt.writing():
            tmp = out / (FINAL_EVAL_FILE + ".tmp")
            tmp.write_text(json.dumps(summary, indent=2))
            os.replace(tmp, out / FINAL_EVAL_FILE)
            _save_policy(out, config, ppo_state, pipe.env)
    dist.barrier("run-finished")
    summary["init_seconds"] = init_seconds
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


def final_eval_summary(config: Config, returns: np.ndarray) -> dict:
    """returns ``[seeds, episodes]`` -> the final_eval.json object (95% CI over seeds)."""
    per_seed = returns.mean(axis=1)
    n = len(per_seed)
    mean = float(per_seed.mean())
    if n > 1:
        from scipy import stats

        half = float(stats.t.ppf(0.975, n - 1) * per_seed.std(ddof=1) / math.sqrt(n))
    else:
        half = float("nan")
    return {
        "env_id": config.env.env_id,
        "episodes": int(returns.shape[1]),
        "seeds": [
            {"seed": config.seed + i, "returns": [float(r) for r in returns[i]], "mean": float(per_seed[i])}
            for i in range(n)
        ],
        "mean": mean,
        "ci95": [mean - half, mean + half] if n > 1 else [None, None],
    }


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
