"""Optimizers over dask arrays: parameters and state chunked alike, one task per chunk.

Adam, RMSProp and NAdam are elementwise, so a chunk of parameters is updated with the same
chunk of each state buffer and of the gradient, and nothing else: no communication inside
a step. Each step is one task per chunk, which runs :class:`fastadam.Adam` (or the class
asked for) on its chunk from the optimizer's scalar state (step count, NAdam's momentum
product, hyperparameters) kept here; the new parameters and state are persisted, so they
stay where the scheduler put them (on the workers of a cluster). After any number of steps
they are bitwise those of the same optimizer run on the gathered arrays.
"""

import json

import dask.array as da
import numpy as np

import fastadam as fa

from ..cpu.kernels import PARALLEL_MIN_SIZE
from .batch import numba_threads

__all__ = ["Adam", "AdamW", "NAdam", "RMSProp"]


class _Sharded:
    """The optimizer :attr:`optimizer` on one dask array of parameters."""

    optimizer = None  # the fastadam class

    def __init__(self, params, **hyperparameters):
        if not isinstance(params, da.Array):
            raise TypeError(
                f"params must be a dask array, got {type(params).__name__}; for a numpy array "
                f"use fastadam.{self.optimizer.__name__}"
            )
        if hyperparameters.get("skip_nonfinite"):
            raise ValueError(
                "skip_nonfinite is not supported on dask arrays (it skips a whole array, "
                "which would differ from chunk to chunk)"
            )
        # the scalar state lives here, in an optimizer of one element that steps with every
        # step (its hyperparameters are checked now, as fastadam's constructor checks them)
        self._scalar = self.optimizer(np.zeros(1, params.dtype), **hyperparameters)
        self._hyper = hyperparameters
        _warm(self.optimizer, params, hyperparameters)
        first = self._scalar.state_dict()
        self._names = [k[:-2] for k in first if k.endswith(".0")]
        self.params = params.persist()
        self.state = {
            name: da.full_like(params, first[name + ".0"][0]).persist() for name in self._names
        }

    @property
    def t(self):
        """The number of steps taken."""
        return int(self._scalar.state_dict()["t"])

    @property
    def lr(self):
        """The learning rate, a float or a schedule ``lr(t)``; settable, checked as
        :attr:`fastadam.Adam.lr` checks it."""
        return self._scalar.lr

    @lr.setter
    def lr(self, value):
        self._scalar.lr = value
        self._hyper = dict(self._hyper, lr=value)

    def __setattr__(self, name, value):
        # a hyperparameter set as an attribute would be ignored by the steps: refused
        if not name.startswith("_") and name not in ("params", "state", "lr"):
            raise AttributeError(
                f"{type(self).__name__}.{name} cannot be set: only lr changes after "
                "construction (make a new optimizer, or load a state_dict)"
            )
        super().__setattr__(name, value)

    def step(self, grads):
        """One step with ``grads``, a dask array chunked like the parameters (one task per
        chunk, on one numba thread); the new parameters and state are persisted."""
        g = self._check(grads)
        header = _scalars(self._scalar.state_dict())
        k = 1 + len(self._names)
        out = da.map_blocks(
            _step_block, self.params, g, *(self.state[n] for n in self._names),
            cls=self.optimizer, hyper=self._hyper, header=header, names=self._names,
            new_axis=0, chunks=((k,), *self.params.chunks), dtype=self.params.dtype,
        )  # fmt: skip
        out = out.persist()
        self._scalar.step(np.zeros(1, self.params.dtype))  # t and the carried scalars
        self.params = out[0]
        self.state = {n: out[1 + i] for i, n in enumerate(self._names)}

    def _check(self, grads):
        if not isinstance(grads, da.Array):
            raise TypeError(f"grads must be a dask array, got {type(grads).__name__}")
        p = self.params
        if grads.shape != p.shape or grads.dtype != p.dtype:
            raise ValueError(
                f"grads has shape {grads.shape} and dtype {grads.dtype}; the parameters "
                f"{p.shape} and {p.dtype}"
            )
        if grads.chunks != p.chunks:
            raise ValueError(
                f"grads is chunked {grads.chunks}, the parameters {p.chunks}: chunk them alike "
                "(grads.rechunk(params.chunks))"
            )
        return grads

    def state_dict(self):
        """The scalar state and hyperparameters as :meth:`fastadam.Adam.state_dict` gives
        them, and the state buffers (``"exp_avg"``...) as dask arrays."""
        out = _scalars(self._scalar.state_dict())
        out.update(self.state)
        return out

    def load_state_dict(self, state):
        """Load a :meth:`state_dict` (checked as strictly as :class:`fastadam.Adam` checks
        its own: knobs, hyperparameters, buffers and their chunks) before anything
        changes."""
        arrays = {n: state.get(n) for n in self._names}
        for name, a in arrays.items():
            if not isinstance(a, da.Array) or a.shape != self.params.shape:
                raise ValueError(f"state[{name!r}] must be a dask array of shape "
                                 f"{self.params.shape}")  # fmt: skip
            p = self.params
            if a.chunks != p.chunks or a.dtype != p.dtype:
                raise ValueError(f"state[{name!r}] must be chunked like the parameters, "
                                 f"{p.chunks}, with dtype {p.dtype}")  # fmt: skip
        scalar = self.optimizer(np.zeros(1, self.params.dtype), **self._hyper)
        rest = {k: v for k, v in state.items() if k not in arrays}
        scalar.load_state_dict(_with_stand_ins(rest, self._names, self.params.dtype))
        self._scalar = scalar
        self.state = {n: a.persist() for n, a in arrays.items()}

    def to_zarr(self, store):
        """Write the parameters, the state buffers and the scalar state to a zarr group."""
        import zarr

        group = zarr.open_group(store, mode="w")
        for name, a in {"params": self.params, **self.state}.items():
            a.to_zarr(store, component=name)
        group.attrs["fastadam"] = json.dumps(_jsonable(_scalars(self._scalar.state_dict())))

    @classmethod
    def from_zarr(cls, store, **hyperparameters):
        """An optimizer with the parameters and state written by :meth:`to_zarr` (chunked as
        stored), for the same hyperparameters (checked as :meth:`load_state_dict` does)."""
        import zarr

        group = zarr.open_group(store, mode="r")
        opt = cls(da.from_zarr(store, component="params"), **hyperparameters)
        state = {k: _from_json(v) for k, v in json.loads(group.attrs["fastadam"]).items()}
        state.update({n: da.from_zarr(store, component=n) for n in opt._names})
        opt.load_state_dict(state)
        return opt


