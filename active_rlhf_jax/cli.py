"""``active-rlhf``: a thin command line over the library (no algorithm logic here).

Subcommands: ``train`` (run or resume an experiment), ``presets`` (list them), and
``evaluate`` / ``plot`` / ``compare`` (from :mod:`active_rlhf_jax.analysis.commands`).
Every config field is a flag (``--run.budget 500``, ``--ppo.learning_rate 1e-4``);
``active-rlhf train --help`` lists them with their meaning. Flags must be spelled out
(no abbreviations: ``--run.bud`` is an error, not ``--run.budget``).

Exit status: 0 done, 2 bad input (one line naming the field or path, nothing written),
3 the run's state became NaN/Inf (one line naming the quantity and the iteration).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys

from active_rlhf_jax import strict_json
from active_rlhf_jax.config import (
    SECTIONS,
    Config,
    ConfigError,
    field_help,
    leaf_values,
    parse_value,
    replace,
)


def _leaf_fields(cls, default, prefix=""):
    """Yield (dotted name, default value, help) for every leaf field of a config tree.

    The help is the field's own metadata (``config.option(..., help=...)``), so it does
    not depend on how a Python version lays out docstrings."""
    for f in dataclasses.fields(cls):
        value = getattr(default, f.name)
        name = prefix + f.name
        if dataclasses.is_dataclass(value):
            yield from _leaf_fields(type(value), value, name + ".")
        else:
            yield name, value, field_help(f)


def _metavar(value, annotation) -> str:
    """The flag's value placeholder: its type, from the default or the annotation."""
    if isinstance(value, tuple):
        kind = type(value[0]).__name__.upper() if value else "X"
        return f"{kind},{kind},..."
    if value is not None:
        return type(value).__name__.upper()
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    kinds = [t.strip() for t in re.split(r"[|\[\],]", text.replace("Optional", ""))]
    kinds = [k for k in kinds if k and k != "None"]
    return (kinds[0].upper() if kinds else "VALUE") + "|null"


def _field_metavars(cls, default, prefix="") -> dict[str, str]:
    out = {}
    for f in dataclasses.fields(cls):
        value = getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            out.update(_field_metavars(type(value), value, prefix + f.name + "."))
        else:
            out[prefix + f.name] = _metavar(value, f.type)
    return out


def _add_train_parser(sub, preset: str | None = None, with_fields: bool = True):
    """The ``train`` subparser; with ``with_fields`` one flag per config field, whose
    shown default is ``preset``'s value (builds the preset's config)."""
    name = preset or "default"
    cfg = None
    if with_fields:
        from configs.presets import get_preset

        cfg = get_preset(name)
    p = sub.add_parser(
        "train",
        allow_abbrev=False,
        help="run an RLHF experiment (or --resume one)",
        usage="active-rlhf train [--preset NAME] (--out DIR | --resume DIR) [--seeds N] "
        "[--no-progress] [--GROUP.FIELD VALUE ...]",
        description="Run an experiment from a preset; any config field can be overridden. "
        "Presets combine with '+', e.g. cheetah+bald-info+noisy (see `active-rlhf presets`). "
        "Ctrl-C stops between writes; `--resume DIR` continues from the last checkpoint.",
    )
    p.add_argument("--preset", default=None, metavar="NAME",
                   help="preset name(s) joined by '+' (default: default)")
    seeds = "the preset's" if cfg is None else f"{cfg.seeds}, the preset's"
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help=f"seeds run side by side in one vmapped call (default: {seeds})")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="run directory to create (required unless --resume)")
    p.add_argument("--resume", default=None, metavar="DIR",
                   help="continue a stopped run from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_process_flags(p)
    p.set_defaults(func=_cmd_train)
    if with_fields:
        _add_field_flags(p, cfg, name)


def _add_process_flags(p) -> None:
    mp = p.add_argument_group(
        "several processes (jax.distributed; start the same command once per process)")
    mp.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                    help="process 0's address; turns the multi-process runtime on")
    mp.add_argument("--num-processes", type=int, default=None, metavar="N",
                    help="processes in all")
    mp.add_argument("--process-id", type=int, default=None, metavar="I",
                    help="this process, 0..N-1")


