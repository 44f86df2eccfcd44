"""Exporting a fitted estimator as a TensorFlow SavedModel, for serving.

:func:`export_savedmodel` writes a SavedModel whose signatures predict like
``SGDL2Regressor.predict``; it needs no scikit-learn and no skl_tfreg to load.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

__all__ = ["export_savedmodel"]


class _LinearModel(tf.Module):
    """The fitted linear model as a TensorFlow module: ``x @ coef.T + intercept``.

    Parameters
    ----------
    coef : ndarray of shape (n_features,) or (n_targets, n_features)
        The estimator's ``coef_``.
    intercept : scalar or ndarray of shape (n_targets,)
        The estimator's ``intercept_``.
    """

    def __init__(self, coef, intercept):
        super().__init__(name="SGDL2Regressor")
        self.coef = tf.Variable(coef, trainable=False, name="coef")
        self.intercept = tf.Variable(np.asarray(intercept), trainable=False, name="intercept")
        for dtype in (tf.float32, tf.float64):
            setattr(self, f"predict_{dtype.name}", self._predictor(dtype))

    def _predictor(self, dtype):
        """Return the traced prediction function for inputs of ``dtype``.

        The product is computed in numpy's promoted dtype of the input and
        ``coef_`` (float64 if either is), as ``predict`` does.

        Parameters
        ----------
        dtype : tf.DType
            float32 or float64.

        Returns
        -------
        predict : tf.types.experimental.GenericFunction
            ``predict(x) -> {"predictions": y}``.
        """
        n_features = int(self.coef.shape[-1])
        compute = tf.float64 if tf.float64 in (dtype, self.coef.dtype) else tf.float32
        equation = "ij,j->i" if len(self.coef.shape) == 1 else "ij,kj->ik"

        @tf.function(input_signature=[tf.TensorSpec([None, n_features], dtype, name="x")])
        def predict(x):
            coef = tf.cast(self.coef, compute)
            product = tf.einsum(equation, tf.cast(x, compute), coef)
            return {"predictions": product + tf.cast(self.intercept, compute)}

        return predict


def export_savedmodel(estimator, path):
    """Write a TensorFlow SavedModel of the fitted ``estimator`` to the directory ``path``.

    Its signatures take ``x`` of shape ``(None, n_features_in_)`` and return
    ``{"predictions": ...}`` of shape ``(None,)`` (1-D ``coef_``) or
    ``(None, n_targets)``: ``"serving_default"`` takes ``x`` in the dtype of
    ``coef_``, ``"predict_float32"`` and ``"predict_float64"`` in theirs. Like
    :meth:`SGDL2Regressor.predict`, float32 inputs to a float64 model are
    computed in float64. The loaded object also has the methods
    ``predict_float32(x)`` and ``predict_float64(x)`` and the variables
    ``coef`` and ``intercept``.

    Parameters
    ----------
    estimator : SGDL2Regressor
        A fitted estimator.
    path : str or path-like
        Directory to write.
    """
    coef = np.asarray(estimator.coef_)
    module = _LinearModel(coef, estimator.intercept_)
    default = module.predict_float32 if coef.dtype == np.float32 else module.predict_float64
    signatures = {
        "serving_default": default.get_concrete_function(),
        "predict_float32": module.predict_float32.get_concrete_function(),
        "predict_float64": module.predict_float64.get_concrete_function(),
    }
    tf.saved_model.save(module, os.fspath(path), signatures=signatures)
