"""What a new user reads and sees: help text, Ctrl-C, start-up noise, the progress bar."""

import argparse
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from active_rlhf_jax.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _subparsers(parser):
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def _help_texts(argv):
    parser = build_parser(argv)
    out = {}
    for name, sub in _subparsers(parser).items():
        for action in sub._actions:
            key = f"{name} {action.option_strings[-1] if action.option_strings else action.dest}"
            out[key] = action.help
    return parser, out


@pytest.mark.parametrize("preset", ["default", "hopper+bald-adaptive+noisy"])
def test_every_flag_has_help(preset):
    """Every flag of ``train --help`` says what it means: the text before the
    ``[default: ...]`` the parser appends is non-empty, for every section."""
    _, texts = _help_texts(["train", "--preset", preset])
    meaning = {k: (v or "").rsplit("[default:", 1)[0].strip() for k, v in texts.items()}
    missing = sorted(k for k, v in meaning.items() if not v)
    assert not missing, missing
    flags = [k for k in texts if k.startswith("train --")]
    assert len(flags) > 100
    for section in ("env", "run", "ppo", "reward", "teacher", "acquisition", "compat"):
        assert sum(k.startswith(f"train --{section}.") for k in flags) >= 4, section


def test_flag_help_is_the_fields_metadata_on_any_python():
    """The help is read from ``dataclasses.field`` metadata, not parsed from docstrings
    (which Python 3.13 lays out differently): with every docstring gone, it is unchanged."""
    import dataclasses

    from active_rlhf_jax import config as C

    def helps():
        return {k: v for k, v in _help_texts(["train"])[1].items() if k.startswith("train --")}

    before = helps()
    classes = [C.Config, C.EnvConfig, C.RunConfig, C.PPOConfig, C.RewardModelConfig,
               C.TeacherConfig, C.AcquisitionConfig, C.CompatConfig]
    docs = [cls.__doc__ for cls in classes]
    try:
        for cls in classes:
            cls.__doc__ = None
        assert helps() == before
    finally:
        for cls, doc in zip(classes, docs):
            cls.__doc__ = doc
    f = {f.name: f for f in dataclasses.fields(C.PPOConfig)}["clip_eps"]
    assert before["train --ppo.clip_eps"].startswith(f.metadata["help"])


def test_help_shows_the_presets_values_and_reads_cleanly(capsys):
    parser = build_parser(["train", "--preset", "default"])
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--preset", "default", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    # The default preset's values, not the package defaults (750, 5,000,000, 1).
    assert "total labels of both modalities" in text and "[default: 400]" in text
    assert "[default: 500000]" in text and "[default: 32]" in text
    for bad in ("NONETYPE", "§", "seed_spec", "%%", "``"):
        assert bad not in text, bad
    assert "FLOAT|null" in text  # teacher.skip_threshold: float or None
    for cmd in ("evaluate", "plot"):
        with pytest.raises(SystemExit):
            build_parser([cmd]).parse_args([cmd, "--help"])
        text = capsys.readouterr().out
        assert "%%" not in text and "95%" in text


def test_argument_errors_of_analysis_commands_come_before_jax():
    code = (
        "import sys\n"
        "from active_rlhf_jax.cli import main\n"
        "try:\n    main(['plot', '--out'])\nexcept SystemExit as e:\n    print('exit', e.code)\n"
        "print('heavy', [m for m in ('jax', 'mujoco', 'matplotlib') if m in sys.modules])\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                       timeout=120)
    assert "exit 2" in p.stdout and "heavy []" in p.stdout, p.stdout + p.stderr


def test_train_argument_errors_without_a_config_tree_come_before_jax():
    import dataclasses

    from active_rlhf_jax.cli import CONFIG_GROUPS, CONFIG_TOP_FIELDS, _early_train_check
    from active_rlhf_jax.config import Config

    fields = dataclasses.fields(Config)
    assert set(CONFIG_GROUPS) == {f.name for f in fields if dataclasses.is_dataclass(f.type)
                                  or f.name in CONFIG_GROUPS}
    assert set(CONFIG_TOP_FIELDS) | set(CONFIG_GROUPS) | {"seeds"} == {f.name for f in fields}
    _early_train_check(["train", "--out", "d", "--ppo.ent_coef", "-0.01", "--seed=3"])
    code = (
        "import sys\n"
        "from active_rlhf_jax.cli import main\n"
        "rcs = []\n"
        "for argv in (['train', '--bogus', '--out', 'x'], ['train', '--preset', 'smoke'],\n"
        "             ['train', '--seeds', 'two', '--out', 'x']):\n"
        "    try:\n        rcs.append(main(argv))\n"
        "    except SystemExit as e:\n        rcs.append(e.code)\n"
        "print('rcs', rcs, 'jax' in sys.modules)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                       timeout=120)
    assert "rcs [2, 2, 2] False" in p.stdout, p.stdout + p.stderr
    err = [ln for ln in p.stderr.splitlines() if "error:" in ln]
    assert "unrecognized arguments: --bogus" in err[0]
    assert err[1] == "active-rlhf: error: out: a run directory is required (--out DIR)"
    assert "--seeds: invalid int value: 'two'" in err[2]


def test_start_up_is_quiet_and_writes_no_mujoco_log(tmp_path):
    code = (
        "from active_rlhf_jax import envs\n"
        "import active_rlhf_jax.envs.mjx_physics\n"
        "envs.make('HalfCheetah-v5', backend='mujoco')\n"
        "from active_rlhf_jax.evaluation import make_gym_env\n"
        "make_gym_env('HalfCheetah-v5', {}, 5, verbose=False).close()\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                       cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    out = p.stdout + p.stderr
    assert "warp" not in out and "settotalmass" not in out, out
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def _interrupt_child(writing: bool):
    """A process with the train command's Ctrl-C handler, blocked in a call that never
    returns to Python (as the main thread is inside a jitted chunk)."""
    code = (
        "import sys, threading\n"
        "from active_rlhf_jax.pipeline import interrupt\n"
        "interrupt.install('interrupted; resume with `active-rlhf train --resume runs/x`')\n"
        + ("interrupt.WRITING.set()\n" if writing else "")
        + "print('ready', flush=True)\n"
        "threading.Event().wait()\n"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=_env())
    assert p.stdout.readline().strip() == "ready"
    return p


def test_ctrl_c_exits_at_once_with_a_resume_hint():
    p = _interrupt_child(writing=False)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and time.time() - t0 < 10
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines == ["interrupted; resume with `active-rlhf train --resume runs/x`"], err
    assert "Traceback" not in err


def test_ctrl_c_waits_for_a_write_and_a_second_one_exits():
    p = _interrupt_child(writing=True)
    p.send_signal(signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        p.wait(timeout=1.0)  # still writing: not interrupted yet
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=30)
    assert p.returncode == 130 and "resume with" in err and "Traceback" not in err


def test_progress_bar_keeps_the_last_known_return():
    from active_rlhf_jax.pipeline.runner import _bar_return

    # 2 seeds x 3 iterations; no episode finished in the last iteration (null).
    rows = [{"true_return": v} for v in (1.0, 3.0, 5.0, None, None, None)]
    assert _bar_return(rows, 2, "-") == "5.0"  # iteration 1, seed 0 only
    assert _bar_return([{"true_return": None}] * 4, 2, "12.5") == "12.5"
    assert _bar_return([{"true_return": None}] * 4, 2, "-") == "-"