def _start_processes(args) -> None:
    """``jax.distributed`` from ``--coordinator`` (nothing without it)."""
    if args.coordinator is None:
        return
    from active_rlhf_jax.pipeline.distributed import initialize

    for name in ("num_processes", "process_id"):
        if getattr(args, name) is None:
            raise ConfigError(name, "is required with --coordinator")
    initialize(args.coordinator, args.num_processes, args.process_id)


def _add_field_flags(p, cfg, name: str) -> None:
    """One ``--GROUP.FIELD`` flag per config field (dest ``cfg:NAME``, None = not given);
    the defaults shown are ``cfg``'s (preset ``name``)."""
    metavars = _field_metavars(Config, cfg)
    group = p.add_argument_group(
        f"config fields (override the preset; the defaults shown are --preset {name}'s)")
    for field_name, default, help_text in _leaf_fields(Config, cfg):
        if field_name in ("seeds",):
            continue
        group.add_argument(
            f"--{field_name}", dest=f"cfg:{field_name}", default=None,
            metavar=metavars[field_name],
            help=f"{help_text} [default: {default!r}]".replace("%", "%%"),
        )


def _add_sweep_parser(sub, preset: str | None = None, with_fields: bool = True):
    p = sub.add_parser(
        "sweep", allow_abbrev=False,
        help="run an experiment matrix (arms x grid): one run directory per cell, same seeds",
        description="Run every arm (an experiment preset appended to --preset) with the same "
        "seeds into OUT/ARM; a rerun skips finished arms and resumes interrupted ones. "
        "Then prints the matrix table (also `active-rlhf compare OUT`).",
    )
    p.add_argument("--preset", required=True, metavar="NAME",
                   help="base preset, e.g. cheetah+results")
    p.add_argument("--arms", default=None,
                   help="comma-separated arms, e.g. ground-truth,pref-random,pref-bald,"
                   "bald-info+noisy; a part may set a field: pref-bald+reward.lr=0.001")
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=V1,V2",
                   help="cross every arm with these values of FIELD (repeatable: every "
                   "combination); each cell is its own run directory, e.g. "
                   "--grid reward.lr=1e-3,3e-4 --grid teacher.beta=0.5,1")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="seeds per arm, one vmapped call (default: the preset's)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="sweep directory (one subdirectory per arm)")
    p.add_argument("--gym-eval-episodes", type=int, default=10, metavar="N",
                   help="deterministic episodes per seed in Gymnasium's env after each arm "
                   "(MuJoCo tasks; 0: none) (default: 10)")
    p.add_argument("--cells-per-call", type=int, default=0, metavar="K",
                   help="at most K cells in one compiled call (cells that differ only in "
                   "traced hyperparameters share one; 0: no limit) (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_process_flags(p)
    p.set_defaults(func=_cmd_sweep)
    if with_fields:
        from configs.presets import get_preset

        _add_field_flags(p, get_preset(preset or "default"), preset or "default")


def _cmd_sweep(args) -> int:
    from active_rlhf_jax.pipeline import interrupt
    from active_rlhf_jax.sweep import arm_config, expand_grid, parse_arms, parse_grid, run_sweep

    if args.arms is None and not args.grid:
        raise ConfigError("arms", "give --arms, --grid or both")
    arms = expand_grid(parse_arms(args.arms) if args.arms is not None else [],
                       parse_grid(args.grid))
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError("seeds", f"must be >= 1, got {args.seeds}")
    if args.gym_eval_episodes < 0:
        raise ConfigError("gym_eval_episodes", f"must be >= 0, got {args.gym_eval_episodes}")
    if args.cells_per_call < 0:
        raise ConfigError("cells_per_call", f"must be >= 0, got {args.cells_per_call}")
    # The flags' types from the first arm, unchecked: an arm may be valid only with them
    # (e.g. a two-phase arm whose budget needs the flags' longer run).
    changes = _flag_changes(args, arm_config(args.preset, arms[0], {}, None, validate=False))
    changes.pop("seeds", None)  # passed on its own: sweep.json records it apart
    _start_processes(args)
    interrupt.install("interrupted; run the same sweep command again to resume")
    run_sweep(args.preset, arms, args.out, changes, args.seeds, progress=not args.no_progress,
              gym_eval_episodes=args.gym_eval_episodes, cells_per_call=args.cells_per_call)
    from active_rlhf_jax.analysis.matrix import compute_matrix, format_matrix, load_matrix
    from active_rlhf_jax.pipeline.distributed import finish, is_main_process

    if is_main_process():
        try:
            print(format_matrix(*compute_matrix(load_matrix(args.out))), end="")
        except ModuleNotFoundError as e:
            # A partial environment (a lent GPU image with carried wheels) may lack the
            # table's bootstrap library; every run is finished and written by now, so say
            # how to get the table instead of failing the sweep after its work is done.
            if e.name != "rliable":
                raise
            print(f"active-rlhf: every run finished; the closing table needs rliable, which "
                  f"is not installed: pip install rliable==1.2.0, then active-rlhf compare "
                  f"{args.out}", file=sys.stderr)
    # Under jax.distributed the other processes wait here while process 0 evaluates in
    # Gymnasium and prints (minutes for MuJoCo tasks), not in JAX's shutdown barrier,
    # which gives up after 300 s; then all leave the runtime together.
    finish("sweep-finished")
    return 0


def _cmd_train(args) -> int:
    from active_rlhf_jax.pipeline.runner import run
    from configs.presets import get_preset

    _start_processes(args)
    from active_rlhf_jax.pipeline import interrupt
    from active_rlhf_jax.pipeline.distributed import finish

    def on_ctrl_c(run_dir):  # one line with the resume command, between writes, no traceback
        interrupt.install(f"interrupted; resume with `active-rlhf train --resume {run_dir}`")

    if args.resume:
        _check_resume_flags(args)
        on_ctrl_c(args.resume)
        summary = run(None, args.resume, resume=True, progress=not args.no_progress)
        print(strict_json.dumps(summary))
        finish("train-finished")
        return 0
    if not args.out:
        raise ConfigError("out", "a run directory is required (--out DIR)")
    base = get_preset(args.preset or "default")
    cfg = replace(base, **_flag_changes(args, base)).validate()
    on_ctrl_c(args.out)
    summary = run(cfg, args.out, progress=not args.no_progress)
    print(strict_json.dumps({k: v for k, v in summary.items() if k != "seeds"}))
    finish("train-finished")
    return 0


def _flag_changes(args, base=None) -> dict:
    """``{dotted field: parsed value}`` of the config flags given (and ``seeds``)."""
    defaults = leaf_values(base or Config())
    changes = {}
    for key, value in vars(args).items():
        if key.startswith("cfg:") and value is not None:
            name = key[4:]
            changes[name] = parse_value(value, defaults[name], name)
    if args.seeds is not None:
        changes["seeds"] = args.seeds
    return changes


def _check_resume_flags(args) -> None:
    """A resume takes its config from the run directory: flags that would change the run
    are an error (ConfigError naming the first); flags equal to the saved values pass.
    ``--no-progress`` and the multi-process flags change nothing and always pass."""
    import os

    from active_rlhf_jax.pipeline.runner import load_config
    from configs.presets import get_preset

    if args.out is not None and os.path.realpath(args.out) != os.path.realpath(args.resume):
        raise ConfigError("out", f"--out {args.out} differs from --resume {args.resume} "
                          "(a resume writes into the run it continues)")
    if args.preset is None and args.seeds is None and not any(
            k.startswith("cfg:") and v is not None for k, v in vars(args).items()):
        return
    saved = load_config(args.resume)
    base = get_preset(args.preset) if args.preset else saved
    given = replace(base, **_flag_changes(args, base))
    saved_fields = leaf_values(saved)
    saved_fields["seeds"] = saved.seeds
    given_fields = leaf_values(given)
    given_fields["seeds"] = given.seeds
    for name, value in given_fields.items():
        if value != saved_fields[name]:
            flag = f"--{name}" if args.preset is None else f"--preset {args.preset}"
            raise ConfigError(name, f"{flag} would change the run being resumed ("
                              f"saved {saved_fields[name]!r}, given {value!r}); a resume takes "
                              f"its config from {args.resume}/config.json")


def _cmd_presets(args) -> int:
    from configs.presets import describe_presets

    print(describe_presets())
    return 0


def _peek(argv) -> tuple[str | None, str | None]:
    """(subcommand, --preset value) from raw argv, before argparse runs."""
    command = next((a for a in argv if not a.startswith("-")), None)
    preset = None
    for i, a in enumerate(argv):
        if a == "--preset" and i + 1 < len(argv):
            preset = argv[i + 1]
        elif a.startswith("--preset="):
            preset = a.split("=", 1)[1]
    return command, preset


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The parser, tailored to ``argv`` when given (``main`` passes it).

    With ``argv``, the config-field flags (and so JAX) are only built for ``train`` and
    ``sweep``, so the other subcommands parse their arguments, and report errors in them,
    without the heavy imports, and the defaults in ``train --help`` are those of argv's
    ``--preset``. Without it, every flag is built with the ``default`` preset's values.
    """
    command, preset = ("train", None) if argv is None else _peek(list(argv))
    parser = argparse.ArgumentParser(prog="active-rlhf", description=__doc__.splitlines()[0],
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(sub, preset, with_fields=command == "train")
    _add_sweep_parser(sub, preset, with_fields=command == "sweep")
    pp = sub.add_parser("presets", help="list the presets", allow_abbrev=False)
    pp.set_defaults(func=_cmd_presets)
    try:
        from active_rlhf_jax.analysis.commands import add_subparsers
    except ImportError:  # pragma: no cover
        pass
    else:
        add_subparsers(sub)
    return parser


def _interrupted(message: str) -> int:
    print(f"\nactive-rlhf: {message}", file=sys.stderr)
    return 130


#: The config's groups (``--GROUP.FIELD``) and top-level fields; tests/test_first_hour.py
#: checks them against ``Config`` so the early check below cannot drift.
CONFIG_GROUPS = SECTIONS
CONFIG_TOP_FIELDS = ("name", "seed")
_FIELD_FLAG = re.compile(
    r"--(?:" + "|".join(CONFIG_TOP_FIELDS) + r"|(?:" + "|".join(CONFIG_GROUPS)
    + r")\.[A-Za-z_][A-Za-z0-9_]*)(?:=.*)?$")


def _early_train_check(argv) -> None:
    """Argument errors of ``train`` that need no config tree, before JAX is imported:
    bad values of the plain flags, flags that cannot be config fields, and no run
    directory. (A misspelt field name is only known once the config tree is built.)"""
    if any(a in ("-h", "--help") for a in argv):
        return
    parser = argparse.ArgumentParser(prog="active-rlhf")
    _add_train_parser(parser.add_subparsers(dest="command"), with_fields=False)
    args, unknown = parser.parse_known_args(argv)
    flags = [a for a in unknown if a.startswith("--") or re.match(r"-[A-Za-z]", a)]
    bad = [a for a in flags if not _FIELD_FLAG.match(a)]  # (-0.01 is a value, not a flag)
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)}")
    if not (args.out or args.resume):
        raise ConfigError("out", "a run directory is required (--out DIR)")


def main(argv=None) -> int:
    """Exit status: 0 done, 2 bad input or file-system problem, 3 non-finite state."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        try:
            if _peek(argv)[0] == "train":
                _early_train_check(argv)
            parser = build_parser(argv)
        except ConfigError as e:  # e.g. an unknown --preset while building train's flags
            print(f"active-rlhf: error: {e}", file=sys.stderr)
            return 2
        args = parser.parse_args(argv)
        if getattr(args, "command", None) in ("train", "sweep"):
            from active_rlhf_jax import compile_cache

            compile_cache.enable()
        try:
            return int(args.func(args) or 0)
        except ConfigError as e:
            print(f"active-rlhf: error: {e}", file=sys.stderr)
            return 2
        except OSError as e:  # a path the user gave: read-only, a file for a folder, full disk
            where = f"{e.filename}: " if e.filename is not None else ""
            print(f"active-rlhf: error: {where}{e.strerror or e}", file=sys.stderr)
            return 2
        except Exception as e:
            from active_rlhf_jax.pipeline.runner import NonFiniteError

            if isinstance(e, NonFiniteError):
                print(f"active-rlhf: error: {e}", file=sys.stderr)
                return 3
            raise
    except KeyboardInterrupt:  # before the train command's own handler is installed
        return _interrupted("interrupted")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
