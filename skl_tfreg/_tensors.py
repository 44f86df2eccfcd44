"""Arrays to tensors: the one place where numpy and scipy data become TensorFlow's.

A dense float array is shared with TensorFlow (at most one aligned copy, never
two), a scipy.sparse matrix becomes a ``tf.SparseTensor`` in row-major order.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

__all__ = ["aligned", "as_tensor", "is_sparse", "shareable", "sparse_tensor", "split_rows",
           "training_tensors"]  # fmt: skip

_ALIGNMENT = 64  # bytes: what TensorFlow's CPU kernels require of a buffer they share


def is_sparse(X):
    """Whether ``X`` is a scipy.sparse matrix or array."""
    return sp.issparse(X)


def shareable(array):
    """Whether TensorFlow can share ``array``'s memory: C-contiguous, writable, aligned."""
    return (
        array.flags.c_contiguous
        and array.flags.writeable
        and array.ctypes.data % _ALIGNMENT == 0
        and array.size > 0
    )


def aligned_empty(shape, dtype):
    """Return an uninitialised C array whose buffer TensorFlow can share."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + _ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % _ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def aligned(array):
    """Return ``array`` as a buffer TensorFlow can share: itself, or one aligned copy.

    A float C-contiguous, writable, 64-byte-aligned, non-empty array is returned
    as it is; any other float array is copied once into such a buffer. Other
    dtypes are returned unchanged (TensorFlow converts them).
    """
    array = np.asarray(array)
    if array.dtype not in (np.float32, np.float64) or shareable(array):
        return array
    buffer = aligned_empty(array.shape, array.dtype)
    np.copyto(buffer, array)
    return buffer


def as_tensor(array):
    """Return a TensorFlow tensor of ``array`` with at most one copy of its data.

    ``tf.convert_to_tensor`` holds two copies of a large array at its peak. Here
    the array (or its :func:`aligned` copy) is shared with TensorFlow through
    DLPack. TensorFlow only reads it.
    """
    array = aligned(array)
    if array.dtype not in (np.float32, np.float64) or array.size == 0:
        return tf.convert_to_tensor(array)
    return tf.experimental.dlpack.from_dlpack(array.__dlpack__())


def sparse_tensor(X):
    """Return a scipy.sparse matrix or array as a ``tf.SparseTensor`` in row-major order.

    The caller's matrix is not changed: one whose indices are unsorted or
    duplicated is put in canonical form in a copy.
    """
    X = X.tocsr()
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    rows = np.repeat(np.arange(X.shape[0], dtype=np.int64), np.diff(X.indptr))
    indices = np.stack([rows, X.indices.astype(np.int64, copy=False)], axis=1)
    return tf.SparseTensor(indices, X.data, np.asarray(X.shape, dtype=np.int64))


def split_rows(X):
    """Return a dense X as two tensors: the rows before its first aligned row, and the rest.

    The second, ``body``, shares X's memory (no copy); ``head`` (a copy) holds
    fewer than 64 rows. An X that cannot be shared (not C-contiguous, read-only)
    is copied once, whole, into ``body``.
    """
    X = np.asarray(X)
    n, p = X.shape
    if n == 0 or not (X.flags.c_contiguous and X.flags.writeable):
        return tf.zeros([0, p], X.dtype), as_tensor(X)
    stride = X.strides[0]
    step = _ALIGNMENT // math.gcd(stride, _ALIGNMENT)  # rows between aligned rows
    first = next(
        (r for r in range(min(step, n)) if (X.ctypes.data + r * stride) % _ALIGNMENT == 0), None
    )
    if first is None:  # no row starts on a boundary: one aligned copy
        return tf.zeros([0, p], X.dtype), as_tensor(X)
    return tf.convert_to_tensor(X[:first]), as_tensor(X[first:])


def training_tensors(X, Y, sample_weight):
    """Return the tensors of rows ``X``, targets ``Y`` and weights, in X's dtype.

    Parameters
    ----------
    X : ndarray or scipy.sparse matrix of shape (n, n_features)
        Rows, float32 or float64.
    Y : ndarray of shape (n, n_targets)
        Their targets.
    sample_weight : ndarray of shape (n,)
        Their weights.

    Returns
    -------
    X, Y, sample_weight : tf.Tensor or tf.SparseTensor
        The three as tensors of X's dtype (X sparse if it was).
    """
    X = sparse_tensor(X) if is_sparse(X) else as_tensor(X)
    return X, tf.convert_to_tensor(Y, X.dtype), tf.convert_to_tensor(sample_weight, X.dtype)
