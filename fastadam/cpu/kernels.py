"""CPU kernels compiled from :mod:`fastadam.algorithms`, for Python and for ``@njit`` code.

For each algorithm ``name`` in :data:`fastadam.algorithms.ALGORITHMS` (``adam``,
``rmsprop``, ``nadam``) this module has:

``name_coefficients(t, *, lr=None, ..., convention="pytorch")``
    The step's coefficients, a named record (``AdamCoefficients``...), from keywords with
    the convention's defaults; float64. Callable from Python and from ``@njit`` code (where
    ``convention`` must be a string constant). ``t`` starts at 1; ``t < 1`` raises
    ValueError.
``name_state(p, coef, **state_arguments)``
    New state arrays for parameter ``p`` (a named record, ``AdamState``...): the buffers
    ``coef`` uses, initialised as the convention says; the others empty.
``name(p, g, state, coef)`` and ``name_parallel(p, g, state, coef)``
    One step in place on a float32 or float64 C-contiguous array ``p`` (any shape), its
    gradient and its state, serial (SIMD) or over all numba threads (bitwise equal).
    Arguments are checked first: a wrong dtype, layout, size or record raises TypeError or
    ValueError naming it and nothing is written. From ``@njit`` code the types are
    checked when the caller compiles.
``name_update(p, g, s0, s1, s2, c)``
    The rule for one element, compiled (see :mod:`fastadam.algorithms`).

and :func:`cast_coefficients` converts a coefficient record to float32 or float64 (the
kernels do it themselves, to the arrays' dtype). Example, a user's compiled loop::

    @numba.njit
    def simulate(x, n_steps):
        g = np.empty_like(x)
        state = None
        for t in range(1, n_steps + 1):
            gradient(x, g)
            c = fastadam.kernels.adam_coefficients(t, lr=1e-2, convention="keras")
            fastadam.kernels.adam(x, g, state, c)
"""

import functools
import textwrap

import numba
import numpy as np
from numba.core import types
from numba.core.errors import TypingError
from numba.extending import overload

from .. import algorithms
from .._validation import FLOAT_DTYPES
from ..algorithms import cast_coefficients
from ..algorithms._spec import check_t
from .compile import jit
from .loops import PARALLEL_MIN_SIZE, all_finite, compile_loops

__all__ = ["cast_coefficients", "PARALLEL_MIN_SIZE", "all_finite"]

# numba 0.68 crashes (SIGSEGV) when it loads from its cache a user's function that calls a
# ``parallel=True`` function before numba's threads have started: start them now. The cost:
# with numba's GNU OpenMP layer a process forked after this cannot run parallel code
# (docs/numba.md: use the workqueue layer or another start method to fork).
numba.get_num_threads()


class Compiled:
    """One algorithm's compiled pieces: ``rule``, ``coefficients`` (positional),
    ``cast``, ``buffers``, and the loops of :mod:`fastadam.cpu.loops`: ``given_serial``
    (None for a buffer not used), ``serial`` and ``parallel`` (flat arrays, any float
    coefficient record), ``step`` and ``step_serial`` (the optimizers' one call per
    step)."""

    def __init__(self, spec):
        self.spec = spec
        self.rule = jit(spec.rule)
        self.coefficients = jit(spec.coefficients)
        self.cast = jit(spec.cast)
        self.buffers = jit(spec.buffers)
        self.given_serial, self.serial, self.parallel, self.step, self.step_serial = compile_loops(
            spec, self.rule, self.cast, self.buffers, self.coefficients
        )


#: name -> :class:`Compiled`, for every algorithm.
COMPILED = {name: Compiled(spec) for name, spec in algorithms.ALGORITHMS.items()}


