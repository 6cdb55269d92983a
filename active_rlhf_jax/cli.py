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
import json
import re
import sys

from active_rlhf_jax import strict_json


def _field_docs(cls) -> dict[str, str]:
    """Parse a Google-style ``Attributes:`` section into ``{name: description}``."""
    doc = cls.__doc__ or ""
    out, current = {}, None
    in_attrs = False
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped == "Attributes:":
            in_attrs = True
            continue
        if not in_attrs:
            continue
        m = re.match(r"^([a-z_][a-z0-9_, ]*):\s*(.*)$", stripped)
        if m and line.startswith(" " * 8) and not line.startswith(" " * 12):
            names = [n.strip() for n in m.group(1).split(",")]
            for n in names:
                out[n] = m.group(2)
            current = names
        elif stripped and current:
            for n in current:
                out[n] += " " + stripped
        elif not stripped and out:
            current = None
    return out


def _leaf_fields(cls, default, prefix=""):
    """Yield (dotted name, default value, help) for every leaf field of a config tree."""
    docs = _field_docs(cls)
    for f in dataclasses.fields(cls):
        value = getattr(default, f.name)
        name = prefix + f.name
        if dataclasses.is_dataclass(value):
            yield from _leaf_fields(type(value), value, name + ".")
        else:
            yield name, value, docs.get(f.name, "")


def _parse_value(text: str, default, name: str):
    from active_rlhf_jax.config_utils import ConfigError

    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(float(text)) if re.fullmatch(r"-?\d+(\.0*)?(e\d+)?", text) else int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            items = [t for t in text.replace("(", "").replace(")", "").split(",") if t.strip()]
            kind = type(default[0]) if default else float
            return tuple(kind(float(t)) if kind is int else kind(t.strip()) for t in items)
        if default is None:
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                return text
        return text
    except (ValueError, TypeError):
        raise ConfigError(name, f"cannot parse {text!r} as {type(default).__name__}") from None


def _add_train_parser(sub):

    p = sub.add_parser(
        "train",
        allow_abbrev=False,
        help="run an RLHF experiment (or --resume one)",
        description="Run an experiment from a preset; any config field can be overridden. "
        "Presets combine with '+', e.g. cheetah+bald-info+noisy (see `active-rlhf presets`).",
    )
    p.add_argument("--preset", default=None, help="preset name(s) joined by '+' [default]")
    p.add_argument("--seeds", type=int, default=None, help="seeds run in one vmapped call [1]")
    p.add_argument("--out", default=None, help="run directory (required unless --resume)")
    p.add_argument("--resume", default=None, metavar="DIR", help="continue a killed run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    mp = p.add_argument_group(
        "several processes (jax.distributed; start the same command once per process)")
    mp.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                    help="process 0's address; turns the multi-process runtime on")
    mp.add_argument("--num-processes", type=int, default=None, help="processes in all")
    mp.add_argument("--process-id", type=int, default=None, help="this process, 0..N-1")
    _add_field_flags(p)
    p.set_defaults(func=_cmd_train)


def _add_field_flags(p) -> None:
    """Every config field as a ``--group.field`` flag (``cfg:`` dests, None = not given)."""
    from active_rlhf_jax.pipeline.config import Config

    group = p.add_argument_group("config fields (override the preset)")
    for name, default, help_text in _leaf_fields(Config, Config()):
        if name in ("seeds",):
            continue
        group.add_argument(
            f"--{name}", dest=f"cfg:{name}", default=None, metavar=type(default).__name__.upper(),
            help=f"{help_text} [default: {default!r}]".replace("%", "%%"),
        )


