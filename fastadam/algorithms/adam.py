"""Adam (Kingma & Ba), with AMSGrad, L2 or decoupled weight decay, in every convention.

The rule contains no float literals, so float32 inputs stay float32 (a literal such as
``1.0`` would promote the arithmetic to float64 in numba).
"""

from dataclasses import dataclass
from math import sqrt
from typing import Any, NamedTuple

from ._math import check_step, weight_decay_terms
from ._spec import Algorithm

__all__ = [
    "AdamCoefficients",
    "AdamState",
    "Convention",
    "CONVENTIONS",
    "STATE",
    "rule",
    "coefficients",
    "cast",
    "buffers",
    "SPEC",
]


class AdamState(NamedTuple):
    """The per-element state arrays of one parameter array, for the kernels; a buffer
    that these coefficients do not use (:func:`buffers`) may be an empty array."""

    #: first moment
    exp_avg: Any
    #: second moment
    exp_avg_sq: Any
    #: running maximum of the second moment (AMSGrad only)
    max_exp_avg_sq: Any


#: The names of the state buffers ``s0, s1, s2`` of :func:`rule`.
STATE = AdamState._fields


class AdamCoefficients(NamedTuple):
    """The values :func:`rule` needs at one step (from :func:`coefficients`)."""

    #: :math:`\beta_1` and :math:`1 - \beta_1` (the complement formed once, in float64)
    beta1: float
    one_minus_beta1: float
    #: :math:`\beta_2` and :math:`1 - \beta_2`
    beta2: float
    one_minus_beta2: float
    #: :math:`\alpha`: ``lr / (1 - beta1**t)``, or ``lr * sqrt(1 - beta2**t) / (1 -
    #: beta1**t)`` in the epsilon-hat form
    step_size: float
    #: :math:`c_2`: ``1 / (1 - beta2**t)``, or 1 in the epsilon-hat form
    c2: float
    #: added inside the square root
    eps_root: float
    #: added outside the square root
    eps: float
    #: :math:`\lambda_2`: coupled (L2) weight decay added to the gradient
    l2: float
    #: :math:`f`: ``1 - lr * weight_decay`` for decoupled weight decay, else 1
    wd_factor: float
    #: -1 to maximize, +1 to minimize
    sign: float
    #: 0 off, 1 maximum of the raw ``v`` (PyTorch, Keras), 2 of the corrected ``v`` (optax)
    amsgrad: int


def rule(p, g, m, v, vmax, c):
    r"""One Adam step for one element.

    .. math::

        g &\leftarrow s\,g + \lambda_2\,\theta \\
        m &\leftarrow \beta_1 m + (1-\beta_1)\,g \\
        v &\leftarrow \beta_2 v + (1-\beta_2)\,g^2 \\
        \hat v &= \begin{cases}
            c_2\,v & \text{amsgrad} = 0\\
            c_2\,v_{max}, \; v_{max} \leftarrow \max(v_{max}, v) & \text{amsgrad} = 1\\
            v_{max}, \; v_{max} \leftarrow \max(v_{max}, c_2 v) & \text{amsgrad} = 2
        \end{cases}\\
        \theta &\leftarrow f\,\theta - \alpha\, m / (\sqrt{\hat v + \epsilon_{root}} + \epsilon)

    Parameters
    ----------
    p, g, m, v, vmax : float
        Parameter, gradient, first moment, second moment and running maximum of the second
        moment (any value when ``c.amsgrad == 0``; it is returned unchanged).
    c : AdamCoefficients
        This step's coefficients (:func:`coefficients`).

    Returns
    -------
    p, m, v, vmax : float
        The updated values.
    """
    g = c.sign * g
    if c.l2 != 0:  # not 0 * p: an infinite parameter stays infinite, as in torch
        g = g + c.l2 * p
    m = c.beta1 * m + c.one_minus_beta1 * g
    v = c.beta2 * v + c.one_minus_beta2 * (g * g)
    if c.amsgrad == 1:
        vmax = max(vmax, v)
        vhat = c.c2 * vmax
    elif c.amsgrad == 2:
        vmax = max(vmax, c.c2 * v)
        vhat = vmax
    else:
        vhat = c.c2 * v
    p = c.wd_factor * p - c.step_size * m / (sqrt(vhat + c.eps_root) + c.eps)
    return p, m, v, vmax


def coefficients(
    t, lr, beta1, beta2, eps, eps_root, weight_decay, decoupled_weight_decay, eps_hat,
    bias_correction, maximize, amsgrad, amsgrad_corrected,
):  # fmt: skip
    r"""Fold Adam's hyperparameters at step ``t`` into :class:`AdamCoefficients` (float64).

    With bias corrections :math:`b_1 = 1 - \beta_1^t` and :math:`b_2 = 1 - \beta_2^t`
    (both 1 without ``bias_correction``): Algorithm 1 form (PyTorch, optax)
    :math:`\alpha = lr / b_1`, :math:`c_2 = 1 / b_2`; epsilon-hat form (Keras, TF1)
    :math:`\alpha = lr\sqrt{b_2}/b_1`, :math:`c_2 = 1` -- this ``lr_t`` is a bias
    correction, not a decay of ``lr``. Weight decay is coupled (:math:`\lambda_2 = wd`) or
    decoupled (:math:`f = 1 - lr\cdot wd`).

    This is the positional form compiled into the kernels; users build coefficients with
    :func:`fastadam.kernels.adam_coefficients` (keywords, defaults, a convention name).
    """
    check_step(t)
    if bias_correction:
        # float(t): numba computes float**int by repeated multiplication, Python by pow();
        # float**float is pow() in both, so compiled and host coefficients agree bitwise.
        bc1 = 1.0 - beta1 ** float(t)
        bc2 = 1.0 - beta2 ** float(t)
    else:
        bc1 = 1.0
        bc2 = 1.0
    if eps_hat:
        step_size = lr * sqrt(bc2) / bc1
        c2 = 1.0
    else:
        step_size = lr / bc1
        c2 = 1.0 / bc2
    l2, wd_factor = weight_decay_terms(lr, weight_decay, decoupled_weight_decay)
    mode = (2 if amsgrad_corrected else 1) if amsgrad else 0
    return AdamCoefficients(
        1.0 * beta1, 1.0 - beta1, 1.0 * beta2, 1.0 - beta2, step_size, c2, 1.0 * eps_root,
        1.0 * eps, l2, wd_factor, -1.0 if maximize else 1.0, mode,
    )  # fmt: skip