# -- coefficients ---------------------------------------------------------------------------
def _host_coefficients(spec, t, convention, given):
    """The keyword form on the host: validated, defaults filled, float64."""
    t = check_t(t)
    carried = {name: given.pop(name) for name in spec.carry}
    try:
        # types in the key: True == 1 == 1.0 for a cache, not for the checks
        key = tuple((k, type(v), v) for k, v in given.items())
        args = dict(_resolved(spec.name, convention, key))
    except TypeError:  # an unhashable value: resolve (and refuse) it without the cache
        args = spec.resolve(convention, **given)
    if callable(args["lr"]):
        raise TypeError("lr must be a number here (evaluate a schedule at t first)")
    for name, value in carried.items():
        args[name] = spec.carry_from_scratch(name, t, args) if value is None else float(value)
    return spec.coefficients(t, *(args[name] for name in spec.arguments))


@functools.lru_cache(maxsize=256)
def _resolved(name, convention, items):
    """The validated arguments for hashable keywords (a loop calling a builder with the same
    hyperparameters at every step validates them once)."""
    given = {k: v for k, _, v in items}
    return tuple(algorithms.ALGORITHMS[name].resolve(convention, **given).items())


def _literal(value, name):
    if isinstance(value, types.StringLiteral):
        return value.literal_value
    if isinstance(value, types.Omitted):
        return value.value
    if isinstance(value, str):
        return value
    raise TypingError(f"{name} must be a string constant in compiled code, got {value}")


def _omitted(ty):
    return ty is None or isinstance(ty, (types.NoneType, types.Omitted))


def _coefficient_builder(compiled):
    """The public ``name_coefficients`` function and its ``@njit`` overload."""
    spec = compiled.spec
    keywords = list(spec.arguments)
    params = ", ".join(f"{n}=None" for n in keywords)
    signature = f"t, {params}, convention='pytorch'"
    namespace = dict(_host=_host_coefficients, spec=spec)
    given = ", ".join(f"{n}={n}" for n in keywords)
    exec(  # noqa: S102 - builds the explicit keyword signature numba's overload needs
        f"def {spec.name}_coefficients({signature}):\n"
        f"    return _host(spec, t, convention, dict({given}))\n",
        namespace,
    )
    builder = namespace[f"{spec.name}_coefficients"]
    builder.__module__ = __name__
    builder.__doc__ = _coefficients_doc(spec)

    def overload_impl(t, **kwargs):
        convention = _literal(kwargs.get("convention", "pytorch"), "convention")
        given = {n: kwargs.get(n) for n in keywords}
        constants = {n: None for n, ty in given.items() if _omitted(ty)}
        try:
            resolved = spec.resolve(
                convention, **{n: None for n in constants if n not in spec.carry}
            )
        except (TypeError, ValueError) as exc:
            raise TypingError(str(exc)) from None
        lines = []
        for name in keywords:
            if name in spec.carry and name in constants:  # computed from scratch
                values = [_value(p, given, resolved) for p in spec.carry_parameters(name)]
                lines.append(f"{name}_ = carry_{name}({', '.join(['t', *values])})")
            else:
                lines.append(f"{name}_ = {_value(name, given, resolved)}")
        body = "\n".join(lines)
        src = (
            f"def impl({signature}):\n{textwrap.indent(body, '    ')}\n"
            f"    return core(t, {', '.join(n + '_' for n in keywords)})\n"
        )
        ns = dict(core=compiled.coefficients)
        ns.update({f"carry_{n}": f for n, f in spec.carry.items()})  # register_jitable
        exec(src, ns)  # noqa: S102
        return ns["impl"]

    _overload_keywords(builder, overload_impl, keywords)
    return builder


def _value(name, given, resolved):
    return name if not _omitted(given[name]) else repr(resolved[name])


def _overload_keywords(builder, impl_factory, keywords):
    """Register ``impl_factory(t, **kwargs)`` as the ``@njit`` implementation of
    ``builder`` (whose keyword-only signature numba's overload needs spelled out)."""
    params = ", ".join(f"{n}=None" for n in keywords)
    ns = dict(factory=impl_factory)
    exec(  # noqa: S102
        f"def typer(t, {params}, convention='pytorch'):\n"
        f"    return factory(t, {', '.join(f'{n}={n}' for n in keywords)},"
        " convention=convention)\n",
        ns,
    )
    overload(builder, prefer_literal=True)(ns["typer"])


