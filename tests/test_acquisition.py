"""Issue #6: acquisition scores, candidates, selection and allocation."""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate
from scipy.special import expit, logsumexp
from scipy.stats import norm

from active_rlhf_jax import acquisition as acq
from active_rlhf_jax.acquisition import scores as sc
from active_rlhf_jax.acquisition.selection import _select_disjoint_lazy
from active_rlhf_jax.config import AcquisitionConfig, ConfigError, EffectiveAcquisition

# Compiling is most of these tests' time (tests/conftest.py::_compile_mode).
pytestmark = pytest.mark.fast_compile

#: acquire as the pipeline runs it, compiled: op by op, each call ran hundreds of small
#: programs (13 s for one reference-mode call on the 2-core machine, 3 s compiled).
_acquire = jax.jit(acq.acquire, static_argnums=(0, 5))

LN2 = math.log(2.0)


# ---------------------------------------------------------------- float64 NumPy oracles
def np_entropy(p):
    p = np.asarray(p, np.float64)
    return -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=-1)


def np_categorical_bald(probs):
    probs = np.asarray(probs, np.float64)
    return np_entropy(probs.mean(0)) - np_entropy(probs).mean(0)


def np_pref_probs(ra, rb):
    p = expit(np.asarray(ra, np.float64) - np.asarray(rb, np.float64))
    return np.stack([p, 1 - p], axis=-1)  # [S, N, 2]


def np_gaussian_bald(m, v):
    """Mixture entropy by adaptive quadrature (float64) minus mean component entropy."""
    m, v = np.asarray(m, np.float64), np.asarray(v, np.float64)
    sd = np.sqrt(v)

    def f(y):
        lp = logsumexp(norm.logpdf(y, m, sd)) - math.log(len(m))
        return -math.exp(lp) * lp

    h, _ = integrate.quad(f, (m - 12 * sd).min(), (m + 12 * sd).max(), points=np.sort(m),
                          limit=1000, epsabs=1e-13, epsrel=1e-11)
    return h - np.mean(0.5 * np.log(2 * math.pi * math.e * v))


def rel_err(a, b, atol=1e-7):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b) / (np.abs(b) + atol))


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(6)


# ---------------------------------------------------------------- scores vs oracles
def test_categorical_and_ordinal_bald_match_numpy(rng):
    logits = rng.normal(size=(20, 64, 10)) * rng.uniform(0.2, 3, size=(1, 64, 1))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    p32 = jnp.asarray(probs, jnp.float32)
    want = np_categorical_bald(probs.astype(np.float32))
    assert rel_err(sc.categorical_bald(p32), want) < 1e-5
    assert rel_err(sc.ordinal_rating_bald(p32), want) < 1e-5
    assert rel_err(sc.clip_predictive_entropy(p32), np_entropy(probs.astype(np.float32).mean(0))) < 1e-5
    k = np.arange(10)
    want_var = np.var((probs.astype(np.float32) * k).sum(-1), axis=0)
    assert rel_err(sc.expected_bin_variance(p32), want_var) < 1e-5


def test_preference_scores_match_numpy(rng):
    ra = (rng.normal(size=(20, 256)) * rng.uniform(0.1, 4, size=256)).astype(np.float32)
    rb = (rng.normal(size=(20, 256)) * rng.uniform(0.1, 4, size=256)).astype(np.float32)
    probs = np_pref_probs(ra, rb)
    assert rel_err(sc.preference_bald(ra, rb), np_categorical_bald(probs)) < 1e-5
    assert rel_err(sc.pair_predictive_entropy(ra, rb), np_entropy(probs.mean(0))) < 1e-5
    assert rel_err(sc.return_difference_variance(ra, rb),
                   np.var(ra.astype(np.float64) - rb, axis=0)) < 1e-5
    # predictive_entropy on explicit [S, N, 2] probabilities agrees with the pair form
    assert rel_err(sc.predictive_entropy(jnp.asarray(probs, jnp.float32)), np_entropy(probs.mean(0))) < 1e-5


