"""Recognise Dask input without importing Dask (a leaf: it imports nothing of the package)."""

__all__ = ["is_dask"]


def is_dask(obj):
    """Whether ``obj`` is a Dask collection: a dask array, a Dask DataFrame or Series.

    Asks the type for the Dask collection protocol, so Dask is never imported
    here: the package imports it only once it is given Dask input.
    """
    return hasattr(type(obj), "__dask_graph__")