def _coefficients_doc(spec):
    conventions = ", ".join(repr(c) for c in spec.conventions)
    return f"""The coefficients of one {spec.title} step, a named record, from keywords.

    Parameters
    ----------
    t : int
        Step number, 1 for the first update (``t < 1`` raises ValueError, also in
        compiled code).
    {", ".join(spec.arguments)} : optional
        Hyperparameters and formula knobs (see :class:`fastadam.optimizers.{spec.title}`);
        None takes the convention's value or the default.
    convention : {{{conventions}}}, default 'pytorch'
        Whose definition and defaults to use (a string constant in ``@njit`` code).

    Returns
    -------
    {spec.Coefficients.__name__}
        float64 values; the kernels cast them to the arrays' dtype.
    """


# -- state ----------------------------------------------------------------------------------
def _state_builder(compiled):
    spec = compiled.spec

    def state(p, coef, **state_arguments):
        _check_array(p, "p", writeable=False)
        _check_record(coef, spec)
        args = spec.resolve(next(iter(spec.conventions)), **state_arguments)
        initial = spec.initial_state(args, None)
        used = (True, *compiled.spec.buffers(coef))
        return spec.State(*(
            np.full(p.shape, v, p.dtype) if u else np.empty(0, p.dtype)
            for u, v in zip(used, initial, strict=True)
        ))  # fmt: skip

    state.__name__ = state.__qualname__ = f"{spec.name}_state"
    state.__doc__ = f"""New {spec.title} state arrays for parameter array ``p``.

    Parameters
    ----------
    p : ndarray
        The parameters (float32 or float64).
    coef : {spec.Coefficients.__name__}
        Coefficients of the run (they say which buffers are used).
    **state_arguments
        {", ".join(spec.state_arguments) or "None for this algorithm"}.

    Returns
    -------
    {spec.State.__name__}
        Arrays shaped like ``p`` ({", ".join(spec.State._fields)}); unused ones empty.
    """
    return state


