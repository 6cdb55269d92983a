"""benchmarks/compile_then_time.py: children compile together, then time one at a time.

The children are tiny Python scripts (no JAX) that log when their "timing" starts and
ends; the orchestrator must run those phases in the given order without overlap, report a
child that dies before its timing, and kill what is left at the deadline.
"""

import sys
import time

from benchmarks.compile_then_time import main

CHILD = """
import sys, time
sys.path.insert(0, {root!r})
from benchmarks._barrier import wait_turn
name, compile_s, run_s, log = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
barrier = sys.argv[sys.argv.index("--barrier") + 1]
if name == "dies":
    sys.exit(3)
time.sleep(compile_s)
wait_turn(barrier)
with open(log, "a") as f:
    f.write(f"{{name}} start {{time.monotonic()}}\\n")
time.sleep(run_s)
with open(log, "a") as f:
    f.write(f"{{name}} end {{time.monotonic()}}\\n")
"""


def _child(tmp_path):
    import pathlib

    root = str(pathlib.Path(__file__).resolve().parents[1])
    path = tmp_path / "child.py"
    path.write_text(CHILD.format(root=root))
    return path


def _events(log):
    out = []
    for line in log.read_text().splitlines():
        name, what, t = line.split()
        out.append((name, what, float(t)))
    return out


def test_timed_phases_run_alone_in_the_given_order(tmp_path, capsys):
    child, log = _child(tmp_path), tmp_path / "log.txt"
    # "slow" compiles longest but is timed first: nothing is timed before all are ready.
    cmds = [f"{sys.executable} {child} {n} {c} 0.3 {log}"
            for n, c in (("slow", 1.0), ("fast", 0.1), ("mid", 0.5))]
    t0 = time.monotonic()
    rc = main(["--deadline", "60", "--ready-timeout", "30"] + [a for c in cmds for a in ("--cmd", c)])
    assert rc == 0
    ev = _events(log)
    assert [(n, w) for n, w, _ in ev] == [("slow", "start"), ("slow", "end"), ("fast", "start"),
                                          ("fast", "end"), ("mid", "start"), ("mid", "end")]
    times = [t for _, _, t in ev]
    assert times == sorted(times)  # each starts after the one before ended: no overlap
    assert ev[0][2] - t0 >= 1.0  # the first timing waited for the slowest compile
    assert "[0] exit 0" in capsys.readouterr().out


def test_a_child_dying_before_its_timing_is_reported_and_the_rest_run(tmp_path, capsys):
    child, log = _child(tmp_path), tmp_path / "log.txt"
    cmds = [f"{sys.executable} {child} dies 0 0 {log}", f"{sys.executable} {child} ok 0.1 0.1 {log}"]
    rc = main(["--deadline", "60"] + [a for c in cmds for a in ("--cmd", c)])
    assert rc == 1
    assert [(n, w) for n, w, _ in _events(log)] == [("ok", "start"), ("ok", "end")]
    assert "[0] exited with 3 before its timing" in capsys.readouterr().out


def test_the_deadline_kills_a_timing_and_what_never_got_ready(tmp_path, capsys):
    child, log = _child(tmp_path), tmp_path / "log.txt"
    cmds = [f"{sys.executable} {child} long 0.1 30 {log}",
            f"{sys.executable} {child} never 30 0 {log}"]
    t0 = time.monotonic()
    rc = main(["--deadline", "3", "--ready-timeout", "1"] + [a for c in cmds for a in ("--cmd", c)])
    assert rc == 1 and time.monotonic() - t0 < 20
    out = capsys.readouterr().out
    assert "[0] killed at the deadline during its timing" in out
    assert "[1] killed at the deadline before its timing" in out
    assert [(n, w) for n, w, _ in _events(log)] == [("long", "start")]
