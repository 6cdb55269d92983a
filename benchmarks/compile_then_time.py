"""Start several benchmarks at once, let them compile together, time them one at a time.

On an accelerator a benchmark's compile (minutes for MJX programs, on the host's CPU
cores) usually costs far more than its timed runs (seconds on the device). This starts
every ``--cmd`` at once with ``--barrier DIR/<i>`` appended (``benchmarks._barrier``):
each compiles all it will time, signals ready and waits. Once every command is ready (or
has exited, or ``--ready-timeout`` has passed), the ready ones are let go one at a time in
the order given, each only after the one before it exited, so no timed run shares the
device or the host with another command's compile or run. Commands not yet ready then are
let go as they become ready, alone too, until ``--deadline``; what is still running at
the deadline is killed, and said so.

The children get ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (each takes device memory as it
needs it instead of 75% of the device each). Their output goes to this process's stdout.

Usage::

    python -m benchmarks.compile_then_time --deadline 500 \\
        --cmd "python -m benchmarks.mjx_latency --batch-sizes 512" \\
        --cmd "python -m benchmarks.accelerator_scaling --points 512x8 --jsonl out.jsonl"
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cmd", action="append", required=True, help="repeatable; in timing order")
    p.add_argument("--deadline", type=float, default=540.0, help="seconds from start")
    p.add_argument("--ready-timeout", type=float, default=300.0,
                   help="seconds from start after which the ready commands are timed "
                   "without waiting for the rest")
    return p.parse_args(argv)


def _say(t0: float, msg: str) -> None:
    print(f"compile_then_time [{time.monotonic() - t0:6.1f} s]: {msg}", flush=True)


def main(argv=None) -> int:
    args = _parse_args(argv)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="compile_then_time_"))
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1")
    procs = []
    for i, cmd in enumerate(args.cmd):
        argv_i = shlex.split(cmd) + ["--barrier", str(work / str(i))]
        if argv_i[0] in ("python", "python3"):
            argv_i[0] = sys.executable
        procs.append(subprocess.Popen(argv_i, env=env))
        _say(t0, f"started [{i}] {cmd}")

    def ready(i):
        return (work / f"{i}.ready").exists()

    def left():
        return args.deadline - (time.monotonic() - t0)

    pending = list(range(len(procs)))
    while (time.monotonic() - t0 < args.ready_timeout and left() > 0
           and any(procs[i].poll() is None and not ready(i) for i in pending)):
        time.sleep(0.2)
    _say(t0, "ready: " + ", ".join(f"[{i}]" for i in pending if ready(i)) + "; still compiling: "
         + ", ".join(f"[{i}]" for i in pending if procs[i].poll() is None and not ready(i)))
    status = {}
    while pending and left() > 0:
        for i in list(pending):
            if procs[i].poll() is not None and not ready(i):
                status[i] = f"exited with {procs[i].returncode} before its timing"
                pending.remove(i)
        go = next((i for i in pending if ready(i)), None)
        if go is None:
            time.sleep(0.2)
            continue
        pending.remove(go)
        (work / f"{go}.go").touch()
        _say(t0, f"timing [{go}] alone")
        try:
            procs[go].wait(timeout=max(left(), 0.1))
            status[go] = f"exit {procs[go].returncode}"
        except subprocess.TimeoutExpired:
            status[go] = "killed at the deadline during its timing"
        _say(t0, f"[{go}] {status[go]}")
    for i, p in enumerate(procs):
        if p.poll() is None:
            p.kill()
            status.setdefault(i, "killed at the deadline before its timing")
    for i, cmd in enumerate(args.cmd):
        _say(t0, f"[{i}] {status.get(i, 'not run')}: {cmd}")
    return 0 if all(s == "exit 0" for s in status.values()) and len(status) == len(procs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
