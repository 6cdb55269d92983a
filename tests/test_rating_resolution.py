"""benchmarks/rating_resolution.py: the relative scale's bins and the summaries, by hand."""

import numpy as np
import pytest

from benchmarks import rating_resolution as rr


def _pool():
    # gamma 0.5: returns 1 + 0.5 * 2 = 2, 0, 4 (the fourth clip is invalid and ignored).
    rew = np.array([[1.0, 2.0], [0.0, 0.0], [4.0, 0.0], [100.0, 100.0]])
    obs = np.zeros((4, 2, 3))
    obs[1, 1] = np.nan  # clip 1 falls after one live step
    valid = np.array([True, True, True, False])
    return rew, obs, valid


def test_pool_bins_match_the_teachers_formula_by_hand():
    rew, _, valid = _pool()
    # lo 0, hi 4, K 4: floor(4 g / 4) = 2, 0, 4 -> clipped to 3.
    np.testing.assert_array_equal(rr.pool_bins(rew, valid, 0.5, 4), [2, 0, 3])
    # One distinct return: every clip in bin 0 (the teacher's hi <= lo case).
    np.testing.assert_array_equal(rr.pool_bins(rew[:2] * 0, valid[:2], 0.5, 4), [0, 0])
    # pool-rank, K 4, V 3: ranks 1, 0, 2 -> floor(4 r / 3) = 1, 0, 2.
    np.testing.assert_array_equal(rr.pool_bins(rew, valid, 0.5, 4, "pool-rank"), [1, 0, 2])


def test_pool_summary_by_hand():
    rew, obs, valid = _pool()
    s = rr.pool_summary(rew, obs, valid, 0.5, 4)
    assert s["clips"] == 3 and s["lo"] == 0.0 and s["hi"] == 4.0
    assert s["bins"] == [1, 0, 1, 1]
    assert s["absorbing_share"] == pytest.approx(1 / 3)
    assert s["live_steps_by_bin"] == [1.0, None, 2.0, 2.0]


def test_rating_summary_groups_rounds_by_hand():
    value = np.array([0.0, 3.0, 3.0, 1.0, 9.0, 2.0])  # 9 is clipped to the top bin, 3
    valid = np.array([True, True, True, True, True, False])
    rounds = np.array([0, 1, 12, 30, 5, 0])
    s = rr.rating_summary(value, valid, rounds, 4)
    assert s["ratings"] == 5
    assert s["bins"] == [1, 1, 0, 3]
    assert s["by_rounds"] == {"0-0": [1, 0, 0, 0], "1-9": [0, 0, 0, 2],
                              "10-24": [0, 0, 0, 1], "25-": [0, 1, 0, 0]}


def test_a_run_without_checkpoints_exits_2_naming_it(tmp_path, capsys):
    (tmp_path / "config.json").write_text(
        '{"reward": {"gamma": 0.99, "num_bins": 10}, "teacher": {"rating_scale": "pool"}, '
        '"run": {}}')
    assert rr.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "no checkpoints" in err[0]
