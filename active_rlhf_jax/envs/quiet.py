"""Keep third-party start-up noise off the user's terminal and out of the working directory.

* ``mujoco.mjx`` prints ``Failed to import warp`` / ``Failed to import mujoco_warp`` on
  stdout when the optional NVIDIA Warp backend is not installed (we never use it):
  :func:`import_mjx` imports it with stdout captured.
* Compiling Gymnasium's ``half_cheetah.xml`` triggers MuJoCo's ``settotalmass`` deprecation
  warning, which MuJoCo's default handler prints *and* appends to ``MUJOCO_LOG.TXT`` in
  the current directory. :func:`mujoco_warnings` installs a handler for the duration of a
  model compile that drops that one known message (Gymnasium's XML, not ours to change)
  and prints any other warning on stderr, without a log file.
"""

from __future__ import annotations

import contextlib
import io
import sys

#: Warnings about Gymnasium's shipped XML that say nothing about the user's run.
KNOWN_NOISE = ("compiler attribute 'settotalmass' is deprecated",)


def _warn(message: str) -> None:
    if not any(k in message for k in KNOWN_NOISE):
        print(f"MuJoCo warning: {message}", file=sys.stderr)


@contextlib.contextmanager
def mujoco_warnings():
    """Route MuJoCo's user warnings to :func:`_warn` inside the block (restored after)."""
    import mujoco

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(_warn)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def import_mjx():
    """``mujoco.mjx`` without its ``Failed to import warp`` prints (other output kept)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        from mujoco import mjx
    rest = [ln for ln in buf.getvalue().splitlines()
            if ln and not ln.startswith(("Failed to import warp", "Failed to import mujoco_warp"))]
    for ln in rest:
        print(ln)
    return mjx
