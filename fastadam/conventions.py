"""Each framework's definition of Adam and RMSProp, as data.

A convention is a preset: the formula switches (*knobs*) that distinguish the frameworks and
the defaults for every hyperparameter a caller leaves as ``None``. There is no kernel per
convention: the knobs only change the coefficients computed by
:func:`fastadam.rules.adam_coefficients` / :func:`fastadam.rules.rmsprop_coefficients`.

============  ===============================================================================
name          what it reproduces
============  ===============================================================================
``pytorch``   ``torch.optim.Adam``/``AdamW``/``RMSprop`` (Adam = Kingma & Ba, Algorithm 1)
``keras``     Keras 3 / TF2 (epsilon-hat Adam, eps inside the sqrt in RMSProp, decoupled
              weight decay, lr inside the momentum buffer)
``tf1``       ``tf.compat.v1.train.AdamOptimizer`` / ``RMSPropOptimizer`` (mean square starts
              at 1.0)
``optax``     ``optax.adam``/``adamw``/``amsgrad``/``rmsprop``
``basic``     RMSProp only: the textbook rule, no momentum, no centering, no weight decay
============  ===============================================================================

The specification, with the porting traps, is ``docs/conventions.rst``.
"""

from dataclasses import dataclass, fields, replace

__all__ = [
    "AdamConvention",
    "RMSPropConvention",
    "ADAM_CONVENTIONS",
    "RMSPROP_CONVENTIONS",
    "ADAM_KNOBS",
    "RMSPROP_KNOBS",
    "adam_convention",
    "rmsprop_convention",
]


@dataclass(frozen=True)
class AdamConvention:
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


@dataclass(frozen=True)
class RMSPropConvention:
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


ADAM_CONVENTIONS = {
    c.name: c
    for c in (
        AdamConvention("pytorch", 1e-3, 0.9, 0.999, 1e-8, 0.0, 1e-2, False, False, False),
        AdamConvention("keras", 1e-3, 0.9, 0.999, 1e-7, 0.0, 4e-3, True, True, False),
        AdamConvention(
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
        AdamConvention("optax", 1e-3, 0.9, 0.999, 1e-8, 0.0, 1e-4, False, False, True),
    )
}

RMSPROP_CONVENTIONS = {
    c.name: c
    for c in (
        RMSPropConvention(
            "basic", 1e-2, 0.99, 1e-8, False, False, has_momentum=False, has_weight_decay=False
        ),
        RMSPropConvention("pytorch", 1e-2, 0.99, 1e-8, False, False),
        RMSPropConvention("keras", 1e-3, 0.9, 1e-7, True, True, decoupled_weight_decay=True),
        RMSPropConvention(
            "tf1", 1e-3, 0.9, 1e-10, True, True, initial_scale=1.0, has_weight_decay=False
        ),
        RMSPropConvention("optax", 1e-3, 0.9, 1e-8, True, True),
    )
}

#: The Adam knobs that can be set explicitly (keyword arguments of the optimizers).
ADAM_KNOBS = ("eps_hat", "amsgrad_corrected")
#: The RMSProp knobs that can be set explicitly (keyword arguments of the optimizers).
RMSPROP_KNOBS = (
    "eps_in_sqrt",
    "lr_in_momentum",
    "initial_scale",
    "bias_correction",
    "nesterov",
    "decoupled_weight_decay",
)


def _lookup(table, name, what):
    if not isinstance(name, str) or name not in table:
        raise ValueError(f"convention={name!r} is not a {what} convention; valid: {list(table)}")
    return table[name]


def _with_knobs(conv, knobs, allowed, what, keywords=()):
    unknown = sorted(set(knobs) - set(allowed))
    if unknown:
        valid = ", ".join(list(keywords) + list(allowed))
        raise TypeError(
            f"{what}() got unexpected keyword argument(s) {unknown}; valid keywords: {valid}"
        )
    types = {f.name: f.type for f in fields(conv)}
    set_knobs = {}
    for key, value in knobs.items():
        if value is None:
            continue
        if types[key] in (bool, "bool"):
            if not isinstance(value, bool):
                raise TypeError(f"{key} must be True or False, got {value!r}")
        set_knobs[key] = value
    return replace(conv, **set_knobs)


def adam_convention(name="pytorch", _caller=("Adam", ()), **knobs):
    """The :class:`AdamConvention` called ``name``, with knobs overridden.

    Parameters
    ----------
    name : {'pytorch', 'keras', 'tf1', 'optax'}
        Convention.
    **knobs
        ``eps_hat``, ``amsgrad_corrected`` (None keeps the convention's value).

    Raises
    ------
    ValueError
        Unknown convention.
    TypeError
        Unknown knob, or a knob of the wrong type.
    """
    conv = _lookup(ADAM_CONVENTIONS, name, "Adam")
    return _with_knobs(conv, knobs, ADAM_KNOBS, *_caller)


def rmsprop_convention(name="pytorch", _caller=("RMSProp", ()), **knobs):
    """The :class:`RMSPropConvention` called ``name``, with knobs overridden.

    Parameters
    ----------
    name : {'pytorch', 'keras', 'tf1', 'optax', 'basic'}
        Convention.
    **knobs
        ``eps_in_sqrt``, ``lr_in_momentum``, ``initial_scale``, ``bias_correction``,
        ``nesterov``, ``decoupled_weight_decay`` (None keeps the convention's value).

    Raises
    ------
    ValueError
        Unknown convention.
    TypeError
        Unknown knob, or a knob of the wrong type.
    """
    conv = _lookup(RMSPROP_CONVENTIONS, name, "RMSProp")
    return _with_knobs(conv, knobs, RMSPROP_KNOBS, *_caller)