def test_random_scores_are_keyed():
    a = sc.random_scores(jax.random.PRNGKey(1), (5,))
    b = sc.random_scores(jax.random.PRNGKey(1), (5,))
    c = sc.random_scores(jax.random.PRNGKey(2), (5,))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.all((np.asarray(a) >= 0) & (np.asarray(a) < 1))


def test_bald_properties():
    s = 20
    # compiled: op by op these few calls took 14 s on the 2-core machine
    pref_bald, cat_bald = jax.jit(sc.preference_bald), jax.jit(sc.categorical_bald)
    # all samples agree -> 0
    same = jnp.tile(jnp.array([[0.3, -2.0, 5.0]]), (s, 1))
    np.testing.assert_allclose(pref_bald(same, jnp.zeros_like(same)), 0.0, atol=1e-6)
    probs = jnp.tile(jax.nn.softmax(jnp.arange(10.0))[None, None], (s, 4, 1))
    np.testing.assert_allclose(cat_bald(probs), 0.0, atol=1e-6)
    mean = jnp.tile(jnp.array([[1.0, -3.0]]), (s, 1))
    np.testing.assert_allclose(jax.jit(sc.gaussian_rating_bald)(mean, jnp.ones_like(mean) * 0.7), 0.0, atol=1e-6)
    # half the samples say +big, half -big -> ln 2, exactly and without NaN
    for big in (50.0, 1e6, 1e30):
        ra = jnp.concatenate([jnp.full((s // 2, 1), big), jnp.full((s // 2, 1), -big)])
        got = pref_bald(ra, jnp.zeros_like(ra))
        np.testing.assert_allclose(got, LN2, rtol=1e-6)
        # all agreeing at a huge gap -> 0, finite
        np.testing.assert_allclose(pref_bald(jnp.abs(ra), -jnp.abs(ra)), 0.0, atol=1e-7)
    # >= 0 everywhere
    key = jax.random.PRNGKey(0)
    r = jax.random.normal(key, (s, 500)) * 10
    assert float(jnp.min(pref_bald(r, jnp.roll(r, 1, axis=1)))) >= 0.0
    p = jax.nn.softmax(jax.random.normal(key, (s, 500, 10)), -1)
    assert float(jnp.min(cat_bald(p))) >= 0.0
    assert float(jnp.max(cat_bald(p))) <= math.log(10) + 1e-6


def test_gaussian_rating_bald_matches_quadrature(rng):
    """<= 1e-3 relative against adaptive float64 quadrature for posterior-sample variance
    ratios up to 1e4 (issue #17). Before the narrow components got their own nodes the
    32-node rule was off by 3 % at a ratio of 100 and 12 % at 1e4."""
    s = 20
    means, vars_, cases = [], [], []
    for scale, ratio in [(0.05, 2), (0.5, 2), (1.0, 5), (3.0, 10), (10.0, 3), (0.3, 10),
                         (1.0, 30), (0.3, 100), (3.0, 100), (1.0, 1e3), (0.05, 1e4),
                         (1.0, 1e4), (10.0, 1e4)]:
        m = rng.normal(size=s) * scale
        v = np.exp(rng.uniform(0, np.log(ratio), s)) * rng.uniform(0.2, 2)
        v[:2] = v.min(), v.min() * ratio  # the full ratio is present
        means.append(m)
        vars_.append(v)
    m32 = jnp.asarray(np.stack(means, 1), jnp.float32)
    v32 = jnp.asarray(np.stack(vars_, 1), jnp.float32)
    # the oracle sees the float32 inputs
    cases = [np_gaussian_bald(np.asarray(m32)[:, i], np.asarray(v32)[:, i]) for i in range(len(means))]
    got = np.asarray(sc.gaussian_rating_bald(m32, v32))
    assert rel_err(got, np.array(cases)) < 1e-3
    # blocked evaluation gives the same numbers as one block, to float32 rounding: BALD is
    # a difference of O(1) entropies, so a small score (0.008 in case 0) keeps an absolute
    # error of ~1e-8 (seen: 8.4e-9, 1.05e-6 relative, with other inputs drawn first)
    got_blocked = np.asarray(sc.gaussian_rating_bald(m32, v32, block_size=4))
    np.testing.assert_allclose(got_blocked, got, rtol=1e-6, atol=1e-7)
    # mixture entropy = BALD + mean component entropy
    h = np.asarray(sc.gaussian_mixture_entropy(m32, v32))
    np.testing.assert_allclose(h - got, np.mean(0.5 * np.log(2 * np.pi * np.e * np.asarray(v32, np.float64)), 0), rtol=1e-5, atol=1e-6)


def test_gaussian_rating_bald_extreme_components_stay_finite():
    """Components 1e6 apart in variance and 1e3 sd apart in mean: no overflow at the
    outer nodes (every term is a product of two factors in [0, 1])."""
    m = jnp.asarray(np.r_[np.zeros(10), np.full(10, 1e3)][:, None], jnp.float32)
    v = jnp.asarray(np.r_[np.full(10, 1e-3), np.full(10, 1e3)][:, None], jnp.float32)
    got = float(sc.gaussian_rating_bald(m, v)[0])
    # Two halves 31 wide-sd apart: the sample index tells which half, exactly one bit.
    # (scipy quad with breakpoints at the means misses the 0.03-wide spikes here: 1.03.)
    np.testing.assert_allclose(got, LN2, rtol=1e-6)


def np_pair_bald_f64(z):
    """Pair BALD in float64 without cancellation: p, q from expit(±z), p - p̄ taken from the
    small side, KL terms via log1p. Agrees with 60-digit mpmath to 1.4e-13 relative on the
    cases below (checked once when the test was written)."""
    from scipy.special import expit
    z = np.asarray(z, np.float64)
    p, q = expit(z), expit(-z)
    pb, qb = p.mean(0), q.mean(0)
    dp = np.where(pb < 0.5, p - pb, -(q - qb))

    def term(a, ab, d):
        x = a / ab
        return np.where(x < 0.5, a * np.log(np.maximum(x, 1e-300)), a * np.log1p(d / ab))

    return np.mean(term(p, pb, dp) + term(q, qb, -dp), 0)


def test_pair_bald_accurate_for_confident_pairs(rng):
    """|z| up to 50 against float64 (issue #17): q = 1 - σ(|z|) used to come from
    1 + expm1(-|z|), which cancels; at |z| = 16-20 pair BALD was off by up to 100 %."""
    cases = []
    for centre in (0.0, 1.0, 5.0, 10.0, 16.0, 20.0, 30.0, 40.0, 50.0, -20.0, -50.0):
        for spread in (1e-3, 0.3, 3.0):
            cases.append(centre + spread * rng.normal(size=20))
    z = np.stack(cases, 1).astype(np.float32)
    z = np.clip(z, -50.0, 50.0)
    want = np_pair_bald_f64(z)
    assert want.min() > 0  # every case is a real (if tiny: 1e-28) score
    got = np.asarray(sc.preference_bald_from_diff(jnp.asarray(z)))
    np.testing.assert_array_less(np.abs(got - want) / want, 1e-4)
    # the same through the pair API (returns of two clips)
    got2 = np.asarray(sc.preference_bald(jnp.asarray(z), jnp.zeros_like(jnp.asarray(z))))
    np.testing.assert_array_less(np.abs(got2 - want) / want, 1e-4)
    # p and q themselves, to full relative precision, at |z| = 50
    p, q, t = (np.asarray(a, np.float64) for a in sc._bernoulli_pqt(jnp.asarray([50.0, -50.0, 17.0])))
    from scipy.special import expit
    zz = np.array([50.0, -50.0, 17.0])
    np.testing.assert_allclose(p, expit(zz), rtol=1e-6)
    np.testing.assert_allclose(q, expit(-zz), rtol=1e-6)
    np.testing.assert_allclose(t, np.tanh(zz / 2), rtol=1e-6)


# ---------------------------------------------------------------- candidate scoring
def _pool(rng, s=20, n=150):
    r = (rng.normal(size=(s, n)) * rng.uniform(0.1, 3, size=n)).astype(np.float32)
    valid = rng.uniform(size=n) < 0.85
    return jnp.asarray(r), jnp.asarray(valid)


def test_dense_pair_scores_cover_all_valid_pairs(rng):
    r, valid = _pool(rng)
    n = r.shape[1]
    lp = jnp.array([[3, 7], [9, 2], [0, 0]])
    lpm = jnp.array([True, True, False])
    mat, bald, stats = acq.dense_pair_scores(r, valid, jax.random.PRNGKey(0), block_size=32,
                                             labelled_pairs=lp, labelled_pairs_mask=lpm)
    mat = np.asarray(mat)
    v = np.asarray(valid)
    i, j = np.triu_indices(n, 1)
    want = np_categorical_bald(np_pref_probs(np.asarray(r)[:, i], np.asarray(r)[:, j]))
    cand = v[i] & v[j] & ~(((i == 3) & (j == 7)) | ((i == 2) & (j == 9)))
    assert rel_err(mat[i, j][cand], want[cand]) < 1e-5
    assert np.all(np.isneginf(mat[i, j][~cand]))
    assert np.all(np.isneginf(mat[np.tril_indices(n)]))
    assert float(stats.count) == cand.sum()
    np.testing.assert_allclose(float(stats.bald_sum) / cand.sum(), want[cand].mean(), rtol=1e-5)


def test_blocked_topk_is_exact(rng):
    r, valid = _pool(rng)
    mat, _, _ = acq.dense_pair_scores(r, valid, jax.random.PRNGKey(0), block_size=32)
    cands, stats = acq.blocked_topk_pairs(r, valid, jax.random.PRNGKey(0), 40, block_size=32)
    flat = np.asarray(mat).reshape(-1)
    top = np.sort(flat)[::-1][:40]
    np.testing.assert_allclose(np.asarray(cands.scores), top, rtol=1e-6)
    p = np.asarray(cands.pairs)
    np.testing.assert_allclose(np.asarray(mat)[p[:, 0], p[:, 1]], np.asarray(cands.scores))


def test_topk_picks_highest_valid(rng):
    scores = jnp.asarray(rng.normal(size=300).astype(np.float32))
    valid = jnp.asarray(rng.uniform(size=300) < 0.3)
    idx, top, found = acq.select_topk(scores, valid, 50)
    v = np.asarray(valid)
    want = np.sort(np.asarray(scores)[v])[::-1][:50]
    assert np.all(v[np.asarray(idx)[np.asarray(found)]])
    np.testing.assert_allclose(np.asarray(top)[: len(want)], want)
    # more slots than valid candidates: the rest are not found
    idx, top, found = acq.select_topk(scores, valid, 200)
    assert int(found.sum()) == v.sum()
    assert np.all(v[np.asarray(idx)[np.asarray(found)]])


def _np_greedy_disjoint(mat, n):
    mat = mat.copy()
    out = []
    for _ in range(n):
        f = np.argmax(mat)
        if not np.isfinite(mat.flat[f]):
            break
        i, j = divmod(f, mat.shape[1])
        out.append((i, j))
        mat[[i, j], :] = -np.inf
        mat[:, [i, j]] = -np.inf
    return out


def test_disjoint_selection_matches_bruteforce_and_never_reuses(rng):
    r, valid = _pool(rng, n=120)
    mat, _, _ = acq.dense_pair_scores(r, valid, jax.random.PRNGKey(0), block_size=32)
    want = _np_greedy_disjoint(np.asarray(mat), 30)
    pairs, _, found = acq.select_disjoint_matrix(mat, 30, 40)
    got = [tuple(p) for p in np.asarray(pairs)[np.asarray(found)]]
    assert got == want
    n = mat.shape[0]
    i, j = np.triu_indices(n, 1)
    flat = jnp.stack([i, j], 1)
    pairs2, _, found2 = acq.select_disjoint_pairs(flat, mat[i, j], jnp.isfinite(mat[i, j]), n, 30, 40)
    assert [tuple(p) for p in np.asarray(pairs2)[np.asarray(found2)]] == want
    # large-pool path: candidates = each clip's best partners
    cands, _ = acq.blocked_row_candidates(r, valid, jax.random.PRNGKey(0), 3, block_size=32)
    p3, _, f3 = acq.select_disjoint_pairs(cands.pairs, cands.scores, jnp.isfinite(cands.scores), n, 60, 60)
    chosen = np.asarray(p3)[np.asarray(f3)]
    assert len(np.unique(chosen)) == chosen.size  # never reuses a clip
    assert np.all(np.asarray(valid)[chosen])
    assert tuple(chosen[0]) == want[0]  # first pick is the global best


@pytest.mark.parametrize("kind", ["normal", "ties", "dominating"])
def test_disjoint_partner_lists_equal_the_exact_greedy(kind):
    """select_disjoint_matrix keeps each row's best 2 k_max - 1 partners; it must take
    the same pairs, scores and slots as the exact greedy (ties: lowest row, then lowest
    column) and as the lazy greedy it replaced, also when a few clips top every row (the
    case that made the lazy greedy slow) and with many equal scores."""
    rng = np.random.default_rng({"normal": 0, "ties": 1, "dominating": 2}[kind])
    n_clips, k_max = 48, 8
    f = jax.jit(acq.select_disjoint_matrix, static_argnums=2)
    lazy = jax.jit(_select_disjoint_lazy, static_argnums=2)
    for trial in range(4):
        if kind == "normal":
            m = rng.normal(size=(n_clips, n_clips))
        elif kind == "ties":
            m = rng.integers(0, 3, size=(n_clips, n_clips)).astype(float)
        else:
            u = np.exp(2.0 * rng.normal(size=n_clips))
            m = u[:, None] + u[None, :] + 0.01 * rng.normal(size=(n_clips, n_clips))
        m = np.where(np.triu(np.ones((n_clips, n_clips)), 1) > 0, m, -np.inf)
        m[rng.random(m.shape) < 0.3] = -np.inf
        m = m.astype(np.float32)
        for n in (0, 3, 8, 11):
            pairs, scores, found = f(jnp.asarray(m), n, k_max)
            want = _np_greedy_disjoint(m, min(n, k_max))
            got = [tuple(p) for p in np.asarray(pairs)[np.asarray(found)]]
            assert got == want, (trial, n)
            np.testing.assert_array_equal(np.asarray(scores)[: len(want)],
                                          [m[i, j] for i, j in want])
            for x, y in zip((pairs, scores, found), lazy(jnp.asarray(m), n, k_max)):
                np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ---------------------------------------------------------------- allocation
def _alloc(fn, *args):
    return tuple(int(x) for x in fn(*args))


def test_fixed_allocation_edges():
    # reference: max(2, floor(n/2)); ours clamps to n
    assert _alloc(acq.fixed_allocation, 0) == (0, 0)
    assert _alloc(acq.fixed_allocation, 1) == (1, 0)  # reference would ask 2 pairs
    assert _alloc(acq.fixed_allocation, 3) == (2, 1)  # max(2, 1) = 2
    assert _alloc(acq.fixed_allocation, 7) == (3, 4)  # floor(3.5) = 3
    assert _alloc(acq.fixed_allocation, 10, 0.3, 0) == (3, 7)  # 0.3*10 not floored to 2
    assert _alloc(acq.fixed_allocation, 10, 0.0, 0) == (0, 10)
    assert _alloc(acq.fixed_allocation, 10, 1.0, 2) == (10, 0)


def test_reference_adaptive_edges():
    f = acq.reference_adaptive_allocation
    assert _alloc(f, 9, 0.0, 0.0) == (4, 5)  # both <= 0: floor(9/2)
    assert _alloc(f, 9, 0.5, 0.0) == (9, 0)  # a_e <= 0: all pairs
    assert _alloc(f, 9, -1.0, 0.3) == (0, 9)  # a_p <= 0: all clips
    assert _alloc(f, 9, 0.2, 0.1) == (6, 3)  # round(9 * 2/3) = round(6.0)
    assert _alloc(f, 5, 0.1, 0.1) == (2, 3)  # round(2.5) = 2 (half to even)
    assert _alloc(f, 7, 0.1, 0.1) == (4, 3)  # round(3.5) = 4
    assert _alloc(f, 1, 0.1, 0.1) == (0, 1)  # round(0.5) = 0
    assert _alloc(f, 10, 0.3, 0.1) == (8, 2)  # round(7.5) = 8


def test_reference_adaptive_means_running_p99():
    state = acq.AdaptiveState.create()
    clip = jnp.arange(1.0, 101.0)  # P99 (linear) of 1..100 = 99.01
    valid = jnp.ones(100, bool)
    a_p, a_e, state = acq.reference_adaptive_means(jnp.asarray(LN2 / 4), clip, valid, state)
    np.testing.assert_allclose(float(a_p), 0.25, rtol=1e-6)  # bits
    np.testing.assert_allclose(float(state.eval_bald_high), 99.01, rtol=1e-6)
    np.testing.assert_allclose(float(a_e), 50.5 / 99.01, rtol=1e-5)
    # smaller scores later: the normaliser never decreases
    _, a_e2, state2 = acq.reference_adaptive_means(jnp.asarray(0.1), clip / 10, valid, state)
    np.testing.assert_allclose(float(state2.eval_bald_high), 99.01, rtol=1e-6)
    np.testing.assert_allclose(float(a_e2), 5.05 / 99.01, rtol=1e-5)


def test_target_fraction_edges():
    f = acq.target_fraction_allocation
    assert _alloc(f, 10, 0.5, 0, 0) == (5, 5)
    assert _alloc(f, 10, 0.5, 30, 0) == (0, 10)  # want 20 - 30 < 0 -> 0
    assert _alloc(f, 10, 0.5, 0, 30) == (10, 0)  # want 20 > n -> n
    assert _alloc(f, 4, 0.5, 3, 2) == (2, 2)  # round(0.5 * 9 - 3) = round(1.5) = 2
    assert _alloc(f, 4, 0.5, 4, 1) == (0, 4)  # round(0.5) = 0
    assert _alloc(f, 3, 0.25, 0, 0) == (1, 2)  # round(0.75) = 1


def test_information_merge():
    inf = -jnp.inf
    pv = jnp.array([0.6, 0.4, 0.1, inf])
    pf = pv > inf
    cv = jnp.array([0.5, 0.4, 0.3, 0.2])
    cf = jnp.array([True, True, True, True])
    # best 4 of {.6p .5c .4p .4c .3c ...}: ties go to pairs -> 2 pairs, 2 clips
    assert _alloc(acq.merge_by_value, pv, pf, cv, cf, 4) == (2, 2)
    assert _alloc(acq.merge_by_value, pv, pf, cv, cf, 1) == (1, 0)
    assert _alloc(acq.merge_by_value, pv, pf, cv, cf, 8) == (3, 4)  # runs out of pairs
    assert _alloc(acq.merge_by_value, pv, pf, cv, cf * False, 8) == (3, 0)


# ---------------------------------------------------------------- acquire
def _posterior(rng, s=20, n=160, k=10):
    r, valid = _pool(rng, s, n)
    logits = rng.normal(size=(s, n, k)) * rng.uniform(0.2, 2, size=(1, n, 1))
    bp = jnp.asarray(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), jnp.float32)
    return r, valid, bp


@pytest.mark.parametrize("cfg", [
    AcquisitionConfig(),
    AcquisitionConfig(selection="topk", allocation="fixed"),
    AcquisitionConfig(dense_max_pool=64, allocation="target-fraction"),
    AcquisitionConfig(dense_max_pool=64, selection="topk", method="variance", allocation="fixed"),
    EffectiveAcquisition(pair_mode="reference", allocation="reference-adaptive", min_gap=0.5,
                         reference_pool_factor=10, selection="topk"),
    EffectiveAcquisition(rating_likelihood="gaussian", method="entropy", allocation="target-fraction"),
    EffectiveAcquisition(method="random", rating_likelihood="none"),
])
def test_acquire_masks_and_exclusions(rng, cfg):
    cfg.validate()
    r, valid, bp = _posterior(rng)
    n_clips = r.shape[1]
    true_r = jnp.asarray(rng.normal(size=n_clips).astype(np.float32))
    excluded = jnp.zeros(n_clips, bool).at[:20].set(True)
    rated = jnp.zeros(n_clips, bool).at[20:40].set(True)
    k_max = 24

    @jax.jit
    def run(key, n, state):
        return acq.acquire(cfg, key, r, valid, n, k_max, bin_probs=bp, rating_mean=r[:, :],
                           rating_var=jnp.exp(r) * 0.1 + 0.5, true_returns=true_r,
                           pair_excluded_clips=excluded, rated_clips=rated,
                           n_pref_cum=3, n_eval_cum=5, adaptive_state=state)

    state = acq.AdaptiveState.create()
    for n in (0, 1, 7, 20):
        out = run(jax.random.PRNGKey(n), n, state)
        pm, cm = np.asarray(out.pair_mask), np.asarray(out.clip_mask)
        assert int(out.n_pref) == pm.sum() and int(out.n_eval) == cm.sum()
        assert pm.sum() + cm.sum() <= n
        pairs = np.asarray(out.pair_idx)[pm]
        clips = np.asarray(out.clip_idx)[cm]
        v = np.asarray(valid)
        assert np.all(pairs[:, 0] < pairs[:, 1])
        assert np.all(v[pairs]) and np.all(pairs >= 20)
        assert np.all(v[clips]) and not np.any((clips >= 20) & (clips < 40))
        assert len(np.unique(clips)) == len(clips)
        if cfg.selection == "disjoint":
            assert len(np.unique(pairs)) == pairs.size
        if cfg.pair_mode == "reference" and len(pairs):
            tr = np.asarray(true_r)
            assert np.all(np.abs(tr[pairs[:, 0]] - tr[pairs[:, 1]]) >= 0.5)
        if getattr(cfg, "rating_likelihood", "ordinal") == "none":
            assert cm.sum() == 0
        assert np.isfinite(float(out.bald_pref_mean)) and float(out.bald_pref_mean) >= 0
        state = out.adaptive_state
    # 20 <= k_max and plenty of candidates: the whole quota is used
    assert pm.sum() + cm.sum() == 20


def test_acquire_bald_picks_top_pairs_and_excludes_labelled(rng):
    r, valid, bp = _posterior(rng, n=80)
    cfg = AcquisitionConfig(selection="topk", allocation="fixed", pref_fraction=1.0)
    mat, _, _ = acq.dense_pair_scores(r, valid, jax.random.PRNGKey(0))
    best = np.unravel_index(np.argsort(np.asarray(mat).ravel())[::-1][:2], mat.shape)
    out = _acquire(cfg, jax.random.PRNGKey(0), r, valid, 1, 4, bin_probs=bp)
    assert tuple(np.asarray(out.pair_idx)[0]) == (best[0][0], best[1][0])
    lp = jnp.array([[best[1][0], best[0][0]]])  # reversed order is the same pair
    out = _acquire(cfg, jax.random.PRNGKey(0), r, valid, 1, 4, bin_probs=bp, labelled_pairs=lp)
    assert tuple(np.asarray(out.pair_idx)[0]) == (best[0][1], best[1][1])


def test_information_allocation_refuses_scores_not_in_nats(rng):
    """Ranking pair variance against rating variance (or a binary entropy against a 10-bin
    one) splits the queries by an arbitrary scale: a one-line ConfigError naming the field."""
    r, valid, bp = _posterior(rng, n=40)
    for method in ("variance", "entropy", "random"):
        cfg = EffectiveAcquisition(method=method).validate()  # allocation="information"
        with pytest.raises(ConfigError) as e:
            _acquire(cfg, jax.random.PRNGKey(0), r, valid, 4, 4, bin_probs=bp)
        assert e.value.field == "method" and "\n" not in str(e.value)
        # one modality, or another allocation: nothing is compared across units
        _acquire(dataclasses.replace(cfg, rating_likelihood="none"), jax.random.PRNGKey(0), r, valid, 4, 4)
        _acquire(dataclasses.replace(cfg, allocation="fixed"), jax.random.PRNGKey(0), r, valid, 4, 4,
                    bin_probs=bp)
    from configs.presets import get_preset
    with pytest.raises(ConfigError) as e:
        dataclasses.replace(get_preset("smoke"), acquisition=AcquisitionConfig(method="variance")).validate()
    assert e.value.field == "acquisition.method"
    get_preset("smoke+pref-random").validate()  # preferences only: information is moot
    get_preset("smoke+unified-random").validate()  # fixed split


def test_reference_pool_holds_factor_times_n_pairs(rng):
    """reference_pool_factor means one thing: the pool is the first factor * n valid draws
    (the reference's 100 * n), in factor * k_max static slots."""
    r, valid = _pool(rng, n=150)
    true_r = jnp.asarray(rng.normal(size=150).astype(np.float32) * 5)
    # jitted: op by op, each new shape compiled dozens of small programs (28 s under load).
    ref = jax.jit(acq.reference_pair_candidates,
                  static_argnames=("pool_slots", "attempts", "min_gap", "pool_factor"))
    for factor, n in ((3, 4), (7, 2), (100, 1)):
        cands, stats = ref(
            jax.random.PRNGKey(factor), r, true_r, valid, n, pool_slots=factor * 10,
            attempts=40 * factor * 10, min_gap=0.25, pool_factor=factor)
        assert int(stats.count) == factor * n
        live = np.isfinite(np.asarray(cands.scores))
        assert live.sum() == factor * n and live[: factor * n].all()
    cfg = EffectiveAcquisition(pair_mode="reference", reference_pool_factor=3, allocation="fixed",
                               selection="topk", min_gap=0.25)
    out = _acquire(cfg, jax.random.PRNGKey(0), r, valid, 4, 8, bin_probs=_posterior(rng)[2][:, :150],
                      true_returns=true_r)
    # mean pair BALD is over the 12 candidates: recompute it from the same pool
    key_pairs = jax.random.split(jax.random.PRNGKey(0))[0]  # acquire's first split
    cands, stats = acq.reference_pair_candidates(key_pairs, r, true_r, valid, 4, 24,
                                                 attempts=4 * 24, min_gap=0.25, pool_factor=3)
    np.testing.assert_allclose(float(out.bald_pref_mean), float(stats.bald_sum) / float(stats.count), rtol=1e-6)
    assert int(stats.count) == 12


def test_config_validation_names_field():
    EffectiveAcquisition().validate()
    for field, value in [("method", "ucb"), ("allocation", "equal"), ("pref_fraction", 1.5),
                         ("cost_eval", 0.0), ("selection", "dpp"), ("pair_mode", "some"),
                         ("rating_likelihood", "beta"), ("block_size", 0),
                         ("exclude_labelled", "yes"), ("min_gap", -1.0)]:
        with pytest.raises(ConfigError) as e:
            EffectiveAcquisition(**{field: value}).validate()
        assert e.value.field == field


@pytest.mark.parametrize("allocation", ["information", "reference-adaptive", "target-fraction"])
def test_ratings_only_asks_every_query_of_clips_as_the_old_override_did(rng, allocation):
    """A rating-only run (``pairs=False``) gives every query to clips whatever the user's
    allocation; the glue used to get that by overwriting allocation, pref_fraction and
    min_pref with (fixed, 0, 0). Both give the same result, field by field."""
    r, valid, bp = _posterior(rng, n=60)
    new = EffectiveAcquisition(allocation=allocation, pref_fraction=0.7, min_pref=3, pairs=False)
    old = EffectiveAcquisition(allocation="fixed", pref_fraction=0.0, min_pref=0)
    for n in (0, 1, 5, 12):
        a = _acquire(new, jax.random.PRNGKey(n), r, valid, n, 12, bin_probs=bp)
        b = _acquire(old, jax.random.PRNGKey(n), r, valid, n, 12, bin_probs=bp)
        assert int(a.n_pref) == 0 and int(a.n_eval) == n
        for name in ("pair_mask", "clip_idx", "clip_mask", "clip_score", "n_pref", "n_eval",
                     "bald_pref_mean", "bald_eval_mean", "a_pref", "a_eval"):
            np.testing.assert_array_equal(np.asarray(getattr(a, name)), np.asarray(getattr(b, name)),
                                          err_msg=name)
