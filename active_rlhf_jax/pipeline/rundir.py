"""Run-directory safety: one writer at a time, and resumes that survive a damaged directory.

* :class:`RunLock`: an advisory ``fcntl.flock`` on ``DIR/run.lock``, held for the whole run.
  The kernel drops it when the holder exits, however it exits (kill -9 included), so a
  stale lock file never blocks a resume; the file only says who holds it (pid, host, time).
* :func:`recover_metrics`: ``metrics.jsonl`` cut back to the restored checkpoint; a torn
  last line (the writer was killed mid-line) is dropped with a note.
* :func:`restore_newest`: the newest checkpoint that restores, falling back to older ones
  with a note; damaged ones are moved to ``DIR/checkpoints.damaged/``.
* :func:`clean_checkpoints`: leftovers of interrupted saves (orbax temporary folders) and
  of interrupted deletions (step folders older than the ``keep`` newest) are removed.
* :func:`savable` / :func:`unsaved_filled`: zero-size leaves (MJX's ``Data.act`` on a model
  without activations) left out of a checkpoint and put back on restore; orbax refuses to
  save arrays of size zero.

All messages are one line; failures raise :class:`ConfigError` naming the path (exit 2).
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from active_rlhf_jax.config import ConfigError

LOCK_FILE = "run.lock"
DAMAGED_DIR = "checkpoints.damaged"
ORBAX_TMP_MARK = ".orbax-checkpoint-tmp"


def note(message: str) -> None:
    """A one-line note on stderr (resume repairs, device notes)."""
    print(f"active-rlhf: note: {message}", file=sys.stderr, flush=True)


def check_out_dir(out: Path, field: str = "out") -> None:
    """Create ``out`` (with parents) or raise a one-line ConfigError naming the path."""
    if out.exists() and not out.is_dir():
        raise ConfigError(field, f"{out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(field, f"cannot create {out}: {e.strerror or e}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(field, f"{out} is not writable")


class RunLock:
    """Exclusive advisory lock on a run directory (``with RunLock(dir, field): ...``).

    Raises ConfigError(field) naming the holder when another process holds it.
    """

    def __init__(self, out: Path, field: str = "out"):
        self.path = Path(out) / LOCK_FILE
        self.field = field
        self.fd = None

    def acquire(self) -> "RunLock":
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ConfigError(self.field, f"cannot create {self.path}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                os.close(fd)
                raise ConfigError(self.field, f"cannot lock {self.path}: {e.strerror}") from None
            holder = os.pread(fd, 300, 0).decode(errors="replace").strip() or "unknown process"
            os.close(fd)
            raise ConfigError(
                self.field, f"{self.path.parent} is in use by another run ({holder}); "
                "wait for it to finish or use another directory") from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {stamp}\n".encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            # Unlinking would let a waiter lock the old inode while a newcomer creates a
            # new file: the file stays, emptied, and the kernel lock goes with the close.
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def recover_metrics(path: Path, last_iteration: int) -> None:
    """Keep the rows of ``metrics.jsonl`` up to ``last_iteration`` (atomic rewrite).

    A last line that is not JSON (a torn write) is dropped with a note; a bad line before
    the last one is real damage and raises ConfigError naming ``path:line``.
    """
    if not path.exists():
        return
    text = path.read_text()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    keep = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            it = int(row["iteration"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if lineno == len(lines):
                note(f"{path}: dropped a torn last line ({len(line)} characters)")
                break
            raise ConfigError(str(path), f"line {lineno} is not a metrics row; the file "
                              "is damaged (move it aside to resume without it)") from None
        if it <= last_iteration:
            keep.append(line)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, path)


def read_metrics_rows(path: Path) -> list[dict]:
    """All rows of a ``metrics.jsonl`` already cleaned by :func:`recover_metrics`."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def clean_checkpoints(ckpt_dir: Path, keep: int) -> None:
    """Remove orbax temporary folders and step folders older than the ``keep`` newest.

    Orbax saves into ``<step>.orbax-checkpoint-tmp*`` and renames when done, and deletes
    the oldest step after a save: a kill during either leaves such folders behind.
    """
    if not ckpt_dir.is_dir():
        return
    steps = []
    for p in ckpt_dir.iterdir():
        if ORBAX_TMP_MARK in p.name:
            note(f"removed {p.name} (a checkpoint write that was interrupted)")
            shutil.rmtree(p, ignore_errors=True)
        elif p.is_dir() and p.name.isdigit():
            steps.append(int(p.name))
    for step in sorted(steps)[:-keep] if len(steps) > keep else []:
        note(f"removed checkpoint {step} (a checkpoint deletion that was interrupted)")
        shutil.rmtree(ckpt_dir / str(step), ignore_errors=True)


