"""The command line: every config field is a flag; bad input exits 2 and writes nothing."""

import pytest

from active_rlhf_jax.cli import build_parser, main


def test_help_lists_every_field_with_its_meaning(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["train", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--run.budget", "--ppo.learning_rate", "--reward.rating_likelihood",
                 "--acquisition.allocation", "--teacher.beta", "--compat.pref_only_unified",
                 "--env.backend", "--run.segment_length"):
        assert flag in text, flag
    # Meanings come from the dataclass docstrings.
    assert "total labels of both modalities" in text


@pytest.mark.parametrize(
    "args, field",
    [
        (["--run.budget", "-5"], "run.budget"),
        (["--run.segment_length", "1001"], "run.segment_length"),
        # The initial batch is int(budget * initial_fraction): a fraction above 1 would
        # make it exceed the budget.
        (["--run.initial_fraction", "1.5"], "run.initial_fraction"),
        (["--seeds", "0"], "seeds"),
        (["--preset", "no-such-preset"], "preset"),
        (["--env.env_id", "NoSuchEnv-v0"], "env.env_id"),
        (["--ppo.minibatch_size", "1000"], "ppo"),
        (["--ppo.learning_rate", "nan"], "ppo.learning_rate"),
        (["--reward.dropout", "abc"], "reward.dropout"),
        (["--run.collection_episodes_per_iteration", "-1"], "run.collection_episodes_per_iteration"),
        (["--reward.ordinal_cuts", "quadratic"], "reward.ordinal_cuts"),
        # Multi-process flags are checked before jax.distributed is started.
        (["--coordinator", "localhost:1"], "num_processes"),
        (["--coordinator", "nohost", "--num-processes", "2", "--process-id", "0"], "coordinator"),
        (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"], "process_id"),
    ],
)
def test_invalid_values_exit_2_without_writing(tmp_path, capsys, args, field):
    out = tmp_path / "run"
    argv = ["train", "--preset", "cheetah+bald-info", "--out", str(out), "--no-progress"]
    code = main(argv + args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("active-rlhf: error: ") and field in err[0]
    assert not out.exists()
