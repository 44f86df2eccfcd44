"""skl_tfreg: a scikit-learn linear regressor trained by gradient descent in TensorFlow."""

from ._batching import iter_batches, iter_epochs
from ._cv import SGDL2RegressorCV
from ._estimator import SGDL2Regressor
from ._readers import CSVSource, ParquetSource
from ._threads import limit_tf_threads
from ._version import __version__

__all__ = [
    "SGDL2Regressor",
    "SGDL2RegressorCV",
    "CSVSource",
    "ParquetSource",
    "iter_batches",
    "iter_epochs",
    "limit_tf_threads",
    "__version__",
]