def savable(tree):
    """``tree`` with every zero-size leaf replaced by ``None`` (nothing to save; orbax
    raises ``ValueError: Cannot save arrays with zero size``). Leaves are arrays or
    ``jax.ShapeDtypeStruct``s (the abstract tree of a restore)."""
    import jax

    from active_rlhf_jax.pipeline.state import PipelineState

    leaves, treedef = jax.tree_util.tree_flatten(tree)
    out = jax.tree_util.tree_unflatten(
        treedef, [None if 0 in leaf.shape else leaf for leaf in leaves])
    if isinstance(out, PipelineState) and out.restart is None:
        # A state without the two-phase schedule's restart point saves as one saved before
        # the field existed (a dict of the other fields: the same checkpoint on disk), so
        # such checkpoints still restore and resume.
        return {f.name: getattr(out, f.name) for f in dataclasses.fields(out)
                if f.name != "restart"}
    return out


def unsaved_filled(restored, abstract):
    """The tree of ``abstract`` from ``restored`` (a restore of ``savable(abstract)``): its
    ``None`` leaves become zero-size arrays of ``abstract``'s shape, dtype and sharding."""
    import jax
    import numpy as np

    if isinstance(restored, dict) and dataclasses.is_dataclass(abstract):  # see savable
        restored = abstract.replace(**restored)
    leaves, treedef = jax.tree_util.tree_flatten(abstract)
    got = treedef.flatten_up_to(restored)
    filled = []
    for a, r in zip(leaves, got):
        if 0 in a.shape:
            sharding = getattr(a, "sharding", None)
            r = jax.device_put(np.zeros(a.shape, a.dtype), sharding)
        filled.append(r)
    return jax.tree_util.tree_unflatten(treedef, filled)


def restore_newest(managers, restore_one, outs, move: bool = True):
    """Restore the newest checkpoint step that loads in every run; -> (step, [state per run]),
    or (None, None) if there is none.

    Args:
        managers: the orbax CheckpointManager of each ``out/checkpoints`` (one run, or the
            cells of one program, which save the same steps).
        restore_one: ``(run index, step) -> state`` (raises when the checkpoint is damaged).
        outs: the run directories (damaged checkpoints go to ``out/checkpoints.damaged``).
        move: move damaged ones aside (False on all but process 0 of a multi-process run).

    Only steps every run holds are tried, newest first. A checkpoint that fails is moved
    aside with a note and the previous step is tried. If there were such steps and none
    restores, it is not damage but a mismatch (e.g. a config.json edited after the run
    started): ConfigError, nothing moved.
    """
    steps = sorted(set.intersection(*(set(m.all_steps(read=True)) for m in managers)),
                   reverse=True)
    failed = []
    for step in steps:
        states = []
        for i in range(len(managers)):
            try:
                states.append(restore_one(i, step))
            except Exception as e:  # orbax raises many types for a damaged folder
                first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                failed.append((i, step, f"{type(e).__name__}: {first}"))
                break
        if len(states) < len(managers):
            continue
        for i, bad, why in failed if move else []:
            dest = outs[i] / DAMAGED_DIR / f"{bad}-{int(time.time())}"
            dest.parent.mkdir(exist_ok=True)
            shutil.move(str(outs[i] / "checkpoints" / str(bad)), str(dest))
            note(f"checkpoint {bad} cannot be restored ({why}); moved to {dest}, "
                 f"resuming from checkpoint {step}")
        return step, states
    if failed:
        i, step, why = failed[0]
        raise ConfigError("resume", f"no checkpoint in {outs[i] / 'checkpoints'} can be "
                          f"restored with {outs[i] / 'config.json'} (newest, {step}: {why})")
    return None, None


def drop_checkpoints_after(ckpt_dir: Path, step: int | None) -> None:
    """Remove step folders newer than ``step`` (all of them for None), with a note.

    The cells of one program save one after another; a run killed between two saves
    leaves some cells a step ahead of the step the group resumes from, and that step
    would be saved again.
    """
    if not ckpt_dir.is_dir():
        return
    for p in sorted(ckpt_dir.iterdir()):
        if p.is_dir() and p.name.isdigit() and (step is None or int(p.name) > step):
            note(f"removed checkpoint {p.name} of {ckpt_dir.parent.name} (the other runs of "
                 f"its program resume from {step if step is not None else 'the start'})")
            shutil.rmtree(p, ignore_errors=True)
