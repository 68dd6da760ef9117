r"""NAdam (Dozat): Adam with Nesterov momentum, in the conventions of PyTorch, Keras and
optax.

With a momentum schedule :math:`\mu_t = \beta_1 (1 - \tfrac12\, 0.96^{t\psi})` and its
running product :math:`P_t = \mu_1 \cdots \mu_t`, all three frameworks compute

.. math::

    \theta \leftarrow \theta - lr \left(\frac{\mu_{t+1}}{1 - P_{t+1}}\, m
        + \frac{1 - \mu_t}{1 - P_t}\, g\right) \Big/
        \left(\sqrt{v / (1 - \beta_2^t) + \epsilon_{root}} + \epsilon\right)

PyTorch's ``momentum_decay`` is :math:`\psi` (default 0.004), Keras uses :math:`\psi = 1`
(``0.96 ** t``), and optax has no schedule (:math:`\mu_t = \beta_1`, so that
:math:`P_t = \beta_1^t`: ``momentum_schedule=False``).
"""

from dataclasses import dataclass
from math import sqrt
from typing import Any, NamedTuple

from numba.extending import register_jitable

from ._math import check_step, weight_decay_terms
from ._spec import Algorithm

__all__ = [
    "NAdamCoefficients",
    "NAdamState",
    "Convention",
    "CONVENTIONS",
    "STATE",
    "rule",
    "coefficients",
    "cast",
    "buffers",
    "mu_product",
    "mu_product_before",
    "SPEC",
]


class NAdamState(NamedTuple):
    """The per-element state arrays of one parameter array, for the kernels; a buffer
    that these coefficients do not use (:func:`buffers`) may be an empty array."""

    #: first moment
    exp_avg: Any
    #: second moment
    exp_avg_sq: Any
    #: not used (pass an empty array)
    unused: Any


#: The names of the state buffers ``s0, s1, s2`` of :func:`rule`.
STATE = NAdamState._fields


class NAdamCoefficients(NamedTuple):
    """The values :func:`rule` needs at one step (from :func:`coefficients`)."""

    #: :math:`\beta_1`, :math:`1 - \beta_1`, :math:`\beta_2`, :math:`1 - \beta_2`
    beta1: float
    one_minus_beta1: float
    beta2: float
    one_minus_beta2: float
    #: ``lr * mu[t+1] / (1 - P[t+1])``: the weight of the first moment
    step_m: float
    #: ``lr * (1 - mu[t]) / (1 - P[t])``: the weight of the gradient
    step_g: float
    #: ``1 / (1 - beta2**t)``
    c2: float
    #: added inside / outside the square root
    eps_root: float
    eps: float
    #: coupled (L2) weight decay and the decoupled factor ``1 - lr * wd``
    l2: float
    wd_factor: float
    #: -1 to maximize, +1 to minimize
    sign: float
    #: :math:`P_t = \mu_1 \cdots \mu_t`, the ``mu_product`` to pass at step ``t + 1``
    mu_product: float


def rule(p, g, m, v, unused, c):
    r"""One NAdam step for one element.

    .. math::

        g &\leftarrow s\,g + \lambda_2\,\theta \\
        m &\leftarrow \beta_1 m + (1-\beta_1)\,g, \qquad
        v \leftarrow \beta_2 v + (1-\beta_2)\,g^2 \\
        \theta &\leftarrow f\,\theta - (a_m m + a_g g) / (\sqrt{c_2 v + \epsilon_{root}}
            + \epsilon)

    Parameters
    ----------
    p, g, m, v : float
        Parameter, gradient, first and second moments.
    unused : float
        Returned unchanged (the third state slot, which NAdam does not need).
    c : NAdamCoefficients
        This step's coefficients (:func:`coefficients`).

    Returns
    -------
    p, m, v, unused : float
        The updated values.
    """
    g = c.sign * g
    if c.l2 != 0:  # not 0 * p: an infinite parameter stays infinite, as in torch
        g = g + c.l2 * p
    m = c.beta1 * m + c.one_minus_beta1 * g
    v = c.beta2 * v + c.one_minus_beta2 * (g * g)
    d = sqrt(c.c2 * v + c.eps_root) + c.eps
    p = c.wd_factor * p - (c.step_m * m + c.step_g * g) / d
    return p, m, v, unused


@register_jitable
def _mu(t, beta1, momentum_decay, momentum_schedule):
    if momentum_schedule:
        return beta1 * (1.0 - 0.5 * 0.96 ** (float(t) * momentum_decay))
    return 1.0 * beta1


@register_jitable
def mu_product(t, beta1, momentum_decay, momentum_schedule):
    """:math:`P_t = \\mu_1 \\cdots \\mu_t` (1 for ``t = 0``), multiplied in order, as the
    frameworks accumulate it step by step."""
    product = 1.0
    for i in range(1, t + 1):
        product = product * _mu(i, beta1, momentum_decay, momentum_schedule)
    return product


