"""Optimizer objects: :class:`Adam`, :class:`AdamW`, :class:`RMSProp` and :class:`NAdam`.

Each is a thin class over one algorithm of :mod:`fastadam.algorithms`: it names the
keywords and their documentation; :class:`Optimizer` does the rest for all of them. An
optimizer owns the state arrays, folds the hyperparameters into coefficients once per step
(in float64, on the host) and calls the compiled loops once per dtype and parameter group.
Changing ``lr`` (or passing a schedule) never recompiles anything.
"""

import collections.abc
import copy
import dataclasses
import functools
import importlib
import threading
from typing import Any, NamedTuple

import numpy as np

from . import _validation as val
from .algorithms import adam as _adam
from .algorithms import nadam as _nadam
from .algorithms import rmsprop as _rmsprop

__all__ = ["Optimizer", "Adam", "AdamW", "RMSProp", "NAdam", "ParamGroup"]

#: keywords of every optimizer that are not hyperparameters of the algorithm
_RUN_KEYWORDS = ("convention", "skip_nonfinite", "stream", "mixed_precision")


class _Launch(NamedTuple):
    """The arrays of one group and dtype, and the function that steps them."""

    indices: list  # positions of the arrays among the optimizer's parameters
    arrays: tuple  # (params, s0s, s1s, s2s), tuples of flat arrays (None: not used)
    counters: Any  # the backend's skipped-step counters
    run: Any  # run(args, grads, t, skip_nonfinite) -> the value carried to the next step


class _Group:
    """One parameter group: the indices of its arrays, its resolved hyperparameters, the
    values carried from step to step, and (per dtype) the arrays each kernel call takes."""

    def __init__(self, indices, args, carry):
        self.indices = indices
        self.args = args
        self.carry = carry
        self.cached = None  # the coefficient arguments, while they stay the same
        self.launches = []  # a _Launch per dtype

    def arguments(self, spec, lr):
        """The positional arguments of ``spec.coefficients`` after ``t``."""
        values = dict(self.args, lr=lr, **self.carry)
        return tuple(values[name] for name in spec.arguments)


class ParamGroup(collections.abc.MutableMapping):
    """One parameter group of an optimizer, live, as the items of
    :attr:`Optimizer.param_groups` (torch's form): ``group["lr"] = 0.01`` sets that group's
    learning rate from the next step on, as a learning-rate scheduler for torch does.

    The keys are the algorithm's hyperparameters (for Adam ``beta1`` and ``beta2``, not
    ``betas``), its formula switches and ``params`` (the indices of the group's arrays). A
    numeric hyperparameter is validated as the constructor validates it; the formula
    switches (the same for every group) and ``params`` cannot be set, nor keys added or
    removed. A refused value changes nothing."""

    __slots__ = ("_opt", "_group")

    def __init__(self, opt, group):
        self._opt = opt
        self._group = group

    def __getitem__(self, key):
        if key == "params":
            return list(self._group.indices)
        return self._group.args[key]

    def __iter__(self):
        return iter([*self._group.args, "params"])

    def __len__(self):
        return len(self._group.args) + 1

    def __setitem__(self, key, value):
        self._opt._set_hyperparameter([self._group], key, value)

    def __delitem__(self, key):
        raise TypeError(f"the keys of a parameter group cannot be removed (got {key!r})")

    def __repr__(self):
        return f"ParamGroup({dict(self)!r})"


