"""benchmarks/label_value.py: arm parsing, the masked rank statistics, bad input."""

import numpy as np
import pytest
from scipy import stats

from benchmarks.label_value import main, masked_spearman, parse_arm, t_ci


def test_parse_arm():
    assert parse_arm("pref:400") == ("pref:400", 400, 0)
    assert parse_arm("rating:216") == ("rating:216", 0, 216)
    assert parse_arm("both:184/216") == ("both:184/216", 184, 216)
    for bad in ("pref", "both:3", "ratings:4", "pref:x"):
        with pytest.raises(ValueError, match="--arms"):
            parse_arm(bad)


def test_masked_spearman_is_scipys_on_the_kept_entries():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=50), rng.normal(size=50)
    y[:25] += 2 * x[:25]
    w = np.zeros(50, bool)
    w[::2] = True
    w[:25] = True
    want = stats.spearmanr(x[w], y[w]).statistic
    assert float(masked_spearman(x, y, w)) == pytest.approx(want, abs=1e-5)


def test_t_ci_hand_values():
    m, lo, hi = t_ci([1.0, 2.0, 3.0])
    h = stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3)
    assert (m, lo, hi) == pytest.approx((2.0, 2.0 - h, 2.0 + h))


def test_bad_arm_exits_2_naming_the_flag(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path), "--arms", "prefs:4"])
    assert e.value.code == 2 and "--arms" in capsys.readouterr().err
