"""benchmarks/accelerator_scaling.py: how a point becomes cells x seeds, and bad input."""

import pytest

from benchmarks.accelerator_scaling import _parse_args, main, point_cells


def test_points_split_into_cells_and_seeds_with_gpu_shaped_ppo():
    args = _parse_args(["--preset", "smoke", "--points", "4x8", "--num-steps", "40",
                        "--minibatches", "2", "--backend", "mujoco", "--fidelity", "ls8"])
    cells = point_cells(args, 4, 8)
    # 2 acquisition methods x 2 reward learning rates, 2 seeds each
    assert len(cells) == 4 and {c.seeds for c in cells} == {2}
    assert {(c.acquisition.method, c.reward.lr) for c in cells} == {
        ("random", 1e-3), ("random", 3e-4), ("bald", 1e-3), ("bald", 3e-4)}
    c = cells[0]
    assert (c.ppo.num_envs, c.ppo.num_steps, c.ppo.minibatch_size) == (4, 40, 80)
    assert (c.env.backend, c.env.fidelity) == ("mujoco", "ls8")
    one = point_cells(args, 4, 1)
    assert len(one) == 1 and one[0].seeds == 1


@pytest.mark.parametrize("argv, field", [
    (["--points", "512"], "--points"),
    (["--points", "0x8"], "--points"),
    (["--raw-actions", "uniform,gaussian"], "--raw-actions"),
])
def test_bad_points_exit_2(argv, field, capsys):
    with pytest.raises(SystemExit) as e:
        _parse_args(argv)
    assert e.value.code == 2 and field in capsys.readouterr().err


def test_points_that_do_not_split_exit_2_before_compiling(capsys):
    rc = main(["--preset", "smoke", "--points", "4x6", "--backend", "mujoco"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "points" in err
