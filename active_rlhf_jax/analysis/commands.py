"""``evaluate``, ``plot`` and ``compare`` subcommands (registered by ``active_rlhf_jax.cli``).

Thin: argument parsing and printing only; the work is in :mod:`active_rlhf_jax.evaluation`
and :mod:`active_rlhf_jax.analysis`. Heavy imports (JAX, MuJoCo, matplotlib) happen inside
the handlers, so building the parser is cheap. Standalone use::

    python -m active_rlhf_jax.analysis.commands plot RUN_A RUN_B --out figs
"""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import sys

from active_rlhf_jax.analysis.stats import DEFAULT_BOOTSTRAP_REPS
from active_rlhf_jax.config import ConfigError
from active_rlhf_jax.strict_json import dumps as _dumps


def cmd_evaluate(args: argparse.Namespace) -> int:
    from active_rlhf_jax import evaluation

    if args.episodes < 0 or (args.episodes == 0 and not args.video):
        raise ConfigError("episodes", f"must be positive (0 only with --video), got "
                          f"{args.episodes}")
    if args.video:
        _parse_size(args.video_size)  # bad input before any work
    if args.video:
        # Before anything renders (also before the evaluation, in case it imports a renderer).
        evaluation.ensure_gl_backend()
    if args.episodes > 0:
        # Libraries print notes to stdout on import (e.g. MJX's "Failed to import warp");
        # send them to stderr so stdout stays one JSON object per line.
        with contextlib.redirect_stdout(sys.stderr):
            record = evaluation.evaluate(
                args.run_dir,
                episodes=args.episodes,
                backend=args.backend,
                step=args.step,
                max_steps=args.max_steps,
                seed=args.seed,
            )
        # stdout: one line per seed, then the summary (the record without its seed rows);
        # --output: the whole record, the schema of a run's final_eval.json.
        for rec in record["seeds"]:
            print(_dumps(rec))
        print(_dumps({k: v for k, v in record.items() if k != "seeds"}))
        if args.output:
            pathlib.Path(args.output).write_text(_dumps(record))
    if args.video:
        w, h = _parse_size(args.video_size)
        with contextlib.redirect_stdout(sys.stderr):
            info = evaluation.render_video(
                args.run_dir,
                args.video,
                step=args.step,
                seed_index=args.video_seed_index,
                max_steps=args.max_steps,
                width=w,
                height=h,
                seed=args.seed,
            )
        print(_dumps({"video": info}))
    return 0


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError("video_size", f"expected WIDTHxHEIGHT, got {text!r}") from None
    return w, h


def _plot_runs(args: argparse.Namespace) -> list:
    """The runs ``plot`` draws: the run directories, or the arms of sweep directories (an
    arm's seeds pooled over the directories, labelled by the arm)."""
    from active_rlhf_jax.analysis import matrix
    from active_rlhf_jax.analysis.loading import load_runs, pool_runs

    sweeps = [matrix.is_matrix_dir(d) for d in args.run_dirs]
    if not any(sweeps):
        return load_runs(args.run_dirs, args.labels)
    if not all(sweeps):
        raise ConfigError("run_dirs", "mixes sweep directories and run directories; give "
                          "the sweep's arm directories instead (DIR/ARM)")
    if args.labels is not None:
        raise ConfigError("labels", "labels run directories; a sweep directory's curves are "
                          "labelled by their arms")
    return [pool_runs(group, group[0].label)
            for group in matrix.load_matrices(args.run_dirs)]


def cmd_plot(args: argparse.Namespace) -> int:
    from active_rlhf_jax.analysis.figures import env_warning, make_all_figures
    from active_rlhf_jax.analysis.summary import (
        COLUMNS,
        compute_summary,
        format_markdown,
        write_csv,
    )

    out = pathlib.Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError("out", f"{out} exists and is not a directory")
    runs = _plot_runs(args)
    warning = env_warning(runs)
    if warning:
        print(warning, file=sys.stderr)
    paths = make_all_figures(runs, out, reps=args.bootstrap_reps, seed=args.bootstrap_seed)
    rows = compute_summary(runs, reps=args.bootstrap_reps, seed=args.bootstrap_seed)
    table = format_markdown(rows, reps=args.bootstrap_reps)
    (out / "summary.md").write_text(table)
    write_csv(out / "summary.csv", rows, COLUMNS)
    print(table)
    print(f"wrote {len(paths) + 2} files to {out}", file=sys.stderr)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from active_rlhf_jax.analysis import matrix
    from active_rlhf_jax.analysis.loading import load_runs
    from active_rlhf_jax.analysis.summary import compute_summary, format_markdown

    if all(matrix.is_matrix_dir(d) for d in args.run_dirs):
        # Sweep directories: the matrix table (every arm, % of ground truth, paired diffs),
        # an arm's seeds pooled over the directories.
        rows, pairs = matrix.compute_matrix(matrix.load_matrices(args.run_dirs),
                                            reps=args.bootstrap_reps, seed=args.bootstrap_seed,
                                            extra_pairs=args.pair or (),
                                            rerun_replaces=args.rerun_replaces)
        if args.json:
            for r in rows + pairs:
                print(_dumps(r))
        else:
            print(matrix.format_matrix(rows, pairs, reps=args.bootstrap_reps), end="")
        return 0
    if args.pair:
        raise ConfigError("pair", "pairs arms of sweep directories (active-rlhf sweep --out "
                          "DIR); these are run directories")
    if args.rerun_replaces:
        raise ConfigError("rerun-replaces", "merges the seeds of sweep directories (active-rlhf "
                          "sweep --out DIR); these are run directories")
    runs = load_runs(args.run_dirs, args.labels)
    rows = compute_summary(runs, reps=args.bootstrap_reps, seed=args.bootstrap_seed)
    if args.json:
        for r in rows:
            print(_dumps(r))
    else:
        print(format_markdown(rows, reps=args.bootstrap_reps), end="")
    return 0


