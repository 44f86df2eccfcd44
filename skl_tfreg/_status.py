"""Why training stopped: one enum from the compiled kernels to the estimator.

numpy-free and TensorFlow-free. The kernels compute with :attr:`Status.code`
(an int, in a graph); everything outside them holds :class:`Status` members,
which compare equal to their lower-case names (``Status.CONVERGED == "converged"``).
"""

from __future__ import annotations

import enum


class Status(str, enum.Enum):
    """The state of a training run, and the reason it ended."""

    RUNNING = "running"  # not stopped yet
    CONVERGED = "converged"  # the gradient rule was met (or y is fitted to rounding)
    STALLED = "stalled"  # no progress by tol over n_iter_no_change epochs (or rounding)
    DIVERGED = "diverged"  # the objective grew past its limit or turned non-finite
    OVERFLOW = "overflow"  # the data's statistics overflow the dtype
    STOPPED = "stopped"  # a callback asked to stop
    FLOOR = "floor"  # full batch stuck at rounding far from tol: possibly inaccurate
    MAX_ITER = "max_iter"  # max_iter epochs ran before any rule stopped training

    @property
    def code(self):
        """The int that stands for this status inside a compiled kernel."""
        return _CODES[self]

    @classmethod
    def of(cls, code):
        """Return the status whose :attr:`code` is ``code`` (an int or a scalar tensor)."""
        return _MEMBERS[int(code)]

    def __str__(self):
        return self.value


# Written out, so that reordering the members cannot renumber the kernels' codes.
_CODES = {
    Status.RUNNING: 0,
    Status.CONVERGED: 1,
    Status.STALLED: 2,
    Status.DIVERGED: 3,
    Status.OVERFLOW: 4,
    Status.STOPPED: 5,
    Status.FLOOR: 6,
    Status.MAX_ITER: 7,
}
_MEMBERS = tuple(sorted(_CODES, key=_CODES.__getitem__))
