"""Compile apart, time alone: the child side of ``benchmarks.compile_then_time``.

A benchmark started with ``--barrier PATH`` compiles everything it will time, then calls
:func:`wait_turn`: it creates ``PATH.ready`` and sleeps until ``PATH.go`` exists. The
orchestrator starts several benchmarks at once (their compiles share the host's cores) and
lets them time one at a time, so no timed run shares the device or the host with another
benchmark's work.
"""

from __future__ import annotations

import time
from pathlib import Path


def wait_turn(path: str | None, poll_s: float = 0.05) -> None:
    """No-op without ``path``; else signal ready and wait for the go."""
    if not path:
        return
    Path(f"{path}.ready").touch()
    go = Path(f"{path}.go")
    while not go.exists():
        time.sleep(poll_s)
