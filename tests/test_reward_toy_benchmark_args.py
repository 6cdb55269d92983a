"""benchmarks/reward_toy.py argument handling: every bad input exits with one line naming
the option or field, before anything is compiled."""

import pytest

from benchmarks.reward_toy import main


@pytest.mark.parametrize("argv, expect", [
    (["--keys", "1"], "--keys"),
    (["--labels", "24,1000"], "--labels"),
    (["--set", "warmup"], "FIELD=VALUE"),
    (["--set", "no_such_field=1"], "no_such_field"),
    (["--set", "hidden=(8,)"], "fixed by the toy"),
    (["--set", "warmup_epochs=-1"], "warmup_epochs"),
    (["--set", "ordinal_cuts=cubic"], "ordinal_cuts"),
])
def test_bad_arguments_exit_with_the_field(argv, expect):
    with pytest.raises(SystemExit) as e:
        main(argv)
    msg = str(e.value.code)
    assert expect in msg and "\n" not in msg
