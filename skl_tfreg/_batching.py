"""Batch and epoch generators: which rows each gradient step sees, in what order.

numpy only. The estimator takes its training order from these generators, so an
epoch here is exactly the epoch the TensorFlow core runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from numbers import Integral

import numpy as np

__all__ = ["iter_batches", "iter_epochs"]


def _check_sizes(n_samples, batch_size):
    if not isinstance(n_samples, Integral) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
    if not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")


def _as_generator(random_state):
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        # Draw one seed from the legacy state so the caller's state still advances.
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


def iter_batches(
    n_samples: int,
    batch_size: int,
    *,
    shuffle: bool = False,
    random_state: int | np.random.Generator | np.random.RandomState | None = None,
) -> Iterator[np.ndarray]:
    """Yield the row indices of one epoch, one mini-batch at a time.

    The batches cover ``range(n_samples)`` exactly once. All batches have
    ``batch_size`` rows except the last, which holds the remainder (a ragged
    last batch); no row is dropped or repeated.

    Parameters
    ----------
    n_samples : int
        Number of rows in the data set.
    batch_size : int
        Rows per batch. A value ``>= n_samples`` gives one batch.
    shuffle : bool, default=False
        Visit the rows in a random order instead of ``0, 1, ..., n_samples - 1``.
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None
        Source of the permutation when ``shuffle=True``.

    Yields
    ------
    batch : ndarray of shape (batch_size,) or shorter, dtype int64
        Row indices of one batch (views into one permutation of the epoch).

    Examples
    --------
    >>> from skl_tfreg import iter_batches
    >>> [b.tolist() for b in iter_batches(5, 2)]
    [[0, 1], [2, 3], [4]]
    """
    _check_sizes(n_samples, batch_size)
    if shuffle:
        order = _as_generator(random_state).permutation(n_samples).astype(np.int64)
    else:
        order = np.arange(n_samples, dtype=np.int64)
    for start in range(0, n_samples, batch_size):
        yield order[start : start + batch_size]


def iter_epochs(
    n_samples: int,
    batch_size: int,
    *,
    n_epochs: int | None = None,
    shuffle: bool = True,
    random_state: int | np.random.Generator | np.random.RandomState | None = None,
) -> Iterator[Iterator[np.ndarray]]:
    """Yield one :func:`iter_batches` generator per epoch.

    This is the shape of the original ``generate_epochs``: a generator of
    epochs, each a generator of batches. One random generator is created from
    ``random_state`` and shared by all epochs, so every epoch gets a fresh
    permutation while the whole sequence is reproducible.

    Parameters
    ----------
    n_samples : int
        Number of rows in the data set.
    batch_size : int
        Rows per batch; the last batch of each epoch may be smaller.
    n_epochs : int or None, default=None
        Number of epochs to yield; None yields epochs without end.
    shuffle : bool, default=True
        Permute the rows anew at each epoch.
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None
        Seed or generator for the permutations.

    Yields
    ------
    batches : generator of ndarray
        The batches of one epoch, as yielded by :func:`iter_batches`.

    Examples
    --------
    >>> from skl_tfreg import iter_epochs
    >>> epochs = iter_epochs(4, 3, n_epochs=2, shuffle=False)
    >>> [[b.tolist() for b in epoch] for epoch in epochs]
    [[[0, 1, 2], [3]], [[0, 1, 2], [3]]]
    """
    _check_sizes(n_samples, batch_size)
    if n_epochs is not None and (not isinstance(n_epochs, Integral) or n_epochs < 0):
        raise ValueError(f"n_epochs must be a non-negative integer or None, got {n_epochs!r}.")
    rng = _as_generator(random_state) if shuffle else None
    epoch = 0
    while n_epochs is None or epoch < int(n_epochs):
        yield iter_batches(n_samples, batch_size, shuffle=shuffle, random_state=rng)
        epoch += 1
