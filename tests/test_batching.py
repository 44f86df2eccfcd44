import numpy as np
import pytest

from skl_tfreg import iter_batches, iter_epochs


@pytest.mark.parametrize("n_samples, batch_size", [(1, 1), (10, 3), (10, 10), (10, 64), (97, 8)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_one_epoch_covers_every_row_once(n_samples, batch_size, shuffle):
    batches = list(iter_batches(n_samples, batch_size, shuffle=shuffle, random_state=0))
    rows = np.concatenate(batches)
    np.testing.assert_array_equal(np.sort(rows), np.arange(n_samples))
    sizes = [len(b) for b in batches]
    assert all(size == batch_size for size in sizes[:-1])
    assert sizes[-1] == n_samples - batch_size * (len(sizes) - 1)  # the ragged remainder
    assert len(batches) == -(-n_samples // batch_size)


def test_unshuffled_order_is_row_order():
    assert [b.tolist() for b in iter_batches(7, 3)] == [[0, 1, 2], [3, 4, 5], [6]]


def test_shuffle_is_reproducible_and_actually_permutes():
    first = np.concatenate(list(iter_batches(50, 7, shuffle=True, random_state=3)))
    again = np.concatenate(list(iter_batches(50, 7, shuffle=True, random_state=3)))
    other = np.concatenate(list(iter_batches(50, 7, shuffle=True, random_state=4)))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, np.arange(50))
    assert not np.array_equal(first, other)


def test_epochs_get_fresh_permutations_from_one_seed():
    orders = [np.concatenate(list(e)) for e in iter_epochs(30, 4, n_epochs=3, random_state=0)]
    assert len(orders) == 3
    assert not np.array_equal(orders[0], orders[1])
    replay = [np.concatenate(list(e)) for e in iter_epochs(30, 4, n_epochs=3, random_state=0)]
    for a, b in zip(orders, replay, strict=True):
        np.testing.assert_array_equal(a, b)


def test_epochs_without_shuffle_repeat_the_same_order():
    epochs = [[b.tolist() for b in e] for e in iter_epochs(5, 2, n_epochs=2, shuffle=False)]
    assert epochs == [[[0, 1], [2, 3], [4]]] * 2


def test_unbounded_epochs_keep_coming():
    epochs = iter_epochs(3, 2, random_state=0)
    assert sum(1 for _, _ in zip(range(25), epochs, strict=False)) == 25


def test_legacy_random_state_advances():
    rs = np.random.RandomState(0)
    a = np.concatenate(list(iter_batches(20, 5, shuffle=True, random_state=rs)))
    b = np.concatenate(list(iter_batches(20, 5, shuffle=True, random_state=rs)))
    assert not np.array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0, "batch_size": 1}, "n_samples"),
        ({"n_samples": 5, "batch_size": 0}, "batch_size"),
        ({"n_samples": 5, "batch_size": 2.5}, "batch_size"),
    ],
)
def test_bad_sizes_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        next(iter_batches(**kwargs))
    with pytest.raises(ValueError, match=match):
        next(iter_epochs(**kwargs))


def test_bad_epoch_count_is_named():
    with pytest.raises(ValueError, match="n_epochs"):
        next(iter_epochs(5, 2, n_epochs=-1))
