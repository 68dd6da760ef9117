"""fastadam on dask arrays: batched fits over a cluster, one task per chunk of problems.

Needs the ``dask`` extra (``pip install 'fastadam[dask]'``: dask[array], distributed, zarr).
"""

from .batch import compute, minimize_batch

__all__ = ["compute", "minimize_batch"]
