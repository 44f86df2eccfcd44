"""TrainState: what a later call needs to continue training, numpy and Python only.

A leaf: the driver (:mod:`skl_tfreg._training`) makes it, the estimator keeps it
as ``_train_state``, and :mod:`skl_tfreg._persistence` saves and loads it without
importing the driver.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["TrainState"]


class TrainState(NamedTuple):
    """Everything a later call needs to continue training; numpy and Python only.

    ``moments`` are the float64 weighted moments of every row trained on so far
    (``partial_fit`` merges each chunk into them; they define the
    preconditioner). ``direction`` is the last conjugate-gradient direction in
    the caller's units, ``(dW, db)`` (None after any other step rule), so that it
    survives a change of preconditioner. ``steps`` pairs a step rule with its
    current ``(eta, n_reductions)``, ``((rule, parameter), (eta, n_reductions))``
    for ``("adaptive", eta0)`` and ``("auto", batch_size)`` (mini-batch), so that
    a chunk trained under another rule or batch size does not reset them; a tuple
    of pairs, not a dict keyed by tuples, so that skops can save it
    (``dict(steps)`` is the mapping). ``best`` and ``n_bad`` are the
    progress rule's reference (lowest objective, lowest gradient norm) and its
    count of epochs without progress; ``partial_fit`` carries the count only,
    judging each chunk against its own objective at the start of the call.
    ``t`` counts gradient steps. With averaged SGD (``average``) the fitted
    coefficients are the mean of the iterates: ``iterate`` is then the last
    iterate itself, ``(coef, intercept)`` in the caller's units, where
    ``partial_fit`` continues the steps from, and ``n_averaged`` the number of
    iterates in the mean (None and 0 otherwise). ``n_seen`` counts the rows
    stepped over since the last ``fit`` or ``fit_stream`` began, warm or not,
    ``partial_fit``'s added (``average``'s threshold reads it).
    """

    moments: tuple
    direction: tuple | None
    steps: tuple  # of ((rule, parameter), (eta, n_reductions)) pairs
    best: np.ndarray
    n_bad: int
    t: int
    iterate: tuple | None = None  # (coef (p, k), intercept (k,)) under averaging
    n_averaged: int = 0
    n_seen: int = 0
