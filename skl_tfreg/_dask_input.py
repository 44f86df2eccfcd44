"""Recognise Dask input without importing Dask (a leaf: it imports nothing of the package)."""

__all__ = ["is_dask"]


def is_dask(obj):
    """Whether ``obj`` is a dask array, a Dask DataFrame or a Dask Series.

    Reads the type's module and its Dask collection protocol, so Dask is never
    imported here: the package imports it only once it is given Dask input.
    Other collections that speak the protocol (``dask.delayed`` objects, an
    xarray DataArray) are not taken for Dask input: they are read as arrays.
    """
    kind = type(obj)
    return hasattr(kind, "__dask_graph__") and kind.__module__.startswith(_DASK_MODULES)


# Where dask arrays and DataFrames (dask_expr's before it joined dask) are defined.
_DASK_MODULES = ("dask.array.", "dask.dataframe.", "dask_expr.")
