"""fastadam on dask arrays: batched fits over a cluster, one task per chunk of problems
(:func:`minimize_batch`), and optimizers whose parameters and state are chunked alike, one
task per chunk and step (:class:`Adam`, :class:`AdamW`, :class:`RMSProp`, :class:`NAdam`).

Needs the ``dask`` extra (``pip install 'fastadam[dask]'``: dask[array], distributed, zarr).
"""

from .batch import compute, minimize_batch
from .optimizers import Adam, AdamW, NAdam, RMSProp

__all__ = ["Adam", "AdamW", "NAdam", "RMSProp", "compute", "minimize_batch"]