class Optimizer:
    """The machinery every optimizer shares: parameters and parameter groups, state arrays,
    validation, stepping, ``state_dict`` and copies. Subclasses set :attr:`algorithm` and
    translate their keywords with :meth:`_arguments`.

    Thread safety: :meth:`step`, :meth:`state_dict`, :meth:`load_state_dict` and setting
    :attr:`lr` hold a lock, so concurrent calls from several threads never lose or
    interleave a step.
    """

    #: The :class:`fastadam.algorithms.Algorithm` this optimizer runs.
    algorithm = None
    _decoupled_default = None

    def __init_subclass__(cls, **kwargs):
        # the algorithm's hyperparameters and formula switches as properties (opt.eps...)
        super().__init_subclass__(**kwargs)
        spec = cls.__dict__.get("algorithm")
        if spec is not None:
            for name in (*spec.arguments, *spec.state_arguments):
                if name not in spec.carry and not hasattr(cls, name):
                    setattr(cls, name, _hyperparameter(name))

    def __init__(self, params, *, convention="pytorch", skip_nonfinite=False, stream=None,
                 mixed_precision=False, **hyperparameters):  # fmt: skip
        spec = self.algorithm
        arrays, self._single, overrides = _split_groups(params)
        self._backend = _backend_for(arrays)
        self._mixed_precision = val.check_bool(mixed_precision, "mixed_precision")
        self._params, _ = self._backend.check_params(
            arrays[0] if self._single else arrays, self._mixed_precision
        )
        self._stream = self._backend.check_stream(stream)
        self._skip_nonfinite = val.check_bool(skip_nonfinite, "skip_nonfinite")
        self._convention_name = convention
        defaults = self._resolve(convention, self._arguments(hyperparameters))
        self._knobs = {n: v for n, v in defaults.items() if isinstance(v, bool)}
        self._groups = []
        start = 0
        for k, (count, override) in enumerate(overrides):
            given = self._arguments(override)
            fixed = sorted(n for n in given if n in self._knobs or n in spec.state_arguments)
            if fixed:
                raise ValueError(
                    f"params[{k}] sets {fixed}: formula switches are the same for every "
                    "group; only numeric hyperparameters (lr, weight_decay, ...) may differ"
                )
            args = self._resolve(convention, {**defaults, **given})
            args.update(self._knobs)
            self._groups.append(_Group(list(range(start, start + count)), args, {}))
            start += count
        for group in self._groups:
            group.carry = {
                name: spec.carry_from_scratch(name, 1, group.args) for name in spec.carry
            }
        self.t = 0
        self._lock = threading.Lock()
        self._allocate()
        self._prepare()

    # -- arguments ------------------------------------------------------------------------
    def _arguments(self, keywords):
        """Translate this class's keywords into the algorithm's argument names."""
        return dict(keywords)

    def _resolve(self, convention, given):
        """Validated arguments, the convention's defaults filled in (TypeError with this
        class's name for an unknown keyword)."""
        try:
            return self.algorithm.resolve(convention, **given)
        except TypeError as exc:
            if "unexpected keyword" not in str(exc):
                raise
            names = sorted(
                set(given) - set(self.algorithm.arguments + self.algorithm.state_arguments)
            )
            valid = ", ".join(self._keywords())
            raise TypeError(
                f"{type(self).__name__}() got unexpected keyword argument(s) {names}; valid "
                f"keywords: {valid}"
            ) from None

    @classmethod
    def _keywords(cls):
        code = cls.__init__.__code__
        names = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]
        return [n for n in names if n not in ("params", "unknown")]

    # -- state arrays ---------------------------------------------------------------------
    def _allocate(self):
        """The state buffers, per parameter: allocated where the group's coefficients use
        them (else None), with the convention's initial values."""
        spec, b = self.algorithm, self._backend
        conv = spec.convention(self._convention_name)
        self._state = {name: [None] * len(self._params) for name in spec.State._fields}
        for group in self._groups:
            used = _used_buffers(spec, group.args)
            initial = spec.initial_state(group.args, conv)
            for name, value in zip(spec.State._fields, initial, strict=True):
                if name in used:
                    for i in group.indices:
                        self._state[name][i] = b.full(self._params[i], value, self._stream)
        # a buffer no group uses is dropped; one some groups use is None for the others
        self._state = {k: v for k, v in self._state.items() if any(a is not None for a in v)}

    def _prepare(self):
        """Per group and dtype, the tuples of flat arrays each kernel call takes (None for
        a buffer the group does not use; another group may)."""
        b = self._backend
        self._steady = None  # the one call of a steady step, once known (see step)
        for group in self._groups:
            by_dtype = {}
            for i in group.indices:
                by_dtype.setdefault(b.kernel_dtype(self._params[i]), []).append(i)
            group.launches = []
            for idx in by_dtype.values():
                arrays = [tuple(b.flat(self._params[i]) for i in idx)]
                for name in self.algorithm.State._fields:
                    buffers = self._state.get(name)
                    used = buffers is not None and buffers[idx[0]] is not None
                    arrays.append(tuple(buffers[i] for i in idx) if used else None)
                counters = b.counters(len(idx))
                run = b.launcher(self.algorithm, tuple(arrays), counters, self._gather(idx),
                                 self._stream)  # fmt: skip
                group.launches.append(_Launch(idx, tuple(arrays), counters, run))

    def _gather(self, idx):
        """The function that picks this launch's gradients, as flat arrays, in a tuple."""
        flat = self._backend.flat
        if len(idx) < len(self._params):
            return lambda grads: tuple(flat(grads[i]) for i in idx)
        if all(p.ndim == 1 and flat(p) is p for p in self._params):
            return tuple  # all arrays, already flat
        return lambda grads: tuple(map(flat, grads))

    # -- hyperparameters ------------------------------------------------------------------
    @property
    def lr(self):
        """The learning rate (of the first group): a float, or a callable ``lr(t)``
        evaluated at every step. Setting it sets every group's."""
        return self._groups[0].args["lr"]

    @lr.setter
    def lr(self, value):
        self._set_hyperparameter(self._groups, "lr", value)

    @property
    def skip_nonfinite(self):
        """Whether a step leaves an array (and its state) untouched when its gradient holds
        a NaN or Inf, counting it in :attr:`nonfinite_skips`; a bool, settable."""
        return self._skip_nonfinite

    @skip_nonfinite.setter
    def skip_nonfinite(self, value):
        self._skip_nonfinite = val.check_bool(value, "skip_nonfinite")

    @property
    def param_groups(self):
        """Per group, its parameter indices and hyperparameters: a list of live
        :class:`ParamGroup` mappings (setting ``group["lr"]`` changes that group's)."""
        return [ParamGroup(self, group) for group in self._groups]

    def _set_hyperparameter(self, groups, key, value):
        """Set hyperparameter ``key`` of ``groups`` to ``value``: every group's new
        arguments are validated before any changes (see :class:`ParamGroup`)."""
        new = [self._group_arguments(group, key, value) for group in groups]
        with self._lock:  # not between a step's arguments and its bound call
            for group, args in zip(groups, new, strict=True):
                group.args = args
                group.cached = None
            self._steady = None

    def _group_arguments(self, group, key, value):
        """``group``'s arguments with ``key`` set to ``value``, validated."""
        name = type(self).__name__
        if key == "params":
            raise ValueError(f"the arrays of a {name} parameter group are fixed ('params')")
        if key in self._knobs:
            raise ValueError(
                f"{key!r} is a formula switch, the same for every group; it cannot be set "
                "(make a new optimizer to change it)"
            )
        if key in self.algorithm.state_arguments:
            raise ValueError(f"{key!r} sets the initial state: it is used at construction only")
        if key not in group.args:
            raise TypeError(
                f"{name} parameter groups have no {key!r}; they hold: "
                + ", ".join([*group.args, "params"])
            )
        args = self._resolve(self._convention_name, {**group.args, key: value})
        args.update(self._knobs)
        needed, kept = (
            _used_buffers(self.algorithm, args),
            _used_buffers(self.algorithm, group.args),
        )
        if needed != kept:
            raise ValueError(
                f"{key}={value!r} uses the state buffers {sorted(needed)}; this group keeps "
                f"{sorted(kept)} (chosen at construction: give the value there)"
            )
        return args

    @property
    def convention(self):
        """The resolved convention, with the knobs this optimizer sets."""
        conv = self.algorithm.convention(self._convention_name)
        names = {f.name for f in dataclasses.fields(conv)}
        return dataclasses.replace(conv, **{k: v for k, v in self._knobs.items() if k in names})

    @property
    def nonfinite_skips(self):
        """Per parameter array, the number of steps skipped for a non-finite gradient."""
        out = np.zeros(len(self._params), dtype=np.int64)
        for group in self._groups:
            for idx, _, counters, _ in group.launches:
                out[idx] = self._backend.to_numpy(counters)
        return out

    @property
    def params(self):
        """The parameter arrays (updated in place): one array or a list, as passed."""
        return self._params[0] if self._single else list(self._params)

    # -- stepping -------------------------------------------------------------------------
    def step(self, grads):
        """Apply one update in place.

        Parameters
        ----------
        grads : ndarray or list of ndarray
            Same structure, shapes and dtypes as ``params`` (for parameter groups: one
            gradient per array, in the order of the groups).

        Raises
        ------
        TypeError, ValueError
            Mismatched or invalid gradients, or a schedule returning an invalid ``lr``;
            nothing is written in that case.
        """
        grads = self._backend.check_grads(grads, self._params, self._single)
        lock = self._lock
        lock.acquire()  # not ``with``: half the cost, on a path of a few microseconds
        try:
            t = self.t + 1
            if self._steady is not None:
                self._steady(grads, t, self._skip_nonfinite)
            else:
                self._step_groups(grads, t)
            self.t = t
        finally:
            lock.release()

    def _step_groups(self, grads, t):
        """Step every group and launch; then keep, as :attr:`_steady`, the one call a step
        makes while nothing changes (one group and one launch, fixed coefficient arguments),
        so that the next steps skip this bookkeeping."""
        groups = self._groups
        args = [  # all groups' before any write: a schedule may raise
            g.cached if g.cached is not None else self._step_arguments(g, t) for g in groups
        ]
        for group, group_args in zip(groups, args, strict=True):
            for launch in group.launches:
                carried = launch.run(group_args, grads, t, self._skip_nonfinite)
            if group.carry:
                group.carry = dict.fromkeys(group.carry, carried)
        first = groups[0]
        if len(groups) == 1 and len(first.launches) == 1 and first.cached is not None:
            self._steady = functools.partial(first.launches[0].run, first.cached)

    def _step_arguments(self, group, t):
        """The group's coefficient arguments at step ``t``: built once, and again only where
        a schedule or a carried value changes them."""
        lr = group.args["lr"]
        if callable(lr) or group.carry:
            return group.arguments(self.algorithm, val.lr_at(lr, t))
        group.cached = group.arguments(self.algorithm, lr)
        return group.cached

    # -- state ----------------------------------------------------------------------------
    def state_dict(self):
        """The optimizer's state and hyperparameters, as a flat dict of numpy arrays and
        Python scalars.

        It can be saved with ``np.savez(file, **opt.state_dict())`` and restored with
        ``opt.load_state_dict(np.load(file))``. Keys: ``optimizer``, ``algorithm``,
        ``convention``, ``t``, ``nonfinite_skips``; ``knob/<name>`` for each formula switch;
        ``group/<k>/<name>`` for each group's hyperparameters (``lr`` is ``"schedule"`` for
        a schedule, which is not saved) and ``group/<k>/params``; ``carry/<k>/<name>``; and
        ``<buffer>.<i>`` for each state buffer and parameter array (copies, shaped and typed
        like the parameters).
        """
        with self._lock:
            out = {
                "optimizer": type(self).__name__,
                "algorithm": self.algorithm.name,
                "convention": self._convention_name,
                "t": int(self.t),
                "nonfinite_skips": self.nonfinite_skips,
            }
            out.update({f"knob/{k}": v for k, v in self._knobs.items()})
            for k, group in enumerate(self._groups):
                out[f"group/{k}/params"] = np.asarray(group.indices, dtype=np.int64)
                for name, value in group.args.items():
                    if name not in self._knobs:
                        out[f"group/{k}/{name}"] = _SCHEDULE if callable(value) else value
                out.update({f"carry/{k}/{n}": v for n, v in group.carry.items()})
            for name, buffers in self._state.items():
                for i, (buf, p) in enumerate(zip(buffers, self._params, strict=True)):
                    if buf is not None:  # (None: the parameter's group does not use it)
                        out[f"{name}.{i}"] = self._backend.to_param_layout(buf, p)
            return out

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict`: state arrays, step count and hyperparameters; the
        resumed run is bitwise identical.

        Everything is checked before anything is changed: the optimizer class, algorithm,
        convention and formula switches must be this optimizer's; the groups must hold the
        same arrays; hyperparameters are validated as the constructor validates them; the
        buffers must have this optimizer's shapes and dtypes.

        Raises
        ------
        ValueError, TypeError
            The state does not fit this optimizer; nothing is changed in that case.
        """
        with self._lock:
            loaded = _checked_state(self, state)
            for (name, i), value in loaded["buffers"].items():
                self._backend.assign(self._state[name][i], value)
            for group, args, carry in zip(self._groups, loaded["args"], loaded["carry"],
                                          strict=True):  # fmt: skip
                group.args, group.carry, group.cached = args, carry, None
                for idx, _, counters, _ in group.launches:
                    self._backend.assign(counters, loaded["skips"][idx])
            self._steady = None
            self.t = loaded["t"]

    # -- copies ---------------------------------------------------------------------------
    def __getstate__(self):
        with self._lock:
            out = dict(self.__dict__)
        for key in ("_lock", "_backend", "_steady"):
            out.pop(key)
        out["_skips"] = self.nonfinite_skips
        out["_groups"] = [_Group(g.indices, dict(g.args), dict(g.carry)) for g in self._groups]
        return out

    def __setstate__(self, state):
        skips = state.pop("_skips")
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self._backend = _backend_for(self._params)
        self._prepare()
        for group in self._groups:
            for idx, _, counters, _ in group.launches:
                self._backend.assign(counters, skips[idx])

    def __deepcopy__(self, memo):
        new = object.__new__(type(self))
        memo[id(self)] = new
        new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
        return new

    def __repr__(self):
        sizes = ", ".join(f"{p.dtype}{list(p.shape)}" for p in self._params)
        return (
            f"{type(self).__name__}(convention={self._convention_name!r}, lr={self.lr!r}, "
            f"t={self.t}, params=[{sizes}])"
        )


#: what ``state_dict`` saves in place of a learning-rate schedule
_SCHEDULE = "schedule"


def _hyperparameter(name):
    """The property ``name``: the first group's value; setting it sets every group's (a new
    attribute would be ignored by the steps), checked as :class:`ParamGroup` checks it."""

    def get(self):
        return self._groups[0].args[name]

    def set_(self, value):
        self._set_hyperparameter(self._groups, name, value)

    return property(get, set_, doc=f"``{name}`` of the first parameter group; setting it "
                    "sets every group's.")  # fmt: skip


def _lr_value(lr):
    return 0.0 if callable(lr) else lr


def _used_buffers(spec, args):
    """The state buffers that coefficients from ``args`` read and write."""
    values = dict(args, lr=_lr_value(args["lr"]))
    values.update({name: 1.0 for name in spec.carry})
    coef = spec.coefficients(1, *(values[name] for name in spec.arguments))
    used = (True, *spec.buffers(coef))
    return {name for name, use in zip(spec.State._fields, used, strict=True) if use}


def _check_buffers(opt, group, args, k):
    """Loaded hyperparameters must use the buffers this optimizer keeps for the group (a
    momentum of 0 has no momentum buffer), or the kernels would read the wrong array."""
    needed, kept = _used_buffers(opt.algorithm, args), _used_buffers(opt.algorithm, group.args)
    if needed != kept:
        raise ValueError(
            f"state's group {k} hyperparameters use the state buffers {sorted(needed)}, this "
            f"optimizer keeps {sorted(kept)}; create it with the same options to resume"
        )


def _checked_state(opt, state):
    """Everything :meth:`Optimizer.load_state_dict` will write, validated."""

    def scalar(key):
        if key not in state:
            raise ValueError(
                f"state is missing {key!r}; was it made by state_dict() of this fastadam?"
            )
        value = state[key]
        return value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value

    spec = opt.algorithm
    for key, mine in (("optimizer", type(opt).__name__), ("algorithm", spec.name),
                      ("convention", opt._convention_name)):  # fmt: skip
        if scalar(key) != mine:
            raise ValueError(
                f"state comes from {key} {scalar(key)!r}, this optimizer's is {mine!r}"
            )
    for name, mine in opt._knobs.items():
        if scalar(f"knob/{name}") != mine:
            raise ValueError(
                f"state was made with {name}={scalar(f'knob/{name}')!r} but this optimizer has "
                f"{name}={mine!r}: a different formula; create the optimizer with the same "
                "options to resume"
            )
    t = scalar("t")
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
        raise ValueError(f"state['t'] must be a non-negative integer, got {t!r}")
    args_list, carry_list = [], []
    for k, group in enumerate(opt._groups):
        indices = np.asarray(scalar(f"group/{k}/params"))
        if indices.tolist() != group.indices:
            raise ValueError(
                f"state's group {k} holds arrays {indices.tolist()}, not {group.indices}"
            )
        given = {n: scalar(f"group/{k}/{n}") for n in group.args if n not in opt._knobs}
        given = {n: v.item() if isinstance(v, np.generic) else v for n, v in given.items()}
        lr = given.pop("lr")
        if isinstance(lr, str) and lr == _SCHEDULE:
            if not callable(group.args["lr"]):
                raise ValueError("state's lr was a schedule (not saved); set opt.lr to it first")
            lr = group.args["lr"]
        args = opt._resolve(opt._convention_name, {**given, **opt._knobs})
        args["lr"] = val.check_lr(lr)
        _check_buffers(opt, group, args, k)
        args_list.append(args)
        carry_list.append({n: float(scalar(f"carry/{k}/{n}")) for n in group.carry})
    expected = {f"{n}.{i}" for n, bufs in opt._state.items() for i, b in enumerate(bufs)
                if b is not None}  # fmt: skip
    given = {k for k in state if "/" not in k and "." in k}
    if given != expected:
        raise ValueError(
            f"state buffers do not match this optimizer: missing {sorted(expected - given)}, "
            f"unexpected {sorted(given - expected)}"
        )
    buffers = {}
    for key in expected:
        name, i = key.split(".")
        a, p = np.asarray(state[key]), opt._params[int(i)]
        dtype = opt._backend.layout_dtype(p)
        if a.shape != p.shape or a.dtype != dtype:
            raise ValueError(
                f"state[{key!r}] is {a.dtype} {a.shape}; this optimizer's buffer for parameter "
                f"{i} is {dtype} {p.shape}"
            )
        buffers[name, int(i)] = a
    skips = np.asarray(state.get("nonfinite_skips", np.zeros(len(opt._params), np.int64)))
    if skips.shape != (len(opt._params),) or skips.dtype.kind not in "iu" or (skips < 0).any():
        raise ValueError(
            f"state['nonfinite_skips'] must hold {len(opt._params)} non-negative integers"
        )
    return dict(t=int(t), args=args_list, carry=carry_list, buffers=buffers, skips=skips)


def _split_groups(params):
    """``(arrays, single, [(count, overrides)])`` for one array, a list of arrays, or a list
    of parameter groups (dicts with ``"params"`` and hyperparameters, as in torch.optim)."""
    if isinstance(params, (list, tuple)) and params and all(isinstance(g, dict) for g in params):
        arrays, groups = [], []
        for k, group in enumerate(params):
            if "params" not in group:
                raise ValueError(f"params[{k}] is a parameter group without a 'params' key")
            members = group["params"]
            members = list(members) if isinstance(members, (list, tuple)) else [members]
            if not members:
                raise ValueError(f"params[{k}]['params'] is empty")
            arrays += members
            groups.append((len(members), {n: v for n, v in group.items() if n != "params"}))
        return arrays, False, groups
    if isinstance(params, (list, tuple)):
        if any(isinstance(g, dict) for g in params):
            raise TypeError("params mixes arrays and parameter groups (dicts); use one kind")
        return list(params), False, [(len(params), {})]
    return [params], True, [(1, {})]


def is_cuda_array(x):
    """Whether ``x`` is a CUDA array (it exports ``__cuda_array_interface__``, or is an
    array of numba's CUDA simulator)."""
    return not isinstance(x, np.ndarray) and (
        hasattr(x, "__cuda_array_interface__") or type(x).__module__.startswith("numba.cuda")
    )


def cuda_module(name):
    """``fastadam.cuda.<name>``, or ImportError saying what to install."""
    try:
        importlib.import_module("fastadam.cuda")  # (an ImportError where it is blocked)
        return importlib.import_module(f"fastadam.cuda.{name}")
    except ImportError as exc:
        raise ImportError(
            f"CUDA arrays need numba-cuda: pip install 'fastadam[cuda]' (import failed: {exc})"
        ) from exc


def _backend_for(params):
    """The CPU backend for numpy arrays, the GPU backend for CUDA arrays."""
    first = params[0] if params else None
    if is_cuda_array(first):
        return cuda_module("backend")
    from .cpu import backend

    return backend


class Adam(Optimizer):
    r"""Adam, in place, in the definition of a named framework.

    With :math:`g_t` the gradient (sign-flipped if ``maximize``, plus :math:`wd\,\theta` for
    L2 weight decay):

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - lr \cdot \frac{m_t/(1-\beta_1^t)}
                   {\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
        \quad \text{(pytorch, optax: Kingma \& Ba, Algorithm 1)}\\
        \theta_t &= \theta_{t-1} - lr\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\cdot
                   \frac{m_t}{\sqrt{v_t} + \epsilon}
        \quad \text{(keras, tf1: the epsilon-hat form)}

    The factor :math:`\sqrt{1-\beta_2^t}/(1-\beta_1^t)` is a bias correction applied inside
    each step, not a decay of ``lr``. AMSGrad uses :math:`\max(v_{max}, v_t)` (optax: of
    the bias-corrected :math:`\hat v_t`) in place of :math:`v_t`; decoupled weight decay
    multiplies :math:`\theta` by :math:`1 - lr\cdot wd` first.

    Parameters
    ----------
    params : ndarray, list of ndarray, or list of dict
        float32 or float64 (or complex64/complex128: real and imaginary parts are updated as
        independent reals, as in torch), C-contiguous, writeable; updated in place by
        :meth:`step`. A list of dicts gives parameter groups as in torch.optim:
        ``[{"params": [w1, w2]}, {"params": [b], "lr": 1e-2, "weight_decay": 0.0}]``, each
        with its own hyperparameters (the keywords below are their defaults).
    lr : float or callable, optional
        Learning rate, or a schedule ``lr(t) -> float`` with ``t`` starting at 1.
    betas : (float, float), optional
        :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float, optional
        :math:`\epsilon` >= 0 (0 only together with ``eps_root > 0``).
    weight_decay : float, default 0
        Weight decay, L2 or decoupled as ``decoupled_weight_decay`` says.
    decoupled_weight_decay : bool, optional
        Decoupled (AdamW-style) weight decay; default from the convention (Keras: yes).
    amsgrad : bool, default False
        AMSGrad variant.
    maximize : bool, default False
        Maximize instead of minimize.
    eps_root : float, optional
        Added to :math:`\hat v` inside the square root (optax's ``eps_root``), default 0.
    bias_correction : bool, optional
        Set False to use :math:`m_t/(\sqrt{v_t}+\epsilon)` without the bias corrections.
    convention : {'pytorch', 'keras', 'tf1', 'optax'}, default 'pytorch'
        Whose definition to reproduce; supplies every default left as None.
    skip_nonfinite : bool, default False
        If True, an array whose gradient contains NaN or Inf is left unchanged for that
        step and counted in ``nonfinite_skips``; by default NaN/Inf propagate as in every
        framework. The step count ``t`` (and so the bias correction) advances either way.
    stream : numba CUDA stream, optional
        CUDA arrays only: the stream the kernels are launched on (default stream if None).
    mixed_precision : bool, default False
        CUDA arrays only: accept float16 parameters and gradients, with float32 state and
        float32 arithmetic (the state is never kept in half precision).
    eps_hat, amsgrad_corrected : bool, optional
        Convention knobs, see :class:`fastadam.algorithms.adam.Convention`.

    Attributes
    ----------
    t : int
        Steps taken.
    convention : Convention
        The resolved convention (knobs included).
    nonfinite_skips : ndarray of int64
        Per array, the number of steps skipped for a non-finite gradient.
    param_groups : list of ParamGroup
        Each group's arrays (indices) and hyperparameters, live (``group["lr"] = ...``).

    Examples
    --------
    >>> import numpy as np, fastadam as fa
    >>> x = np.array([1.0, -2.0])
    >>> opt = fa.Adam(x, lr=0.1)
    >>> opt.step(2 * x)            # gradient of sum(x**2)
    >>> x                           # the first Adam step moves each element by lr
    array([ 0.9, -1.9])
    """

    algorithm = _adam.SPEC

    def __init__(
        self, params, lr=None, betas=None, eps=None, *, weight_decay=None,
        decoupled_weight_decay=None, amsgrad=False, maximize=False, eps_root=None,
        bias_correction=None, convention="pytorch", skip_nonfinite=False, stream=None,
        mixed_precision=False, eps_hat=None, amsgrad_corrected=None, **unknown,
    ):  # fmt: skip
        conv = self.algorithm.convention(convention)
        if self._decoupled_default and not conv.has_weight_decay:
            raise ValueError(
                f"convention {conv.name!r} has no weight decay (so no AdamW); use 'keras' for "
                "the same epsilon-hat formula with decoupled decay"
            )
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled_default
        if weight_decay is None and self._decoupled_default:
            weight_decay = conv.adamw_weight_decay
        super().__init__(
            params, convention=convention, skip_nonfinite=skip_nonfinite, stream=stream,
            mixed_precision=mixed_precision, lr=lr, betas=betas, eps=eps,
            weight_decay=weight_decay, decoupled_weight_decay=decoupled_weight_decay,
            amsgrad=amsgrad, maximize=maximize, eps_root=eps_root,
            bias_correction=bias_correction, eps_hat=eps_hat,
            amsgrad_corrected=amsgrad_corrected, **unknown,
        )  # fmt: skip

    def _arguments(self, keywords):
        out = dict(keywords)
        if "betas" in out:
            out.update(_betas(out.pop("betas")))
        return out

    @property
    def betas(self):
        """:math:`(\\beta_1, \\beta_2)` of the first group."""
        args = self._groups[0].args
        return args["beta1"], args["beta2"]


def _betas(betas):
    if betas is None:
        return {}
    if not isinstance(betas, (tuple, list, np.ndarray)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return {"beta1": betas[0], "beta2": betas[1]}


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter).

    Same as :class:`Adam` with ``decoupled_weight_decay=True``: each step first scales
    :math:`\theta \leftarrow \theta\,(1 - lr\cdot wd)`, then applies the Adam update to the
    undecayed gradient. ``weight_decay`` defaults to the convention's AdamW default
    (pytorch 1e-2, keras 4e-3, optax 1e-4).

    Parameters
    ----------
    params, lr, betas, eps
        As for :class:`Adam`.
    weight_decay : float, optional
        Decoupled weight decay; default: the convention's AdamW default.
    **kwargs
        Every other keyword of :class:`Adam` (``amsgrad``, ``maximize``, ``eps_root``,
        ``bias_correction``, ``convention``, ``skip_nonfinite``, ``stream``,
        ``mixed_precision`` and the convention knobs).
    """

    _decoupled_default = True


class RMSProp(Optimizer):
    r"""RMSProp, in place, in the definition of a named framework.

    .. math::

        v_t &= \rho\,v_{t-1} + (1-\rho)\,g_t^2 \qquad
        \bar g_t = \rho\,\bar g_{t-1} + (1-\rho)\,g_t \;\text{(centered)}\\
        D_t &= \sqrt{v_t - \bar g_t^2} + \epsilon \;\text{(pytorch, basic)} \quad\text{or}\quad
               \sqrt{v_t - \bar g_t^2 + \epsilon} \;\text{(keras, tf1, optax)}\\
        \theta_t &= \theta_{t-1} - lr\, g_t / D_t \quad\text{(no momentum)}

    (without centering :math:`\bar g = 0`). With momentum :math:`\mu > 0` PyTorch keeps
    ``lr`` outside the buffer, :math:`b_t = \mu b_{t-1} + g_t/D_t`,
    :math:`\theta_t = \theta_{t-1} - lr\,b_t`, while Keras, TF1 and optax accumulate
    :math:`b_t = \mu b_{t-1} + lr\,g_t/D_t`, :math:`\theta_t = \theta_{t-1} - b_t`. TF1
    starts :math:`v` at 1; optax can bias-correct the moments by :math:`1/(1-\rho^t)`.
    A centered variance that rounds below 0 is clamped at 0.

    Parameters
    ----------
    params : ndarray, list of ndarray, or list of dict
        As for :class:`Adam` (parameter groups may set ``lr``, ``decay``, ``eps``,
        ``momentum``, ``weight_decay``).
    lr : float or callable, optional
        Learning rate, or a schedule ``lr(t) -> float`` (``t`` from 1).
    decay : float, optional
        :math:`\rho` in [0, 1) (PyTorch's ``alpha``, Keras' ``rho``).
    eps : float, optional
        :math:`\epsilon` >= 0 (0 only with ``initial_scale > 0`` and no centering).
    momentum : float, default 0
        :math:`\mu` >= 0; a momentum buffer is kept only when it is > 0.
    centered : bool, default False
        Divide by the estimated standard deviation instead of the root mean square.
    weight_decay : float, default 0
        L2 (pytorch, optax) or decoupled (keras) weight decay.
    maximize : bool, default False
        Maximize instead of minimize.
    convention : {'pytorch', 'keras', 'tf1', 'optax', 'basic'}, default 'pytorch'
        Whose definition to reproduce; supplies every default left as None.
    skip_nonfinite, stream, mixed_precision
        As for :class:`Adam`.
    eps_in_sqrt, lr_in_momentum, initial_scale, bias_correction, nesterov, decoupled_weight_decay
        Convention knobs: see :class:`fastadam.algorithms.rmsprop.Convention`
        (``nesterov`` changes nothing without momentum, as in optax).
    """

    algorithm = _rmsprop.SPEC

    def __init__(
        self, params, lr=None, decay=None, eps=None, *, momentum=None, centered=None,
        weight_decay=None, maximize=None, convention="pytorch", skip_nonfinite=False,
        stream=None, mixed_precision=False, eps_in_sqrt=None, lr_in_momentum=None,
        initial_scale=None, bias_correction=None, nesterov=None, decoupled_weight_decay=None,
        **unknown,
    ):  # fmt: skip
        super().__init__(
            params, convention=convention, skip_nonfinite=skip_nonfinite, stream=stream,
            mixed_precision=mixed_precision, lr=lr, decay=decay, eps=eps, momentum=momentum,
            centered=centered, weight_decay=weight_decay, maximize=maximize,
            eps_in_sqrt=eps_in_sqrt, lr_in_momentum=lr_in_momentum,
            initial_scale=initial_scale, bias_correction=bias_correction, nesterov=nesterov,
            decoupled_weight_decay=decoupled_weight_decay, **unknown,
        )  # fmt: skip


class NAdam(Optimizer):
    r"""NAdam (Dozat, "Incorporating Nesterov Momentum into Adam"), in place, in the
    definition of PyTorch, Keras or optax.

    With the momentum schedule :math:`\mu_t = \beta_1(1 - \tfrac12\,0.96^{t\psi})` and
    :math:`P_t = \mu_1\cdots\mu_t`:

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
        \theta_t &= \theta_{t-1} - lr\left(\frac{\mu_{t+1}\,m_t}{1 - P_{t+1}}
            + \frac{(1-\mu_t)\,g_t}{1 - P_t}\right) \Big/
            \left(\sqrt{v_t/(1-\beta_2^t)} + \epsilon\right)

    PyTorch (``torch.optim.NAdam``): :math:`\psi` = ``momentum_decay`` = 0.004, L2 weight
    decay unless ``decoupled_weight_decay``; Keras (``keras.optimizers.Nadam``):
    :math:`\psi = 1`, decoupled weight decay; optax (``optax.nadam``): no schedule,
    :math:`\mu_t = \beta_1`.

    Parameters
    ----------
    params : ndarray, list of ndarray, or list of dict
        As for :class:`Adam`.
    lr : float or callable, optional
        Learning rate (PyTorch's default 2e-3; Keras and optax 1e-3) or a schedule.
    betas : (float, float), optional
        :math:`(\beta_1, \beta_2)`, each in [0, 1).
    eps : float, optional
        :math:`\epsilon` (PyTorch and optax 1e-8, Keras 1e-7).
    weight_decay : float, default 0
        Weight decay, L2 or decoupled as ``decoupled_weight_decay`` says.
    momentum_decay : float, optional
        :math:`\psi` (PyTorch 0.004, Keras 1).
    decoupled_weight_decay : bool, optional
        Decoupled weight decay; default from the convention (Keras: yes).
    maximize : bool, default False
        Maximize instead of minimize.
    eps_root : float, optional
        Added inside the square root (optax's ``eps_root``), default 0.
    momentum_schedule : bool, optional
        Knob: follow the schedule (PyTorch, Keras) or keep :math:`\mu_t = \beta_1` (optax).
    convention : {'pytorch', 'keras', 'optax'}, default 'pytorch'
        Whose definition to reproduce; supplies every default left as None.
    skip_nonfinite, stream, mixed_precision
        As for :class:`Adam`.

    Examples
    --------
    >>> import numpy as np, fastadam as fa
    >>> x = np.array([1.0, -2.0])
    >>> opt = fa.NAdam(x, lr=0.1, convention="optax")
    >>> for _ in range(3):
    ...     opt.step(2 * x)
    >>> bool(np.all(np.abs(x) < [1.0, 2.0]))
    True
    """

    algorithm = _nadam.SPEC

    def __init__(
        self, params, lr=None, betas=None, eps=None, *, weight_decay=None,
        momentum_decay=None, decoupled_weight_decay=None, maximize=None, eps_root=None,
        momentum_schedule=None, convention="pytorch", skip_nonfinite=False, stream=None,
        mixed_precision=False, **unknown,
    ):  # fmt: skip
        super().__init__(
            params, convention=convention, skip_nonfinite=skip_nonfinite, stream=stream,
            mixed_precision=mixed_precision, lr=lr, betas=betas, eps=eps,
            weight_decay=weight_decay, momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay, maximize=maximize,
            eps_root=eps_root, momentum_schedule=momentum_schedule, **unknown,
        )  # fmt: skip

    _arguments = Adam._arguments
    betas = Adam.betas