# -- array kernels --------------------------------------------------------------------------
def _check_array(x, name, writeable, dtype=None, size=None):
    """Check one array of a kernel call (``dtype``, ``size``: those of ``p``, if known)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(x).__name__}")
    if x.dtype != dtype:  # p's dtype is float32 or float64
        if x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
        if dtype is not None:
            raise TypeError(f"{name} has dtype {x.dtype} but p has dtype {dtype}; they must match")
    flags = x.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")
    if writeable and not flags.writeable:
        raise ValueError(f"{name} is read-only; the kernels update it in place")
    if size is not None and x.size != size:
        raise ValueError(f"{name} has {x.size} elements but p has {size}; they must match")
    return x if x.ndim == 1 else x.reshape(-1)


def _check_record(coef, spec):
    if not isinstance(coef, spec.Coefficients):
        raise TypeError(
            f"coef must be a {spec.Coefficients.__name__} (from "
            f"fastadam.kernels.{spec.name}_coefficients), got {type(coef).__name__}"
        )


def check_kernel_arguments(spec, p, g, state, coef):
    """Validate a kernel call; return the flat arrays ``(p, g, s0, s1, s2)``."""
    flat = [_check_array(p, "p", True), _check_array(g, "g", False, p.dtype, p.size)]
    if not isinstance(state, spec.State):
        raise TypeError(
            f"state must be a {spec.State.__name__} (from fastadam.kernels.{spec.name}_state),"
            f" got {type(state).__name__}"
        )
    _check_record(coef, spec)
    used = (True, *spec.buffers(coef))
    for name, buffer, use in zip(spec.State._fields, state, used, strict=True):
        flat.append(_check_array(buffer, f"state.{name}", True, p.dtype, p.size if use else None))
    return flat


def _array_kernel(compiled, loop, parallel):
    spec = compiled.spec

    def kernel(p, g, state, coef):
        loop(*check_kernel_arguments(spec, p, g, state, coef), coef)

    name = f"{spec.name}_parallel" if parallel else spec.name
    kernel.__name__ = kernel.__qualname__ = name
    kernel.__doc__ = f"""One {spec.title} step in place, {
        "over all numba threads" if parallel else "serial (SIMD)"
    }: :func:`fastadam.algorithms.{spec.name}.rule` per element.

    Parameters
    ----------
    p : ndarray
        Parameters, float32 or float64, C-contiguous, writeable, any shape.
    g : ndarray
        Gradient: same dtype and size.
    state : {spec.State.__name__}
        State arrays ({", ".join(spec.State._fields)}), same dtype and size; those the
        coefficients do not use may be empty (``{spec.name}_state`` makes them).
    coef : {spec.Coefficients.__name__}
        This step's coefficients (``{spec.name}_coefficients``), cast to ``p``'s dtype here.

    Raises
    ------
    TypeError, ValueError
        A wrong dtype, layout, size or record; nothing is written then.
    """
    _overload_kernel(kernel, compiled, loop)
    return kernel


def _overload_kernel(kernel, compiled, loop):
    spec = compiled.spec
    state_type = spec.State
    record = spec.Coefficients

    def typer(p, g, state, coef):
        for name, ty in (("p", p), ("g", g)):
            _require_array(ty, name, writeable=name == "p")
        if g.dtype != p.dtype:
            raise TypingError(f"g has dtype {g.dtype} but p has dtype {p.dtype}")
        if not (isinstance(state, types.BaseNamedTuple) and state.instance_class is state_type):
            raise TypingError(f"state must be a {state_type.__name__}, got {state}")
        for name, ty in zip(state_type._fields, state.types, strict=True):
            _require_array(ty, f"state.{name}", writeable=True)
            if ty.dtype != p.dtype:
                raise TypingError(f"state.{name} has dtype {ty.dtype} but p has {p.dtype}")
        if not (isinstance(coef, types.BaseNamedTuple) and coef.instance_class is record):
            raise TypingError(f"coef must be a {record.__name__}, got {coef}")

        def impl(p, g, state, coef):
            n = p.size
            use1, use2 = buffers(coef)
            if g.size != n:
                raise ValueError("g: size differs from p")
            if state[0].size != n or (use1 and state[1].size != n):
                raise ValueError("state: a buffer's size differs from p")
            if use2 and state[2].size != n:
                raise ValueError("state: a buffer's size differs from p")
            s1, s2 = state[1].reshape(state[1].size), state[2].reshape(state[2].size)
            loop(p.reshape(n), g.reshape(n), state[0].reshape(n), s1, s2, coef)

        return impl

    buffers = compiled.buffers
    overload(kernel)(typer)


def _require_array(ty, name, writeable):
    if not isinstance(ty, types.Array) or ty.dtype not in (types.float32, types.float64):
        raise TypingError(f"{name} must be a float32 or float64 array, got {ty}")
    if ty.layout != "C":
        raise TypingError(f"{name} must be a C-contiguous array (layout 'C'), got {ty}")
    if writeable and not ty.mutable:
        raise TypingError(f"{name} is read-only; the kernels update it in place")


# -- the cast --------------------------------------------------------------------------------
@overload(cast_coefficients)
def _cast_overload(coef, dtype):
    compiled = next(
        (c for c in COMPILED.values()
         if isinstance(coef, types.BaseNamedTuple) and coef.instance_class is c.spec.Coefficients),
        None,
    )  # fmt: skip
    if compiled is None:
        raise TypingError(f"coef must be a coefficient record, got {coef}")
    cast = compiled.cast

    def impl(coef, dtype):
        return cast(coef, dtype)

    return impl


# -- the public names ------------------------------------------------------------------------
for _name, _compiled in COMPILED.items():
    _spec = _compiled.spec
    _public = {
        f"{_name}_coefficients": _coefficient_builder(_compiled),
        f"{_name}_state": _state_builder(_compiled),
        _name: _array_kernel(_compiled, _compiled.serial, False),
        f"{_name}_parallel": _array_kernel(_compiled, _compiled.parallel, True),
        f"{_name}_update": _compiled.rule,
        _spec.Coefficients.__name__: _spec.Coefficients,
        _spec.State.__name__: _spec.State,
    }
    globals().update(_public)
    __all__ += list(_public)
del _name, _compiled, _spec, _public
