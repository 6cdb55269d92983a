"""Ctrl-C for ``active-rlhf train``: stop now, between writes, with a one-line resume hint.

A chunk of RLHF iterations is one jitted call of up to a minute; Python runs its SIGINT
handler only when the main thread next executes bytecode, i.e. after the chunk returns,
and then prints a traceback. Here the signal wakes a watcher thread instead (through
:func:`signal.set_wakeup_fd`, written by the C-level handler whatever the main thread is
doing). The watcher waits while the runner is writing run files (:func:`writing` blocks:
metrics, checkpoint, final evaluation, policy), prints one line and ends the process with
status 130. The run directory then holds the last checkpoint and the metrics written with
it, which is exactly what ``--resume`` continues from. A second Ctrl-C exits at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading

#: Set while the runner writes run files; an interrupt waits for it to clear.
WRITING = threading.Event()
EXIT_STATUS = 130  # 128 + SIGINT, the shell's convention


@contextlib.contextmanager
def writing():
    """Mark a block of run-file writes: a Ctrl-C waits until it ends."""
    WRITING.set()
    try:
        yield
    finally:
        WRITING.clear()


def _watch(read_fd: int, message: str) -> None:
    while signal.SIGINT not in os.read(read_fd, 64):  # bytes of the signals caught
        pass
    while WRITING.is_set():
        ready, _, _ = select.select([read_fd], [], [], 0.05)
        if ready:  # a second Ctrl-C: exit now
            break
    sys.stderr.write("\n" + message + "\n")
    sys.stderr.flush()
    os._exit(EXIT_STATUS)


_installed: list[str] = []  # the message of the watcher in place (one per process)


def install(message: str) -> bool:
    """Route SIGINT to the watcher thread. Only from the main thread (signals are
    delivered there) and once per process; returns whether it was installed."""
    if _installed or threading.current_thread() is not threading.main_thread():
        return False
    _installed.append(message)
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd)
    # A Python-level handler is needed for the wakeup fd to be written; it does nothing,
    # so no KeyboardInterrupt lands in the middle of a write.
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    threading.Thread(target=_watch, args=(read_fd, message), daemon=True,
                     name="active-rlhf-interrupt").start()
    return True
