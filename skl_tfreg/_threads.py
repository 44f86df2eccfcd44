"""Capping TensorFlow's CPU threads, before or after TensorFlow has started."""

from __future__ import annotations

import os
from numbers import Integral

_ENVIRONMENT = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
_MAX_THREADS = 4096


def limit_tf_threads(n_threads: int) -> bool:
    """Cap TensorFlow's CPU thread pools at ``n_threads``, here if possible and in children.

    TensorFlow sizes its two CPU thread pools (within one operation, and across
    independent operations) once, when it starts, and refuses to change them
    afterwards (``tf.config.threading`` raises ``RuntimeError``). This function
    never raises for that: it sets the cap in this process if TensorFlow has not
    started yet, and always sets the environment variables that TensorFlow reads
    when it starts (``TF_NUM_INTRAOP_THREADS``, ``TF_NUM_INTEROP_THREADS``), so
    every process started afterwards from this one (joblib's worker processes,
    for example) starts with the cap.

    Call it before a search with ``n_jobs > 1`` so that its workers share the
    cores instead of each using all of them, for example
    ``limit_tf_threads(max(1, os.cpu_count() // n_jobs))``. joblib reuses its
    worker processes from one search to the next, so call it before the first
    parallel search: workers started earlier keep their threads. To cap the current
    process too, call it before its first fit (the package imports TensorFlow at
    the first fit, and ``predict`` does not use it), or set the two environment
    variables before starting Python. It imports TensorFlow itself, to set the cap.

    Parameters
    ----------
    n_threads : int
        Threads per pool, from 1 to 4096.

    Returns
    -------
    applied_here : bool
        Whether the cap now holds in this process (False if TensorFlow had
        already started here; child processes get the cap either way).
    """
    if isinstance(n_threads, bool) or not isinstance(n_threads, Integral) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}.")
    if n_threads > _MAX_THREADS:
        # TensorFlow would try to start them all at its next operation (and fail past
        # 2**31 - 1, or hang), far from this call.
        raise ValueError(
            f"n_threads={n_threads} is more than {_MAX_THREADS} threads per pool; a cap "
            "is meant to be at most the number of cores (os.cpu_count())."
        )
    import tensorflow as tf  # the one call here that needs it

    n_threads = int(n_threads)
    for name in _ENVIRONMENT:
        os.environ[name] = str(n_threads)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n_threads)
        tf.config.threading.set_inter_op_parallelism_threads(n_threads)
    except RuntimeError:  # TensorFlow has started: its pools are fixed in this process
        return False
    return True
