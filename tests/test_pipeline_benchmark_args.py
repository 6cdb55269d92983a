"""benchmarks/pipeline_throughput.py argument handling (no compilation)."""

import pytest

from benchmarks.pipeline_throughput import _parse_args, build_config


def test_set_overrides_reach_the_config():
    args = _parse_args(["--preset", "smoke", "--set", "ppo.num_envs=8",
                        "--set", "reward.hidden=(8, 8)", "--set", "env.backend=mujoco"])
    assert args.set == {"ppo.num_envs": 8, "reward.hidden": (8, 8), "env.backend": "mujoco"}
    cfg = build_config(args.preset, seeds=4, **args.set)
    assert (cfg.ppo.num_envs, cfg.reward.hidden, cfg.env.backend, cfg.seeds) == (
        8, (8, 8), "mujoco", 4)


@pytest.mark.parametrize("bad", ["ppo.num_envs", "=3"])
def test_malformed_set_exits_2(bad, capsys):
    with pytest.raises(SystemExit) as e:
        _parse_args(["--set", bad])
    assert e.value.code == 2
    assert "FIELD=VALUE" in capsys.readouterr().err
