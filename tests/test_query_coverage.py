"""benchmarks/query_coverage.py: the ring's newest clips, nearest distances by hand, and
bad input."""

import json

import numpy as np

from benchmarks import query_coverage as qc


def test_recent_slots_newest_first_over_the_wrap():
    # Capacity 5, written 7 times: slots hold writes 5, 6, 2, 3, 4 (write k in slot k % 5),
    # the next write goes to slot 2, so newest first is slot 1 (write 6), 0 (5), 4, 3, 2.
    valid = np.ones(5, bool)
    assert qc.recent_slots(2, valid, 3).tolist() == [1, 0, 4]
    assert qc.recent_slots(2, valid, 10).tolist() == [1, 0, 4, 3, 2]
    # A pool not yet full: slots 0-2 written, 3-4 empty.
    valid = np.array([True, True, True, False, False])
    assert qc.recent_slots(3, valid, 10).tolist() == [2, 1, 0]


def test_nearest_distances_by_hand():
    refs = np.array([[0.0, 0.0], [3.0, 4.0]])
    queries = np.array([[0.0, 0.0], [3.0, 0.0], [6.0, 8.0], [1.5, 2.0]])
    # nearest: itself 0; (0,0) at 3; (3,4) at 5; both at 2.5
    d = qc.nearest_distances(queries, refs, block=3)  # a block boundary inside the queries
    np.testing.assert_allclose(d, [0.0, 3.0, 5.0, 2.5], atol=1e-12)


def test_runs_without_checkpoints_and_bad_recent_exit_2_naming_it(tmp_path, capsys):
    from active_rlhf_jax.config.base import to_dict
    from configs.presets import get_preset

    (tmp_path / "config.json").write_text(json.dumps(to_dict(get_preset("smoke"))))
    assert qc.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "no checkpoints" in err[0]
    assert qc.main([str(tmp_path), "--recent", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--recent" in err[0]
