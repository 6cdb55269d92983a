"""benchmarks/alive_value.py: the alive-value fit by hand, and a run without checkpoints."""

import json

import numpy as np

from benchmarks import alive_value as av


def test_alive_fit_by_hand():
    # r_hat = 0.5 r + 0.25: a live step is paid 0.25 / 0.5 = 0.5 true units beyond its
    # true reward, so the alive value is 1 + 0.5 = 1.5; an exact line has correlation 1.
    r = np.array([0.0, 1.0, 2.0, 4.0])
    fit = av.alive_fit(r, 0.5 * r + 0.25)
    assert abs(fit["slope"] - 0.5) < 1e-12 and abs(fit["intercept"] - 0.25) < 1e-12
    assert abs(fit["alive_value"] - 1.5) < 1e-12
    assert abs(fit["step_corr"] - 1.0) < 1e-12
    # Noise symmetric about the line (+e, -e, -e, +e at x = 0, 1, 2, 3) leaves the
    # least-squares line where it is: slope 2, intercept -2, alive value 1 + (-2 / 2) = 0.
    x = np.array([0.0, 1.0, 2.0, 3.0])
    y = 2 * x - 2 + np.array([0.1, -0.1, -0.1, 0.1])
    fit = av.alive_fit(x, y)
    assert abs(fit["slope"] - 2.0) < 1e-12 and abs(fit["alive_value"]) < 1e-12
    assert 0.99 < fit["step_corr"] < 1.0


def test_a_run_without_checkpoints_exits_2_naming_it(tmp_path, capsys):
    from active_rlhf_jax.config.base import to_dict
    from configs.presets import get_preset

    (tmp_path / "config.json").write_text(json.dumps(to_dict(get_preset("smoke"))))
    assert av.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "no checkpoints" in err[0]