@register_jitable
def mu_product_before(t, beta1, momentum_decay, momentum_schedule):
    """The ``mu_product`` argument of :func:`coefficients` at step ``t``: :math:`P_{t-1}`."""
    return mu_product(t - 1, beta1, momentum_decay, momentum_schedule)


def coefficients(
    t, lr, beta1, beta2, eps, eps_root, momentum_decay, weight_decay, decoupled_weight_decay,
    momentum_schedule, maximize, mu_product,
):  # fmt: skip
    r"""Fold NAdam's hyperparameters at step ``t`` into :class:`NAdamCoefficients` (float64).

    ``mu_product`` is :math:`P_{t-1}` (1 at ``t = 1``): the ``mu_product`` field of the
    previous step's coefficients (:func:`mu_product` computes it from scratch).

    This is the positional form compiled into the kernels; users build coefficients with
    :func:`fastadam.kernels.nadam_coefficients` (keywords, defaults, a convention name).
    """
    check_step(t)
    mu = _mu(t, beta1, momentum_decay, momentum_schedule)
    mu_next = _mu(t + 1, beta1, momentum_decay, momentum_schedule)
    product = mu_product * mu
    product_next = product * mu_next
    l2, wd_factor = weight_decay_terms(lr, weight_decay, decoupled_weight_decay)
    return NAdamCoefficients(
        1.0 * beta1, 1.0 - beta1, 1.0 * beta2, 1.0 - beta2,
        lr * mu_next / (1.0 - product_next), lr * (1.0 - mu) / (1.0 - product),
        1.0 / (1.0 - beta2 ** float(t)), 1.0 * eps_root, 1.0 * eps, l2, wd_factor,
        -1.0 if maximize else 1.0, product,
    )  # fmt: skip


def cast(c, f):
    """``c`` with its float fields converted by ``f`` (``np.float32`` or ``np.float64``)."""
    return NAdamCoefficients(
        f(c.beta1), f(c.one_minus_beta1), f(c.beta2), f(c.one_minus_beta2), f(c.step_m),
        f(c.step_g), f(c.c2), f(c.eps_root), f(c.eps), f(c.l2), f(c.wd_factor), f(c.sign),
        f(c.mu_product),
    )  # fmt: skip


def buffers(c):
    """``exp_avg_sq`` is always used; the third slot never."""
    return True, False


@dataclass(frozen=True)
class Convention:
    """How one framework defines NAdam.

    Attributes
    ----------
    name : str
        The convention's name.
    lr, beta1, beta2, eps, eps_root : float
        Defaults.
    momentum_decay : float
        :math:`\\psi` of the momentum schedule (PyTorch 0.004; Keras 1, i.e. ``0.96**t``).
    momentum_schedule : bool
        Knob: whether :math:`\\mu_t` follows the schedule (PyTorch, Keras) or is
        :math:`\\beta_1` (optax).
    decoupled_weight_decay : bool
        Knob: decoupled weight decay (Keras) or L2 (PyTorch's default, optax's ``nadam``).
    """

    name: str
    lr: float
    beta1: float
    beta2: float
    eps: float
    eps_root: float
    momentum_decay: float
    momentum_schedule: bool
    decoupled_weight_decay: bool


CONVENTIONS = {
    c.name: c
    for c in (
        Convention("pytorch", 2e-3, 0.9, 0.999, 1e-8, 0.0, 4e-3, True, False),
        Convention("keras", 1e-3, 0.9, 0.999, 1e-7, 0.0, 1.0, True, True),
        # optax has no schedule; momentum_decay is PyTorch's, for momentum_schedule=True
        Convention("optax", 1e-3, 0.9, 0.999, 1e-8, 0.0, 4e-3, False, False),
    )
}


def _validate(args, conv):
    if args["eps"] == 0 and args["eps_root"] == 0:
        raise ValueError(
            "eps=0 (with eps_root=0) divides by zero wherever a gradient element has "
            f"always been 0; use eps > 0 (convention {conv.name!r} default: {conv.eps:g})"
        )


SPEC = Algorithm(
    name="nadam",
    title="NAdam",
    Coefficients=NAdamCoefficients,
    rule=rule,
    coefficients=coefficients,
    cast=cast,
    buffers=buffers,
    arguments=(
        "lr",
        "beta1",
        "beta2",
        "eps",
        "eps_root",
        "momentum_decay",
        "weight_decay",
        "decoupled_weight_decay",
        "momentum_schedule",
        "maximize",
        "mu_product",
    ),  # fmt: skip
    checks=dict(
        lr="lr",
        beta1="beta",
        beta2="beta",
        eps="nonneg",
        eps_root="nonneg",
        momentum_decay="nonneg",
        weight_decay="nonneg",
        decoupled_weight_decay="bool",
        momentum_schedule="bool",
        maximize="bool",
    ),  # fmt: skip
    defaults=dict(weight_decay=0.0, maximize=False),
    State=NAdamState,
    conventions=CONVENTIONS,
    initial_state=lambda args, conv: (0.0, 0.0, 0.0),
    validate=_validate,
    carry={"mu_product": mu_product_before},
)
