"""Feedback buffers: masked fixed-shape adds and the validation split."""

import jax
import jax.numpy as jnp
import numpy as np

from active_rlhf_jax.batches import PreferenceBatch, RatingBatch
from active_rlhf_jax.buffers import add_preferences, add_ratings, make_feedback_buffers
from active_rlhf_jax.config import CompatConfig

L, O, A = 3, 2, 1


def _items(k, start=0.0):
    obs = start + jnp.arange(k, dtype=jnp.float32)[:, None, None] * jnp.ones((k, L, O))
    return obs, jnp.zeros((k, L, A))


def test_add_only_masked_items_in_order():
    b = make_feedback_buffers(8, 8, L, O, A)
    o, a = _items(4)
    b = jax.jit(add_preferences)(b, jax.random.PRNGKey(0), PreferenceBatch(
        o, a, -o, a, jnp.array([1.0, 0.0, 0.5, 1.0]), jnp.array([True, False, True, True])))
    assert int(b.pref_count) == 3
    np.testing.assert_array_equal(b.pref_valid, [1, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(b.pref_obs_a[:3, 0, 0], [0.0, 2.0, 3.0])
    np.testing.assert_array_equal(b.pref_obs_b[:3, 0, 0], [0.0, -2.0, -3.0])
    np.testing.assert_array_equal(b.pref_label[:3], [1.0, 0.5, 1.0])
    b = add_ratings(b, jax.random.PRNGKey(1),
                    RatingBatch(*_items(2, 10.0), jnp.array([3.0, 7.0]), jnp.array([False, True])))
    assert int(b.rating_count) == 1 and float(b.rating_value[0]) == 7.0
    assert float(b.rating_obs[0, 0, 0]) == 11.0


def test_overflow_is_dropped():
    b = make_feedback_buffers(4, 4, L, O, A)
    o, a = _items(6)
    b = add_ratings(b, jax.random.PRNGKey(0), RatingBatch(o, a, jnp.arange(6.0), jnp.ones(6, bool)))
    assert int(b.rating_count) == 4
    np.testing.assert_array_equal(b.rating_value, [0, 1, 2, 3])


def test_every_fifth_label_is_validation_one_at_a_time_and_batched():
    add = jax.jit(add_ratings)
    o1, a1 = _items(1)
    b = make_feedback_buffers(50, 50, L, O, A)
    for i in range(50):
        b = add(b, jax.random.PRNGKey(i), RatingBatch(o1, a1, jnp.zeros(1), jnp.ones(1, bool)))
    v = np.asarray(b.rating_is_val).reshape(10, 5)
    np.testing.assert_array_equal(v.sum(1), 1)  # one per block of five, even for single adds
    slots = v.argmax(1)
    assert len(set(slots.tolist())) > 1  # position drawn by the key
    b2 = make_feedback_buffers(50, 50, L, O, A)
    o7, a7 = _items(7)
    for i in range(7):
        b2 = add(b2, jax.random.PRNGKey(100 + i),
                 RatingBatch(o7, a7, jnp.zeros(7), jnp.arange(7) < 7 - (i % 3)))
    n = int(b2.rating_count)
    v2 = np.asarray(b2.rating_is_val)[: n - n % 5].reshape(-1, 5)
    np.testing.assert_array_equal(v2.sum(1), 1)
    assert not np.any(np.asarray(b2.rating_is_val)[n:])


def test_reference_val_split_never_grows_for_small_batches():
    c = CompatConfig(reference_val_split=True)
    o, a = _items(4)
    b = make_feedback_buffers(40, 40, L, O, A)
    for i in range(5):
        b = add_preferences(b, jax.random.PRNGKey(i),
                            PreferenceBatch(o, a, o, a, jnp.ones(4), jnp.ones(4, bool)), compat=c)
    assert int(b.pref_count) == 20 and int(b.pref_is_val.sum()) == 0  # int(0.2 * 4) = 0
    o, a = _items(12)
    b = add_preferences(b, jax.random.PRNGKey(9),
                        PreferenceBatch(o, a, o, a, jnp.ones(12), jnp.arange(12) < 11), compat=c)
    assert int(b.pref_is_val.sum()) == 2  # int(0.2 * 11) = 2, chosen among the 11 added
    # Default split on the same adds: one in five of all labels.
    b = make_feedback_buffers(40, 40, L, O, A)
    o, a = _items(4)
    for i in range(5):
        b = add_preferences(b, jax.random.PRNGKey(i), PreferenceBatch(o, a, o, a, jnp.ones(4), jnp.ones(4, bool)))
    assert int(b.pref_is_val.sum()) == 4