def _add_common_runs(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "run_dirs", nargs="+", metavar="DIR", help="run directories (one group of seeds each)"
    )
    p.add_argument(
        "--labels", nargs="+", default=None, help="legend label per DIR (default: directory names)"
    )
    p.add_argument(
        "--bootstrap-reps",
        type=int,
        default=DEFAULT_BOOTSTRAP_REPS,
        help="stratified-bootstrap resamples for IQM CIs and profiles (default %(default)s)",
    )
    p.add_argument(
        "--bootstrap-seed", type=int, default=0, help="seed of the bootstrap (default 0)"
    )


def add_subparsers(subparsers) -> None:
    """Register ``evaluate``, ``plot`` and ``compare`` on an argparse subparsers object.

    Each subparser sets ``func`` (``args.func(args) -> exit code``).
    """
    from active_rlhf_jax.evaluation import BACKENDS

    p = subparsers.add_parser(
        "evaluate",
        allow_abbrev=False,
        help="run the saved deterministic policies and report the true return",
        description="Load the final (or --step) policy of every seed with its observation "
        "normaliser, run N deterministic episodes per seed, print one JSON object per seed "
        "and a summary (mean and Student-t 95% CI of the true return over seeds).",
    )
    p.add_argument("run_dir", metavar="DIR", help="run directory (active-rlhf train --out)")
    p.add_argument("--episodes", type=int, default=10, help="episodes per seed (0: video only)")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="ours",
        help="ours (our envs; C MuJoCo on CPU, MJX on GPU), mjx, mujoco, or gymnasium "
        "(Gymnasium's own env with the same id); default %(default)s",
    )
    p.add_argument("--step", type=int, default=None, help="env step of an intermediate checkpoint")
    p.add_argument(
        "--max-steps", type=int, default=None, help="episode horizon (default: the task's)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the initial-state noise")
    p.add_argument("--output", default=None, help="also write the results as JSON to this file")
    p.add_argument(
        "--video",
        default=None,
        metavar="PATH",
        help="write an MP4 of one deterministic episode (MuJoCo offscreen rendering; "
        "MUJOCO_GL defaults to egl)",
    )
    p.add_argument("--video-size", default="320x240", help="WIDTHxHEIGHT (default %(default)s)")
    p.add_argument("--video-seed-index", type=int, default=0, help="which seed's policy to film")
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser(
        "plot",
        allow_abbrev=False,
        help="figures (PNG+SVG+CSV) and a summary table from run directories, or from "
        "sweep directories (one curve per arm, its seeds pooled over the directories)",
        description="True return vs env steps and vs queries, reward-model Spearman vs "
        "queries, BALD per modality, per-iteration modality split, IQM/mean with 95% CIs and "
        "performance profiles (rliable), and a markdown summary table.",
    )
    _add_common_runs(p)
    p.add_argument("--out", required=True, metavar="FIGDIR", help="output folder")
    p.set_defaults(func=cmd_plot)

    p = subparsers.add_parser(
        "compare",
        help="final-return summary table of run directories, or the matrix table of a sweep "
        "directory (active-rlhf sweep --out DIR)",
        allow_abbrev=False,
    )
    _add_common_runs(p)
    p.add_argument(
        "--json", action="store_true", help="one JSON object per run instead of markdown"
    )
    p.add_argument(
        "--pair", nargs=2, action="append", metavar=("ARM", "BASELINE"),
        help="sweep directories: also the paired difference ARM - BASELINE (repeatable; "
        "each BALD arm is paired with its random arm without it)",
    )
    p.add_argument(
        "--rerun-replaces", action="store_true",
        help="sweep directories: a seed an arm has in two of them is taken from the later "
        "one (a rerun, e.g. after a fix; the table lists it) instead of refused",
    )
    p.set_defaults(func=cmd_compare)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m active_rlhf_jax.analysis.commands")
    add_subparsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
