"""Arrays to tensors: the one place where numpy and scipy data become TensorFlow's.

A dense float array is shared with TensorFlow (at most one aligned copy, never
two), a scipy.sparse matrix becomes a ``tf.SparseTensor`` in row-major order.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

__all__ = ["aligned", "as_tensor", "is_sparse", "sparse_tensor", "training_tensors"]

_ALIGNMENT = 64  # bytes: what TensorFlow's CPU kernels require of a buffer they share


def is_sparse(X):
    """Whether ``X`` is a scipy.sparse matrix or array."""
    return sp.issparse(X)


def aligned(array):
    """Return ``array`` as a buffer TensorFlow can share: itself, or one aligned copy.

    A float C-contiguous, writable, 64-byte-aligned, non-empty array is returned
    as it is; any other float array is copied once into such a buffer. Other
    dtypes are returned unchanged (TensorFlow converts them).
    """
    array = np.asarray(array)
    if array.dtype not in (np.float32, np.float64):
        return array
    shared = (
        array.flags.c_contiguous
        and array.flags.writeable
        and array.ctypes.data % _ALIGNMENT == 0
        and array.size > 0
    )
    if shared:
        return array
    raw = np.empty(array.nbytes + _ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % _ALIGNMENT
    buffer = raw[start : start + array.nbytes].view(array.dtype).reshape(array.shape)
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
