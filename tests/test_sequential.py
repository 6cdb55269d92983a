"""Group-sequential boundaries (analysis/sequential.py) against independent oracles.

Oracles: the exact single-look quantile; the multivariate normal CDF of the looks'
statistics (scipy's Genz integration, correlation sqrt(t_i / t_j)) for the probability of
never crossing, which must be 1 - alpha; the spending function's own increments for each
look; a Monte Carlo of the Brownian statistics for three looks (stated tolerance)."""

import numpy as np
import pytest
from scipy import stats as sps

from active_rlhf_jax.analysis.sequential import (
    boundaries,
    obf_spending,
    paired_t,
    t_boundary,
)


def _no_cross_prob(c, t):
    t = np.asarray(t, float)
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    return sps.multivariate_normal.cdf(np.asarray(c), mean=np.zeros(t.size), cov=cov,
                                       maxpts=2_000_000, abseps=1e-8, releps=1e-8,
                                       lower_limit=-np.asarray(c), rng=0)


def test_single_look_is_the_fixed_sample_quantile():
    np.testing.assert_allclose(boundaries([1.0]), [sps.norm.isf(0.025)], rtol=0, atol=1e-12)
    np.testing.assert_allclose(boundaries([1.0], alpha=0.01), [2.5758293035489], atol=1e-9)


@pytest.mark.parametrize("fractions", [[0.5, 1.0], [0.25, 0.5, 1.0], [0.3, 0.7, 1.0]])
def test_spent_alpha_matches_the_mvn_oracle(fractions):
    c = boundaries(fractions)
    # The first boundary spends exactly alpha(t_1): 2 - 2 Phi(1.959964 / sqrt(t_1)).
    np.testing.assert_allclose(c[0], 1.959963984540054 / np.sqrt(fractions[0]), atol=1e-9)
    for k in range(1, len(fractions) + 1):
        # Never crossing by look k has probability 1 - alpha(t_k).
        p = _no_cross_prob(c[:k], fractions[:k])
        assert abs(p - (1 - obf_spending(fractions[k - 1]))) < 2e-6, (k, p)
    assert np.all(np.diff(c) < 0)  # O'Brien-Fleming: strict early, near 1.96 at the end


def test_looks_at_a_quarter_and_a_half_keep_the_final_boundary_near_1_96():
    # Hand check of the declared Walker2d test: c_1 = 1.959964 / sqrt(0.25) = 3.9199.
    c = boundaries([0.25, 0.5, 1.0])
    np.testing.assert_allclose(c[0], 3.919928, atol=1e-6)
    assert 1.96 < c[2] < 2.0


def test_monte_carlo_crossing_rate_under_the_null():
    t = np.array([0.25, 0.5, 1.0])
    c = boundaries(t)
    rng = np.random.default_rng(0)
    n = 1_000_000
    b = np.cumsum(rng.standard_normal((n, 3)) * np.sqrt(np.diff(t, prepend=0.0)), axis=1)
    crossed = np.any(np.abs(b / np.sqrt(t)) >= c, axis=1).mean()
    # Binomial SE at p = 0.05, n = 1e6: 2.2e-4; allow 4 SE.
    assert abs(crossed - 0.05) < 9e-4


def test_t_boundary_and_paired_t():
    # df -> large: the t critical value tends to the z boundary.
    np.testing.assert_allclose(t_boundary(1.959963984540054, 10**7), 1.959964, atol=1e-5)
    np.testing.assert_allclose(t_boundary(1.959963984540054, 39), sps.t.isf(0.025, 39), atol=1e-12)
    stat, mean = paired_t([1.0, 2.0, 3.0])  # mean 2, sd 1, n 3: t = 2 sqrt(3)
    np.testing.assert_allclose([stat, mean], [2 * np.sqrt(3), 2.0], atol=1e-12)


@pytest.mark.parametrize("fractions, field", [
    ([], "fractions"), ([0.5, 0.9], "fractions"), ([0.5, 0.5, 1.0], "fractions"),
    ([0.0, 1.0], "fractions"), ([0.5, 1.2], "fractions"),
])
def test_bad_fractions_name_the_field(fractions, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        boundaries(fractions)


def test_bad_alpha_df_and_diffs_name_the_field():
    with pytest.raises(ValueError, match="^alpha:"):
        boundaries([1.0], alpha=1.5)
    with pytest.raises(ValueError, match="^df:"):
        t_boundary(2.0, 0)
    with pytest.raises(ValueError, match="^diffs:"):
        paired_t([1.0])


def _arm(tmp_path, name, values: dict):
    d = tmp_path / name
    d.mkdir()
    rows = [{"seed": s, "mean": v, "lengths": [1000]} for s, v in values.items()]
    (d / "final_eval_gymnasium.json").write_text(__import__("json").dumps({"seeds": rows}))
    return d


def test_paired_sequential_script_pairs_seeds_and_decides(tmp_path, capsys):
    from benchmarks import paired_sequential as ps

    # Differences +1, +2, +3, +4 (seeds 0-3) and +10 on seed 9 that only A has (unpaired).
    a1 = _arm(tmp_path, "a1", {0: 11.0, 1: 12.0})
    a2 = _arm(tmp_path, "a2", {2: 13.0, 3: 14.0, 9: 99.0})
    b = _arm(tmp_path, "b", {0: 10.0, 1: 10.0, 2: 10.0, 3: 10.0})
    res = ps.analyse(ps.per_seed_returns([a1, a2]), ps.per_seed_returns([b]), [2])
    assert res["seeds"] == [0, 1, 2, 3] and res["diffs"] == [1.0, 2.0, 3.0, 4.0]
    first, final = res["looks"]
    c = boundaries([0.5, 1.0])
    # Look 1: diffs 1, 2: mean 1.5, sd 0.7071, t = 3; final: mean 2.5, sd 1.291, t = 3.873.
    np.testing.assert_allclose([first["t"], final["t"]], [3.0, 2.5 / (1.2909944 / 2)], rtol=1e-6)
    np.testing.assert_allclose(final["t_boundary"], t_boundary(c[1], 3), rtol=1e-12)
    # The t_3 boundary for z 1.979 is 3.24: 3.873 crosses; t_1 for z 2.772 is 114: 3 does not.
    assert not first["crossed"] and final["crossed"] and res["decision"] == "a > b"
    assert ps.main(["--a", str(a1), str(a2), "--b", str(b), "--looks", "2"]) == 0
    assert "decision at alpha 0.05: a > b" in capsys.readouterr().out


def test_paired_sequential_script_bad_input_exits_2(tmp_path, capsys):
    from benchmarks import paired_sequential as ps

    a = _arm(tmp_path, "a", {0: 1.0, 1: 2.0, 2: 3.0})
    b = _arm(tmp_path, "b", {0: 0.0, 1: 0.0, 2: 0.0})
    assert ps.main(["--a", str(a), "--b", str(b), "--looks", "3"]) == 2
    assert capsys.readouterr().err.startswith("paired_sequential: looks:")
    assert ps.main(["--a", str(a), "--b", str(tmp_path), "--looks", ""]) == 2
    assert "no final_eval_gymnasium.json or final_eval.json" in capsys.readouterr().err
    assert ps.main(["--a", str(a), "--b", str(b), "--seeds", "x"]) == 2
    assert capsys.readouterr().err.startswith("paired_sequential: --seeds:")
