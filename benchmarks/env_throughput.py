"""Env steps per second of both physics backends, side by side (issue #2/#3).

For every (env, backend, batch size) it builds ``TrainingEnv(make(env_id, backend), B)``
and times one jitted ``lax.scan`` of ``--steps`` env steps with uniform random actions
(the random-action draw is part of the timed program, as in a rollout). Compilation is
timed apart (ahead-of-time ``lower().compile()``), then the compiled scan runs once to
warm up and ``--repeats`` more times; the best repeat is reported as
``env steps/s = B * steps / seconds``. With the fixed 1000-step horizon no auto-reset
fires inside a 100-step scan, so this is the steady-state stepping rate.

A (backend, env) pair stops growing the batch once a run is estimated (linearly from
the last run that took at least min(1 s, a tenth of the limit)) to take longer than ``--max-run-seconds`` (MJX on a
CPU is slow); those cells are reported as skipped.

Usage::

    python -m benchmarks.env_throughput --small                 # ~1 minute
    python -m benchmarks.env_throughput --envs HalfCheetah-v5,Ant-v5 \\
        --batch-sizes 1,16,64,256,1024,4096 --steps 100 --json out.json

The C backend's thread count comes from ``--threads`` (sets
``ACTIVE_RLHF_MUJOCO_THREADS``), default ``os.cpu_count()``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

DEFAULT_ENVS = ("HalfCheetah-v5", "Hopper-v5", "Walker2d-v5", "Swimmer-v5", "Reacher-v5", "Ant-v5")
DEFAULT_BATCHES = (1, 16, 64, 256, 1024, 4096)
SMALL = dict(
    envs=("HalfCheetah-v5",), batch_sizes=(16, 256), steps=50, repeats=1, max_run_seconds=10.0
)


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", default=",".join(DEFAULT_ENVS), help="comma-separated env ids")
    p.add_argument("--backends", default="mujoco,mjx", help="comma-separated: mujoco,mjx")
    p.add_argument("--batch-sizes", default=",".join(map(str, DEFAULT_BATCHES)))
    p.add_argument("--steps", type=int, default=100, help="env steps per jitted scan")
    p.add_argument("--repeats", type=int, default=2, help="timed runs after the warm-up")
    p.add_argument(
        "--max-run-seconds",
        type=float,
        default=30.0,
        help="skip larger batches once one run is estimated to exceed this",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="C backend threads (default: $ACTIVE_RLHF_MUJOCO_THREADS or cpu count)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write the records to this JSON file")
    p.add_argument(
        "--small",
        action="store_true",
        help="quick run (~1 min): HalfCheetah-v5, batches 16,256, 50 steps",
    )
    args = p.parse_args(argv)
    args.envs = tuple(e for e in args.envs.split(",") if e)
    args.backends = tuple(b for b in args.backends.split(",") if b)
    args.batch_sizes = tuple(int(b) for b in args.batch_sizes.split(",") if b)
    if args.small:
        for k, v in SMALL.items():
            setattr(args, k, v)
    return args


def _device_name(jax) -> str:
    d = jax.devices()[0]
    return f"{d.platform}:{d.device_kind} x{jax.device_count()}"


def prepare(env_id: str, backend: str, batch: int, steps: int, seed: int = 0, raw_env=None,
            actions: str = "uniform"):
    """Build and compile one scan of ``steps`` env steps of ``batch`` envs of
    ``make(env_id, backend)`` (or of ``raw_env``, an env built by the caller), with uniform
    random actions (``actions="uniform"``) or all-zero ones (``"zero"``).

    Returns ``(time_it, compile_s)``: ``time_it(repeats)`` runs the compiled scan once to
    warm up, then ``repeats`` times, and returns the record (see the module docstring)."""
    import jax

    from active_rlhf_jax.envs import TrainingEnv, make

    env = TrainingEnv(raw_env if raw_env is not None else make(env_id, backend=backend), batch)
    low = jax.numpy.asarray(env.action_low, jax.numpy.float32)
    high = jax.numpy.asarray(env.action_high, jax.numpy.float32)

    def rollout(state, key):
        def body(carry, _):
            state, key = carry
            key, key_action = jax.random.split(key)
            action = jax.random.uniform(key_action, (batch, env.action_size), low.dtype, low, high)
            if actions == "zero":
                action = jax.numpy.zeros_like(action)
            state = env.step(state, action)
            return (state, key), state.reward.mean()

        (state, key), rewards = jax.lax.scan(body, (state, key), None, length=steps)
        return state, rewards

    if actions not in ("uniform", "zero"):
        raise ValueError(f"actions: must be 'uniform' or 'zero', got {actions!r}")
    key_reset, key_run = jax.random.split(jax.random.PRNGKey(seed))
    state = jax.block_until_ready(jax.jit(env.reset)(key_reset))
    t0 = time.perf_counter()
    compiled = jax.jit(rollout).lower(state, key_run).compile()
    compile_s = time.perf_counter() - t0

    def time_it(repeats: int) -> dict:
        jax.block_until_ready(compiled(state, key_run))  # warm-up
        best = float("inf")
        for r in range(max(repeats, 1)):
            t0 = time.perf_counter()
            jax.block_until_ready(compiled(state, jax.random.fold_in(key_run, r)))
            best = min(best, time.perf_counter() - t0)
        return dict(
            env_id=env_id,
            backend=backend,
            batch=batch,
            steps=steps,
            compile_s=compile_s,
            run_s=best,
            sps=batch * steps / best,
            device=_device_name(jax),
            skipped=None,
        )

    return time_it, compile_s


def measure(env_id: str, backend: str, batch: int, steps: int, repeats: int, seed: int = 0):
    """Compile and time one scan. Returns a dict record (see the module docstring)."""
    time_it, _ = prepare(env_id, backend, batch, steps, seed)
    return time_it(repeats)


def run(args) -> list[dict]:
    import jax

    records = []
    for env_id in args.envs:
        for backend in args.backends:
            prev = None
            for batch in args.batch_sizes:
                # Extrapolate linearly from the last run, but only from one long enough
                # that the per-call overhead does not dominate its rate.
                est = None if prev is None else prev["run_s"] * batch / prev["batch"]
                trusted = prev is not None and prev["run_s"] >= min(1.0, args.max_run_seconds / 10)
                if trusted and est > args.max_run_seconds:
                    rec = dict(
                        env_id=env_id,
                        backend=backend,
                        batch=batch,
                        steps=args.steps,
                        compile_s=None,
                        run_s=None,
                        sps=None,
                        device=_device_name(jax),
                        skipped=f"est. {est:.0f} s/run",
                    )
                else:
                    rec = measure(env_id, backend, batch, args.steps, args.repeats, args.seed)
                    prev = rec
                rec["threads"] = _threads() if backend == "mujoco" else None
                records.append(rec)
                print(_line(rec), flush=True)
    return records


def _threads() -> int:
    from active_rlhf_jax.envs.mujoco_physics import default_num_threads

    return default_num_threads()


def _load() -> str:
    try:
        return "/".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def _line(rec) -> str:
    head = f"{rec['env_id']:>15} {rec['backend']:>6} B={rec['batch']:<5}"
    if rec["skipped"]:
        return f"{head} skipped ({rec['skipped']}) [{rec['device']}]"
    return (
        f"{head} {rec['sps']:>10,.0f} steps/s  compile {rec['compile_s']:.1f} s  [{rec['device']}]"
    )


def markdown_table(records: list[dict], backends=("mujoco", "mjx")) -> str:
    """One row per (env, batch), one steps/s + compile column pair per backend."""
    cells = {(r["env_id"], r["batch"], r["backend"]): r for r in records}
    rows = sorted(
        {(r["env_id"], r["batch"]) for r in records},
        key=lambda k: ([r["env_id"] for r in records].index(k[0]), k[1]),
    )
    backends = [b for b in backends if any(r["backend"] == b for r in records)]
    head = ["env", "batch"]
    for b in backends:
        head += [f"{b} steps/s", f"{b} compile (s)"]
    head.append("device")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for env_id, batch in rows:
        row = [env_id, str(batch)]
        device = ""
        for b in backends:
            r = cells.get((env_id, batch, b))
            if r is None:
                row += ["", ""]
                continue
            device = r["device"]
            if r["skipped"]:
                row += [f"skipped ({r['skipped']})", ""]
            else:
                row += [f"{r['sps']:,.0f}", f"{r['compile_s']:.1f}"]
        row.append(device)
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    args = _parse_args(argv)
    if args.threads is not None:
        os.environ["ACTIVE_RLHF_MUJOCO_THREADS"] = str(args.threads)
    import jax

    print(
        f"# env throughput: jax {jax.__version__}, devices {jax.devices()}, "
        f"host cpus {os.cpu_count()}, {platform.processor() or platform.machine()}, "
        f"load average {_load()} (other processes share these cores)"
    )
    print(f"# C backend threads: {_threads()}; {args.steps} steps per jitted scan")
    records = run(args)
    print(f"# load average after the run: {_load()}")
    print()
    print(markdown_table(records))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                dict(
                    jax=jax.__version__,
                    cpus=os.cpu_count(),
                    load_average_after=_load(),
                    steps=args.steps,
                    records=records,
                ),
                f,
                indent=1,
            )
    return records


if __name__ == "__main__":
    main()
