"""Segment harvest: random windows that never cross a reset and never repeat."""

import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax.batches import Series
from active_rlhf_jax.pipeline.pool import harvest_segments

B, N, L = 3, 12, 4


def _series(ended_at=()):
    t = jnp.arange(N, dtype=jnp.float32)
    obs = jnp.stack(jnp.broadcast_arrays(jnp.arange(B, dtype=jnp.float32)[:, None], t[None]), -1)
    ended = np.zeros((B, N), np.float32)
    for b, s in ended_at:
        ended[b, s] = 1.0
    return Series(obs, jnp.zeros((B, N, 1)), t[None].repeat(B, 0), jnp.asarray(ended))


def _windows(obs, mask):
    o = np.asarray(obs)[np.asarray(mask)]
    return [(int(w[0, 0]), int(w[0, 1])) for w in o], o


def test_windows_are_distinct_and_never_cross_a_reset():
    # env 0 ends an episode at step 5: windows of env 0 may end at 5 but not contain it
    # before their last step. Distinct windows: 9 per env, minus env 0's 3 crossing ones.
    series = _series(ended_at=[(0, 5)])
    f = jax.jit(harvest_segments, static_argnums=(2, 3))
    for k in range(20):
        clips = f(jax.random.PRNGKey(k), series, 12, L)
        o, r, mask = clips.obs, clips.rew, clips.mask
        wins, o = _windows(o, mask)
        assert int(mask.sum()) == 12
        assert len(set(wins)) == len(wins)  # no window twice
        for (b, s), seg in zip(wins, o):
            np.testing.assert_array_equal(seg[:, 1], np.arange(s, s + L))  # contiguous
            assert not (b == 0 and s <= 5 < s + L - 1)  # no reset inside
        np.testing.assert_array_equal(np.asarray(r)[np.asarray(mask)][:, 0],
                                      [s for _, s in wins])


def test_fewer_distinct_windows_than_wanted_are_masked():
    # 3 envs x 9 starts = 27 distinct windows; 40 wanted -> at most 27 valid, all distinct.
    clips = jax.jit(harvest_segments, static_argnums=(2, 3))(jax.random.PRNGKey(0), _series(), 40, L)
    o, mask = clips.obs, clips.mask
    wins, _ = _windows(o, mask)
    assert len(wins) == len(set(wins)) and 24 <= len(wins) <= 27


def test_absorbing_clips_run_past_a_termination_but_not_past_the_time_limit():
    """run.absorbing_clips: env 0 terminates at step 5, env 1 hits the time limit at step
    5, env 2 never ends. Every window of env 0 is valid; the steps after its step 5 are
    absorbing (NaN obs, zero action and true reward) and step 5 itself is kept. Env 1's
    windows that hold step 5 before their last step are refused, as without the option.
    All 27 distinct windows minus env 1's 3 crossing ones are found."""
    series = _series(ended_at=[(0, 5), (1, 5)])
    trunc = np.zeros((B, N), np.float32)
    trunc[1, 5] = 1.0
    series = series.replace(trunc=jnp.asarray(trunc), act=jnp.ones((B, N, 1)))
    f = jax.jit(harvest_segments, static_argnums=(2, 3, 4, 5))
    clips = f(jax.random.PRNGKey(3), series, 40, L, 8, True)
    mask = np.asarray(clips.mask)
    obs, act, rew = (np.asarray(x)[mask] for x in (clips.obs, clips.act, clips.rew))
    wins = [(int(o[0, 0]), int(o[0, 1])) for o in obs]
    assert len(wins) == len(set(wins)) == 24
    crossing = [(b, s) for b, s in wins if b == 0 and s <= 5 < s + L - 1]
    assert sorted(crossing) == [(0, 3), (0, 4), (0, 5)]
    for (b, s), o, a, r in zip(wins, obs, act, rew):
        assert not (b == 1 and s <= 5 < s + L - 1)
        live = (np.arange(s, s + L) <= 5) | (s > 5) if b == 0 else np.ones(L, bool)
        np.testing.assert_array_equal(np.isnan(o[:, 0]), ~live)
        np.testing.assert_array_equal(o[live, 1], np.arange(s, s + L)[live])
        np.testing.assert_array_equal(a[:, 0], live.astype(np.float32))
        np.testing.assert_array_equal(r, np.where(live, np.arange(s, s + L), 0.0))
    # Without the option the same series gives no absorbing step and no crossing window.
    plain = f(jax.random.PRNGKey(3), series, 40, L, 8, False)
    assert not np.isnan(np.asarray(plain.obs)[np.asarray(plain.mask)]).any()
    assert int(plain.mask.sum()) == 21
