"""skl_tfreg: a scikit-learn linear regressor trained by gradient descent in TensorFlow."""

from ._batching import iter_batches, iter_epochs
from ._estimator import SGDL2Regressor

__version__ = "0.1.0"

__all__ = ["SGDL2Regressor", "iter_batches", "iter_epochs", "__version__"]
