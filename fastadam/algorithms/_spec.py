"""The record that describes one algorithm, and the keyword form of its coefficients."""

import dataclasses
from dataclasses import dataclass
from typing import Any

from .. import _validation as val


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: its math, its state and its conventions.

    Attributes
    ----------
    name : str
        Lower-case name (``"adam"``), the prefix of its kernels (``fastadam.kernels.adam``).
    title : str
        Display name (``"Adam"``).
    Coefficients : type
        NamedTuple of the rule's per-step values.
    rule, coefficients, cast, buffers : callable
        See :mod:`fastadam.algorithms`. ``coefficients`` takes ``t`` then, positionally,
        the fields named in ``arguments``.
    arguments : tuple of str
        The arguments of ``coefficients`` after ``t``: hyperparameters, then knobs.
    checks : dict
        For each argument, how it is validated: ``"lr"``, ``"beta"``, ``"nonneg"``,
        ``"decay"``, ``"real"`` or ``"bool"``.
    defaults : dict
        Defaults of the arguments that no convention sets.
    State : type
        NamedTuple of the three state arrays ``s0, s1, s2``; its fields name them.
    conventions : dict
        Name -> Convention (a frozen dataclass whose fields give defaults and knobs).
    initial_state : callable
        ``initial_state(args, convention) -> (v0, v1, v2)``: the buffers' initial values.
    validate : callable
        ``validate(args, convention)``: the checks that involve several arguments.
    state_arguments : tuple of str
        Further arguments that set the state's initial values, not the coefficients
        (RMSProp's ``initial_scale``).
    carry : dict
        Arguments of ``coefficients`` that are carried from one step to the next, each also
        a field of ``Coefficients`` holding the value for the next step (NAdam's running
        product of the momentum schedule): name -> a jitable function computing the value
        at step ``t`` from scratch, whose other parameters are named like arguments.
    """

    name: str
    title: str
    Coefficients: type
    rule: Any
    coefficients: Any
    cast: Any
    buffers: Any
    arguments: tuple
    checks: dict
    defaults: dict
    State: type
    conventions: dict
    initial_state: Any
    validate: Any
    state_arguments: tuple = ()
    carry: dict = dataclasses.field(default_factory=dict)

    def convention(self, name="pytorch"):
        """The Convention called ``name``; ValueError listing the valid names."""
        if not isinstance(name, str) or name not in self.conventions:
            raise ValueError(
                f"convention={name!r} is not a {self.title} convention; valid: "
                f"{list(self.conventions)}"
            )
        return self.conventions[name]

    def carry_parameters(self, name):
        """The arguments (besides ``t``) that the carried value ``name`` is computed from."""
        func = self.carry[name]
        code = getattr(func, "py_func", func).__code__
        return code.co_varnames[1 : code.co_argcount]

    def carry_from_scratch(self, name, t, args):
        """The carried value ``name`` at step ``t``, computed from the resolved ``args``."""
        return float(self.carry[name](t, *(args[p] for p in self.carry_parameters(name))))

    def resolve(self, convention="pytorch", **given):
        """All arguments of ``coefficients`` (after ``t``), validated: those given (None
        means "the default"), else the convention's, else the algorithm's default.

        Raises TypeError for an unknown keyword or a wrong type and ValueError for a value
        out of range or a combination the convention does not offer.
        """
        conv = self.convention(convention)
        names = tuple(n for n in self.arguments if n not in self.carry) + self.state_arguments
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise TypeError(
                f"{self.name}: unexpected keyword argument(s) {unknown}; valid keywords: "
                f"{', '.join(names)}, convention"
            )
        fields = {f.name for f in dataclasses.fields(conv)}
        args = {}
        for name in names:
            value = given.get(name)
            if value is None:
                value = getattr(conv, name) if name in fields else self.defaults[name]
            args[name] = check(self.checks[name], value, name)
        self.validate(args, conv)
        return args


def check(kind, value, name):
    """Validate one argument by its kind (see :attr:`Algorithm.checks`)."""
    if kind == "bool":
        return val.check_bool(value, name)
    if kind == "beta":
        return val.check_beta(value, name)
    if kind == "decay":
        return val.check_real(value, name, low=0.0, high=1.0, high_open=True)
    if kind == "lr":
        return val.check_lr(value)
    if kind == "nonneg":
        return val.check_real(value, name, low=0.0)
    return val.check_real(value, name)


def check_t(t):
    """The step number: an integer >= 1 (the first update is step 1)."""
    if isinstance(t, bool) or not isinstance(t, int) and not hasattr(t, "__index__"):
        raise TypeError(f"t must be an integer step number (1 for the first update), got {t!r}")
    if t < 1:
        raise ValueError(
            f"t must be >= 1 (the first update is step 1; in a loop use "
            f"`for t in range(1, n + 1)`), got {t}"
        )
    return int(t)
