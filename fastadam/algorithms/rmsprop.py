"""RMSProp (Hinton), with momentum, centering, Nesterov and weight decay, in every
convention."""

from dataclasses import dataclass
from math import sqrt
from typing import Any, NamedTuple

from ._math import check_step, weight_decay_terms
from ._spec import Algorithm

__all__ = [
    "RMSPropCoefficients",
    "RMSPropState",
    "Convention",
    "CONVENTIONS",
    "STATE",
    "rule",
    "coefficients",
    "cast",
    "buffers",
    "SPEC",
]


class RMSPropState(NamedTuple):
    """The per-element state arrays of one parameter array, for the kernels; a buffer
    that these coefficients do not use (:func:`buffers`) may be an empty array."""

    #: mean square
    square_avg: Any
    #: mean gradient (centered only)
    grad_avg: Any
    #: momentum buffer (momentum > 0 only)
    momentum_buffer: Any


#: The names of the state buffers ``s0, s1, s2`` of :func:`rule`.
STATE = RMSPropState._fields


class RMSPropCoefficients(NamedTuple):
    """The values :func:`rule` needs at one step (from :func:`coefficients`)."""

    #: :math:`\rho` and :math:`1 - \rho`
    decay: float
    one_minus_decay: float
    #: bias correction of the moments, ``1 / (1 - decay**t)`` or 1
    c: float
    #: epsilon inside / outside the square root (one of them is 0)
    eps_in: float
    eps_out: float
    #: where the learning rate enters: inside the momentum buffer (``lr_in = lr``) or
    #: outside it (``lr_out = lr``); the other is 1
    lr_in: float
    lr_out: float
    #: :math:`\mu`
    momentum: float
    #: coupled (L2) weight decay and the decoupled factor ``1 - lr * wd``
    l2: float
    wd_factor: float
    #: -1 to maximize, +1 to minimize
    sign: float
    #: formula switches
    centered: bool
    use_momentum: bool
    nesterov: bool


def rule(p, g, v, gbar, buf, c):
    r"""One RMSProp step for one element.

    .. math::

        g &\leftarrow s\,g + \lambda_2\,\theta \\
        v &\leftarrow \rho v + (1-\rho)\,g^2 \\
        \bar g &\leftarrow \rho \bar g + (1-\rho)\,g \quad\text{(centered only)}\\
        S &= c\,v - (c\,\bar g)^2 \text{ clamped at 0 (centered), else } c\,v\\
        u &= g / (\sqrt{S + \epsilon_{in}} + \epsilon_{out})\\
        b &\leftarrow \mu b + l_{in} u, \quad
            \theta \leftarrow f\theta - l_{out}\,(b \text{ or, Nesterov, } l_{in} u + \mu b)
            \quad\text{(momentum)}\\
        \theta &\leftarrow f\theta - l_{out} l_{in} u \quad\text{(no momentum)}

    The centered variance :math:`c\,v - (c\,\bar g)^2` can round below zero; it is clamped
    at 0, so it never produces NaN from a square root of a negative number.

    Parameters
    ----------
    p, g, v, gbar, buf : float
        Parameter, gradient, mean square, mean gradient (any value unless ``c.centered``)
        and momentum buffer (any value unless ``c.use_momentum``).
    c : RMSPropCoefficients
        This step's coefficients (:func:`coefficients`).

    Returns
    -------
    p, v, gbar, buf : float
        The updated values.
    """
    g = c.sign * g
    if c.l2 != 0:  # not 0 * p: an infinite parameter stays infinite, as in torch
        g = g + c.l2 * p
    v = c.decay * v + c.one_minus_decay * (g * g)
    if c.centered:
        gbar = c.decay * gbar + c.one_minus_decay * g
        gc = c.c * gbar
        s = c.c * v - gc * gc
        if s < 0:
            s = s - s
    else:
        s = c.c * v
    u = g / (sqrt(s + c.eps_in) + c.eps_out)
    if c.use_momentum:
        buf = c.momentum * buf + c.lr_in * u
        if c.nesterov:
            p = c.wd_factor * p - c.lr_out * (c.lr_in * u + c.momentum * buf)
        else:
            p = c.wd_factor * p - c.lr_out * buf
    else:
        p = c.wd_factor * p - c.lr_out * (c.lr_in * u)
    return p, v, gbar, buf


def coefficients(
    t, lr, decay, eps, momentum, weight_decay, decoupled_weight_decay, eps_in_sqrt,
    lr_in_momentum, bias_correction, maximize, centered, nesterov,
):  # fmt: skip
    r"""Fold RMSProp's hyperparameters at step ``t`` into :class:`RMSPropCoefficients` (float64).

    :math:`c = 1/(1-\rho^t)` with ``bias_correction`` (optax), else 1;
    :math:`\epsilon_{in} = \epsilon, \epsilon_{out} = 0` when ``eps_in_sqrt`` (Keras, TF1,
    optax) and the reverse otherwise (PyTorch); :math:`l_{in} = lr, l_{out} = 1` when
    ``lr_in_momentum`` (Keras, TF1, optax) and the reverse otherwise (PyTorch).

    This is the positional form compiled into the kernels; users build coefficients with
    :func:`fastadam.kernels.rmsprop_coefficients` (keywords, defaults, a convention name).
    """
    check_step(t)
    c = 1.0 / (1.0 - decay ** float(t)) if bias_correction else 1.0
    eps_in, eps_out = (1.0 * eps, 0.0) if eps_in_sqrt else (0.0, 1.0 * eps)
    lr_in, lr_out = (1.0 * lr, 1.0) if lr_in_momentum else (1.0, 1.0 * lr)
    l2, wd_factor = weight_decay_terms(lr, weight_decay, decoupled_weight_decay)
    return RMSPropCoefficients(
        1.0 * decay, 1.0 - decay, c, eps_in, eps_out, lr_in, lr_out, 1.0 * momentum, l2,
        wd_factor, -1.0 if maximize else 1.0, bool(centered), momentum > 0, bool(nesterov),
    )  # fmt: skip