def _add_sweep_parser(sub):
    p = sub.add_parser(
        "sweep", allow_abbrev=False,
        help="run an experiment matrix: one run directory per arm, same seeds",
        description="Run every arm (an experiment preset appended to --preset) with the same "
        "seeds into OUT/ARM; a rerun skips finished arms and resumes interrupted ones. "
        "Then prints the matrix table (also `active-rlhf compare OUT`).",
    )
    p.add_argument("--preset", required=True, help="base preset, e.g. cheetah+results")
    p.add_argument("--arms", required=True,
                   help="comma-separated arms, e.g. ground-truth,pref-random,pref-bald,"
                   "bald-info+noisy")
    p.add_argument("--seeds", type=int, default=None, help="seeds per arm, one vmapped call")
    p.add_argument("--out", required=True, help="sweep directory (one subdirectory per arm)")
    p.add_argument("--gym-eval-episodes", type=int, default=10,
                   help="deterministic episodes per seed in Gymnasium's env after each arm "
                   "(MuJoCo tasks; 0: none) [10]")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_field_flags(p)
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args) -> int:
    from active_rlhf_jax.config_utils import ConfigError
    from active_rlhf_jax.sweep import arm_config, parse_arms, run_sweep

    arms = parse_arms(args.arms)
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError("seeds", f"must be >= 1, got {args.seeds}")
    if args.gym_eval_episodes < 0:
        raise ConfigError("gym_eval_episodes", f"must be >= 0, got {args.gym_eval_episodes}")
    changes = _flag_changes(args, arm_config(args.preset, arms[0], {}, None))
    changes.pop("seeds", None)  # passed on its own: sweep.json records it apart
    run_sweep(args.preset, arms, args.out, changes, args.seeds, progress=not args.no_progress,
              gym_eval_episodes=args.gym_eval_episodes)
    from active_rlhf_jax.analysis.matrix import compute_matrix, format_matrix, load_matrix

    print(format_matrix(*compute_matrix(load_matrix(args.out))), end="")
    return 0


def _cmd_train(args) -> int:
    from active_rlhf_jax.config_utils import ConfigError
    from active_rlhf_jax.pipeline.config import replace
    from active_rlhf_jax.pipeline.runner import run
    from configs.presets import get_preset

    if args.coordinator is not None:
        from active_rlhf_jax.pipeline.distributed import initialize

        for name in ("num_processes", "process_id"):
            if getattr(args, name) is None:
                raise ConfigError(name, "is required with --coordinator")
        initialize(args.coordinator, args.num_processes, args.process_id)
    if args.resume:
        _check_resume_flags(args)
        summary = run(None, args.resume, resume=True, progress=not args.no_progress)
        print(strict_json.dumps(summary))
        return 0
    if not args.out:
        raise ConfigError("out", "a run directory is required (--out DIR)")
    base = get_preset(args.preset or "default")
    cfg = replace(base, **_flag_changes(args, base)).validate()
    summary = run(cfg, args.out, progress=not args.no_progress)
    print(strict_json.dumps({k: v for k, v in summary.items() if k != "seeds"}))
    return 0


def _flag_changes(args, base=None) -> dict:
    """``{dotted field: parsed value}`` of the config flags given (and ``seeds``)."""
    from active_rlhf_jax.pipeline.config import Config

    defaults = dict((n, d) for n, d, _ in _leaf_fields(Config, base or Config()))
    changes = {}
    for key, value in vars(args).items():
        if key.startswith("cfg:") and value is not None:
            name = key[4:]
            changes[name] = _parse_value(value, defaults[name], name)
    if args.seeds is not None:
        changes["seeds"] = args.seeds
    return changes


def _check_resume_flags(args) -> None:
    """A resume takes its config from the run directory: flags that would change the run
    are an error (ConfigError naming the first); flags equal to the saved values pass.
    ``--no-progress`` and the multi-process flags change nothing and always pass."""
    import os

    from active_rlhf_jax.config_utils import ConfigError
    from active_rlhf_jax.pipeline.config import replace
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
    saved_fields = dict((n, d) for n, d, _ in _leaf_fields(type(saved), saved))
    saved_fields["seeds"] = saved.seeds
    given_fields = dict((n, d) for n, d, _ in _leaf_fields(type(given), given))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="active-rlhf", description=__doc__.splitlines()[0],
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(sub)
    _add_sweep_parser(sub)
    pp = sub.add_parser("presets", help="list the presets", allow_abbrev=False)
    pp.set_defaults(func=_cmd_presets)
    try:
        from active_rlhf_jax.analysis.commands import add_subparsers
    except ImportError:  # pragma: no cover
        pass
    else:
        add_subparsers(sub)
    return parser


def main(argv=None) -> int:
    """Exit status: 0 done, 2 bad input or file-system problem, 3 non-finite state."""
    from active_rlhf_jax.config_utils import ConfigError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as e:
        print(f"active-rlhf: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user gave: read-only, a file for a folder, a full disk
        where = f"{e.filename}: " if e.filename is not None else ""
        print(f"active-rlhf: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except Exception as e:
        from active_rlhf_jax.pipeline.runner import NonFiniteError

        if isinstance(e, NonFiniteError):
            print(f"active-rlhf: error: {e}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