def cast(c, f):
    """``c`` with its float fields converted by ``f`` (``np.float32`` or ``np.float64``)."""
    return AdamCoefficients(
        f(c.beta1), f(c.one_minus_beta1), f(c.beta2), f(c.one_minus_beta2), f(c.step_size),
        f(c.c2), f(c.eps_root), f(c.eps), f(c.l2), f(c.wd_factor), f(c.sign), c.amsgrad,
    )  # fmt: skip


def buffers(c):
    """Whether ``exp_avg_sq`` and ``max_exp_avg_sq`` are read and written."""
    return True, c.amsgrad != 0


@dataclass(frozen=True)
class Convention:
    """How one framework defines Adam.

    Attributes
    ----------
    name : str
        The convention's name.
    lr, beta1, beta2, eps, eps_root : float
        Defaults.
    adamw_weight_decay : float
        Default weight decay of ``AdamW``.
    decoupled_weight_decay : bool
        Knob: whether ``Adam(weight_decay=...)`` is decoupled (Keras) or L2 (PyTorch).
    eps_hat : bool
        Knob: epsilon-hat form, ``theta -= lr*sqrt(1-beta2**t)/(1-beta1**t) * m/(sqrt(v)+eps)``
        (Keras, TF1), instead of Algorithm 1's ``m_hat/(sqrt(v_hat)+eps)``.
    amsgrad_corrected : bool
        Knob: AMSGrad keeps the maximum of the bias-corrected ``v_hat`` (optax) instead of
        the raw ``v`` (PyTorch, Keras).
    bias_correction : bool
        Knob: divide by ``1 - beta**t``.
    has_amsgrad, has_weight_decay : bool
        Whether the framework offers these at all (TF1 offers neither).
    """

    name: str
    lr: float
    beta1: float
    beta2: float
    eps: float
    eps_root: float
    adamw_weight_decay: float
    decoupled_weight_decay: bool
    eps_hat: bool
    amsgrad_corrected: bool
    bias_correction: bool = True
    has_amsgrad: bool = True
    has_weight_decay: bool = True


CONVENTIONS = {
    c.name: c
    for c in (
        Convention("pytorch", 1e-3, 0.9, 0.999, 1e-8, 0.0, 1e-2, False, False, False),
        Convention("keras", 1e-3, 0.9, 0.999, 1e-7, 0.0, 4e-3, True, True, False),
        Convention(
            "tf1",
            1e-3,
            0.9,
            0.999,
            1e-8,
            0.0,
            0.0,
            False,
            True,
            False,
            has_amsgrad=False,
            has_weight_decay=False,
        ),  # fmt: skip
        Convention("optax", 1e-3, 0.9, 0.999, 1e-8, 0.0, 1e-4, False, False, True),
    )
}


def _validate(args, conv):
    if args["eps"] == 0 and args["eps_root"] == 0:
        raise ValueError(
            "eps=0 (with eps_root=0) divides by zero wherever a gradient element has "
            f"always been 0; use eps > 0 (convention {conv.name!r} default: {conv.eps:g})"
        )
    if args["amsgrad"] and not conv.has_amsgrad:
        raise ValueError(f"convention {conv.name!r} has no amsgrad; use 'keras' or 'pytorch'")
    if args["weight_decay"] and not conv.has_weight_decay:
        raise ValueError(
            f"convention {conv.name!r} has no weight decay (so no AdamW); use 'keras' for "
            "the same epsilon-hat formula with decoupled decay"
        )


SPEC = Algorithm(
    name="adam",
    title="Adam",
    Coefficients=AdamCoefficients,
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
        "weight_decay",
        "decoupled_weight_decay",
        "eps_hat",
        "bias_correction",
        "maximize",
        "amsgrad",
        "amsgrad_corrected",
    ),  # fmt: skip
    checks=dict(
        lr="lr",
        beta1="beta",
        beta2="beta",
        eps="nonneg",
        eps_root="nonneg",
        weight_decay="nonneg",
        decoupled_weight_decay="bool",
        eps_hat="bool",
        bias_correction="bool",
        maximize="bool",
        amsgrad="bool",
        amsgrad_corrected="bool",
    ),  # fmt: skip
    defaults=dict(weight_decay=0.0, maximize=False, amsgrad=False),
    State=AdamState,
    conventions=CONVENTIONS,
    initial_state=lambda args, conv: (0.0, 0.0, 0.0),
    validate=_validate,
)