def cast(c, f):
    """``c`` with its float fields converted by ``f`` (``np.float32`` or ``np.float64``)."""
    return RMSPropCoefficients(
        f(c.decay), f(c.one_minus_decay), f(c.c), f(c.eps_in), f(c.eps_out), f(c.lr_in),
        f(c.lr_out), f(c.momentum), f(c.l2), f(c.wd_factor), f(c.sign), c.centered,
        c.use_momentum, c.nesterov,
    )  # fmt: skip


def buffers(c):
    """Whether ``grad_avg`` (centered) and ``momentum_buffer`` (momentum > 0) are used."""
    return c.centered, c.use_momentum


@dataclass(frozen=True)
class Convention:
    """How one framework defines RMSProp.

    Attributes
    ----------
    name : str
        The convention's name.
    lr, decay, eps : float
        Defaults (PyTorch calls ``decay`` alpha, Keras rho).
    eps_in_sqrt : bool
        Knob: ``g / sqrt(v + eps)`` (Keras, TF1, optax) instead of ``g / (sqrt(v) + eps)``.
    lr_in_momentum : bool
        Knob: the momentum buffer accumulates ``lr * g / D`` (Keras, TF1, optax) instead of
        ``g / D`` with ``lr`` applied outside it (PyTorch). Equal for a constant ``lr``.
    initial_scale : float
        Knob: initial value of the mean square (1.0 in TF1, 0 elsewhere).
    bias_correction : bool
        Knob: divide the moments by ``1 - decay**t`` (optax option).
    nesterov : bool
        Knob: Nesterov momentum (optax option).
    decoupled_weight_decay : bool
        Knob: weight decay as ``theta *= 1 - lr*wd`` (Keras) instead of L2 on the gradient.
    has_momentum, has_weight_decay : bool
        Whether the convention offers momentum / centering and weight decay at all.
    """

    name: str
    lr: float
    decay: float
    eps: float
    eps_in_sqrt: bool
    lr_in_momentum: bool
    initial_scale: float = 0.0
    bias_correction: bool = False
    nesterov: bool = False
    decoupled_weight_decay: bool = False
    has_momentum: bool = True
    has_weight_decay: bool = True


CONVENTIONS = {
    c.name: c
    for c in (
        Convention(
            "basic", 1e-2, 0.99, 1e-8, False, False, has_momentum=False, has_weight_decay=False
        ),  # fmt: skip
        Convention("pytorch", 1e-2, 0.99, 1e-8, False, False),
        Convention("keras", 1e-3, 0.9, 1e-7, True, True, decoupled_weight_decay=True),
        Convention(
            "tf1", 1e-3, 0.9, 1e-10, True, True, initial_scale=1.0, has_weight_decay=False
        ),  # fmt: skip
        Convention("optax", 1e-3, 0.9, 1e-8, True, True),
    )
}


def _validate(args, conv):
    if not conv.has_momentum and (args["momentum"] or args["centered"] or args["nesterov"]):
        raise ValueError(f"convention {conv.name!r} has no momentum or centering; use 'pytorch'")
    if args["weight_decay"] and not conv.has_weight_decay:
        raise ValueError(f"convention {conv.name!r} has no weight decay; use 'pytorch'")
    if args["eps"] == 0 and (args["centered"] or args["initial_scale"] == 0):
        raise ValueError(
            "eps=0 divides by zero wherever the mean square is 0 (a gradient element that has "
            f"always been 0); use eps > 0 (convention {conv.name!r} default: {conv.eps:g})"
        )


SPEC = Algorithm(
    name="rmsprop",
    title="RMSProp",
    Coefficients=RMSPropCoefficients,
    rule=rule,
    coefficients=coefficients,
    cast=cast,
    buffers=buffers,
    arguments=(
        "lr",
        "decay",
        "eps",
        "momentum",
        "weight_decay",
        "decoupled_weight_decay",
        "eps_in_sqrt",
        "lr_in_momentum",
        "bias_correction",
        "maximize",
        "centered",
        "nesterov",
    ),  # fmt: skip
    checks=dict(
        lr="lr",
        decay="decay",
        eps="nonneg",
        momentum="nonneg",
        weight_decay="nonneg",
        decoupled_weight_decay="bool",
        eps_in_sqrt="bool",
        lr_in_momentum="bool",
        bias_correction="bool",
        maximize="bool",
        centered="bool",
        nesterov="bool",
        initial_scale="nonneg",
    ),  # fmt: skip
    defaults=dict(momentum=0.0, weight_decay=0.0, maximize=False, centered=False),
    State=RMSPropState,
    conventions=CONVENTIONS,
    initial_state=lambda args, conv: (args["initial_scale"], 0.0, 0.0),
    validate=_validate,
    state_arguments=("initial_scale",),
)
