"""The Status enum: one name for why training stopped, from the kernels to the estimator."""

import numpy as np
import pytest
import tensorflow as tf

from skl_tfreg import _core, _training
from skl_tfreg._status import Status


def test_codes_round_trip_and_members_equal_their_names():
    codes = [status.code for status in Status]
    assert codes == list(range(len(Status)))
    for status in Status:
        assert Status.of(status.code) is status
        assert Status.of(tf.constant(status.code)) is status
        assert status == status.value and str(status) == status.value
    with pytest.raises(IndexError):
        Status.of(len(Status))


def test_the_kernels_codes_are_the_enums():
    assert (_core.RUNNING, _core.CONVERGED, _core.STALLED, _core.DIVERGED, _core.OVERFLOW) == (
        Status.RUNNING.code, Status.CONVERGED.code, Status.STALLED.code,
        Status.DIVERGED.code, Status.OVERFLOW.code,
    )  # fmt: skip


@pytest.mark.parametrize(
    "max_iter, tol, expected",
    [(50, 1e-12, Status.CONVERGED), (2, 1e-12, Status.MAX_ITER)],
)
def test_training_reports_a_status_member(rng, max_iter, tol, expected):
    X = rng.normal(size=(60, 3))
    y = X @ [1.0, -2.0, 0.5] + 0.1 * rng.normal(size=60)
    result = _training.train(X, y[:, None], np.ones(60), alpha=1e-2, fit_intercept=True,
                             max_iter=max_iter, tol=tol)  # fmt: skip
    assert result.status is expected