def _warm(cls, params, hyper):
    """Compile here, before the tasks do (local workers then load them from numba's cache;
    concurrent first compiles into one cache can crash, numba issue 4807), the step of
    the chunks' sizes: serial, and parallel where a chunk reaches PARALLEL_MIN_SIZE."""
    sizes = {1}
    if max(max(c) for c in params.chunks) >= PARALLEL_MIN_SIZE:
        sizes.add(PARALLEL_MIN_SIZE)
    for n in sizes:
        cls(np.zeros(n, params.dtype), **hyper).step(np.zeros(n, params.dtype))


def _step_block(p, g, *buffers, cls, hyper, header, names):
    """One chunk's step, on one numba thread: ``cls`` on the chunk from the scalar state
    ``header`` and the chunk's buffers; returns the new parameters and buffers stacked."""
    p = np.array(p)  # (the chunk given to the task is not ours to write)
    opt = cls(p, **hyper)
    state = dict(header)
    state.update({n + ".0": np.array(b) for n, b in zip(names, buffers, strict=True)})
    opt.load_state_dict(state)
    with numba_threads(1):
        opt.step(np.ascontiguousarray(g))
    new = opt.state_dict()
    return np.stack([p, *(new[n + ".0"] for n in names)])


def _scalars(state):
    return {k: v for k, v in state.items() if not k.endswith(".0")}


def _with_stand_ins(state, names, dtype):
    """``state`` with a one-element buffer for each of ``names`` (to check the rest)."""
    return {**state, **{n + ".0": np.zeros(1, dtype) for n in names}}


def _jsonable(state):
    return {k: {"array": v.tolist(), "dtype": str(v.dtype)} if isinstance(v, np.ndarray)
            else v for k, v in state.items()}  # fmt: skip


def _from_json(v):
    if isinstance(v, dict) and set(v) == {"array", "dtype"}:
        return np.asarray(v["array"], dtype=v["dtype"])
    return v


def _make(cls):
    doc = f"""{cls.__name__} (:class:`fastadam.{cls.__name__}`) on a dask array of parameters:
    the state buffers chunked like them, one task per chunk and step, bitwise the same
    numbers as ``fastadam.{cls.__name__}`` on the gathered arrays. Hyperparameters as for
    ``fastadam.{cls.__name__}`` (``skip_nonfinite`` excepted)."""
    return type(cls.__name__, (_Sharded,), {"optimizer": cls, "__doc__": doc,
                                             "__module__": __name__})  # fmt: skip


Adam = _make(fa.Adam)
AdamW = _make(fa.AdamW)
RMSProp = _make(fa.RMSProp)
NAdam = _make(fa.NAdam)
