"""benchmarks/label_efficiency.py: paired differences at equal labels, by hand."""

import json

import pytest

from benchmarks.label_efficiency import compare, main, paired_ci


def _rows(corr_by_seed, returns_by_seed):
    rows = []
    for seed, corrs in corr_by_seed.items():
        for it, (c, ret) in enumerate(zip(corrs, returns_by_seed[seed]), start=1):
            rows.append(dict(seed=seed, iteration=it, labels_used=10 * it, reward_corr=c,
                             true_return=ret))
    return rows


def test_paired_ci_by_hand():
    # diffs 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.3027 -> half width 4.3027 / sqrt(3)
    m, lo, hi, ahead, n = paired_ci([1.0, 2.0, 3.0])
    assert (m, ahead, n) == (2.0, 3, 3)
    assert hi - m == pytest.approx(4.302653 / 3 ** 0.5, rel=1e-6)
    assert m - lo == pytest.approx(hi - m)


def test_compare_pairs_seeds_and_skips_metrics_not_logged(tmp_path):
    a = _rows({0: [0.5, 0.9], 1: [0.6, 0.8], 2: [0.7, 1.0]}, {0: [1, 3], 1: [2, 2], 2: [0, 4]})
    b = _rows({0: [0.4, 0.9], 1: [0.6, 0.7], 2: [0.5, 0.9]}, {0: [1, 1], 1: [2, 2], 2: [0, 0]})
    recs = compare(a, b, [2])
    assert [r["metric"] for r in recs] == ["reward_corr", "mean training true_return"]
    m, _, _, ahead, n = recs[0]["diff"]  # 0.0, 0.1, 0.1
    assert m == pytest.approx(0.2 / 3) and (ahead, n) == (2, 3)
    assert recs[0]["labels"] == 20
    m, _, _, ahead, _ = recs[1]["diff"]  # run means 2 vs 1, 2 vs 2, 2 vs 0
    assert m == pytest.approx(1.0) and ahead == 2
    for arm, rows in (("A", a), ("B", b)):
        (tmp_path / arm).mkdir()
        (tmp_path / arm / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert main([str(tmp_path), "A:B", "--iterations", "1,2"]) == 0
    assert main([str(tmp_path), "A-B"]) == 2
    assert main([str(tmp_path), "A:C"]) == 2
