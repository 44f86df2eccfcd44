"""The data protocol: what the driver may ask of its data, and nothing more."""

import numpy as np
import pytest
import tensorflow as tf

from skl_tfreg import _training, iter_epochs
from skl_tfreg._data import InMemory, ReplicaSet, TrainingData
from skl_tfreg._distributed import Replicas
from skl_tfreg._streaming import LOCAL, Stream


def _rows(rng, n=120, p=4):
    X = rng.normal(size=(n, p)) * [1.0, 10.0, 0.1, 1.0] + [0.0, 50.0, 0.0, -3.0]
    Y = (X @ rng.normal(size=p) + 1.0 + 0.1 * rng.normal(size=n))[:, None]
    return X, Y, rng.uniform(0.5, 2.0, n)


class _OnlyTheProtocol:
    """A TrainingData that forwards the protocol's members to InMemory and records the calls.

    Anything else the driver asked for would raise AttributeError.
    """

    def __init__(self, inner):
        self._inner, self.calls = inner, []
        for name in ("dtype", "n_samples", "n_features", "n_targets", "batch_size", "shuffle"):
            setattr(self, name, getattr(inner, name))

    def _forward(self, name, *args):
        self.calls.append(name)
        return getattr(self._inner, name)(*args)

    def prepare(self, *args):
        return self._forward("prepare", *args)

    def full_batch(self, *args):
        return self._forward("full_batch", *args)

    def epochs(self, *args):
        return self._forward("epochs", *args)

    def minibatch_epoch(self, *args):
        return self._forward("minibatch_epoch", *args)

    def smoothness(self, *args):
        return self._forward("smoothness", *args)


def test_in_memory_data_and_streams_implement_the_protocol(rng):
    X, Y, s = _rows(rng)
    assert isinstance(InMemory(X, Y, s), TrainingData)
    assert isinstance(Stream(lambda: iter([(X, Y, s)])), TrainingData)
    assert isinstance(LOCAL, ReplicaSet)
    assert isinstance(Replicas(tf.distribute.OneDeviceStrategy("/cpu:0")), ReplicaSet)
    assert not isinstance(X, TrainingData)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_the_driver_trains_through_the_protocol_alone(rng, batch_size):
    X, Y, s = _rows(rng)
    kw = dict(alpha=1e-3, fit_intercept=True, max_iter=20, tol=1e-10)
    plain = InMemory(X, Y, s, batch_size=batch_size, shuffle=True)
    wrapped = _OnlyTheProtocol(InMemory(X, Y, s, batch_size=batch_size, shuffle=True))
    epochs = [None if batch_size is None else d.epochs(np.random.default_rng(3))
              for d in (plain, wrapped)]  # fmt: skip
    wrapped.calls.clear()
    expected = _training.run(plain, epochs=epochs[0], **kw)
    result = _training.run(wrapped, epochs=epochs[1], **kw)
    np.testing.assert_array_equal(result.coef, expected.coef)
    np.testing.assert_array_equal(result.loss_curve, expected.loss_curve)
    assert result.status == expected.status and result.n_epochs == expected.n_epochs
    loop = "full_batch" if batch_size is None else "minibatch_epoch"
    assert wrapped.calls[0] == "prepare" and loop in wrapped.calls
    assert ("smoothness" in wrapped.calls) == (batch_size is not None)


def test_in_memory_epochs_are_the_generators_epochs(rng):
    X, Y, s = _rows(rng, n=11)
    data = InMemory(X, Y, s, batch_size=4, shuffle=True)
    got = [[b.tolist() for b in epoch] for _, epoch in zip(range(3), data.epochs(7), strict=False)]
    want = [[b.tolist() for b in e] for e in iter_epochs(11, 4, n_epochs=3, random_state=7)]
    assert got == want
