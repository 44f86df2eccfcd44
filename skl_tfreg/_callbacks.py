"""Epoch reports to scikit-learn's callback API (``sklearn.callback``, scikit-learn >= 1.9).

Where the installed scikit-learn has no such API, :data:`CallbackSupportMixin`
is None and the estimator simply lacks ``set_callbacks``.
"""

from __future__ import annotations

try:
    from sklearn.callback import CallbackSupportMixin
except ImportError:  # scikit-learn < 1.9
    CallbackSupportMixin = None


def has_callbacks(estimator):
    """Whether callbacks were set on ``estimator`` (or propagated to it)."""
    return CallbackSupportMixin is not None and bool(getattr(estimator, "_skl_callbacks", None))


class EpochCallbacks:
    """The fit as a task of ``max_iter`` epoch subtasks, each reported to the callbacks.

    Built at the start of ``fit``; :meth:`epoch_end` ends an epoch's task (with
    an estimator ready to predict from that epoch's coefficients) and begins
    the next; :meth:`close` ends the fit's task. Teardown is the job of
    scikit-learn's fit context.
    """

    def __init__(self, estimator, X, y, metadata, max_iter, attributes):
        self._estimator = estimator
        self._data = dict(X=X, y=y, metadata=metadata)
        self._attributes = attributes  # (coef, intercept) -> fitted attributes
        self._root = estimator._init_callback_context(max_subtasks=max_iter)
        self._root.call_on_fit_task_begin(estimator=estimator, **self._data)
        self._epoch = self._begin()

    def _begin(self):
        ctx = self._root.subcontext(task_name="epoch")
        ctx.call_on_fit_task_begin(estimator=self._estimator, **self._data)
        return ctx

    def epoch_end(self, report):
        """End the epoch in ``report`` (a ``_training.Epoch``); return whether to stop."""
        stop = self._epoch.call_on_fit_task_end(
            estimator=self._estimator,
            reconstruction_attributes=lambda: self._attributes(report.coef, report.intercept),
            **self._data,
        )
        self._epoch = None if (stop or report.final) else self._begin()
        return stop

    def close(self, fitted):
        """End a begun epoch that did not run (the fit stopped first), then the fit.

        ``fitted`` holds the fitted attributes, or is empty when the fit failed.
        """
        if self._epoch is not None:
            self._epoch.call_on_fit_task_end(estimator=self._estimator)
        self._root.call_on_fit_task_end(
            estimator=self._estimator, reconstruction_attributes=fitted or None, **self._data
        )
