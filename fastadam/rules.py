"""The update math, written once.

Every function here is a small, pure, plain-Python function on scalars. The same source is
compiled by :func:`numba.njit` for the CPU (:mod:`fastadam.kernels`) and by
``numba.cuda.jit(device=True)`` for the GPU (:mod:`fastadam.cuda`); the array kernels only
loop over it.

The per-element rules take *coefficients* rather than raw hyperparameters: everything that
depends only on the step number ``t`` and the learning rate (bias corrections, where ``lr``
enters, the weight-decay factor) is folded once per step, in float64, by
:func:`adam_coefficients` and :func:`rmsprop_coefficients`. This is how one rule serves every
convention in :mod:`fastadam.conventions`: a convention only changes the coefficients.

The rules contain no float literals, so float32 inputs stay float32 (a literal such as
``1.0`` would promote the arithmetic to float64 in numba).
"""

from math import sqrt

__all__ = [
    "adam_rule",
    "adam_coefficients",
    "rmsprop_rule",
    "rmsprop_coefficients",
    "ADAM_COEFFICIENTS",
    "RMSPROP_COEFFICIENTS",
]

#: Names of the values returned by :func:`adam_coefficients`, in order; they are the
#: arguments that :func:`adam_rule` takes after its five array values.
ADAM_COEFFICIENTS = (
    "beta1",
    "one_minus_beta1",
    "beta2",
    "one_minus_beta2",
    "step_size",
    "c2",
    "eps_root",
    "eps",
    "l2",
    "wd_factor",
    "sign",
    "amsgrad",
)

#: Names of the values returned by :func:`rmsprop_coefficients`, in order; they are the
#: arguments that :func:`rmsprop_rule` takes after its five array values.
RMSPROP_COEFFICIENTS = (
    "decay",
    "one_minus_decay",
    "c",
    "eps_in",
    "eps_out",
    "lr_in",
    "lr_out",
    "momentum",
    "l2",
    "wd_factor",
    "sign",
    "centered",
    "use_momentum",
    "nesterov",
)


def adam_rule(
    p, g, m, v, vmax,
    beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, c2, eps_root, eps,
    l2, wd_factor, sign, amsgrad,
):  # fmt: skip
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
        moment (any value when ``amsgrad == 0``; it is returned unchanged).
    beta1, one_minus_beta1, beta2, one_minus_beta2 : float
        The decay rates and their complements (passed separately so that ``1 - beta`` is
        formed once, in float64).
    step_size : float
        :math:`\alpha`: ``lr / (1 - beta1**t)`` (or ``lr * sqrt(1 - beta2**t) / (1 -
        beta1**t)`` in the epsilon-hat form).
    c2 : float
        :math:`c_2`: ``1 / (1 - beta2**t)``, or 1 in the epsilon-hat form.
    eps_root, eps : float
        Added inside and outside the square root.
    l2 : float
        :math:`\lambda_2`: coupled (L2) weight decay added to the gradient.
    wd_factor : float
        :math:`f`: ``1 - lr * weight_decay`` for decoupled weight decay, else 1.
    sign : float
        :math:`s`: -1 to maximize, +1 to minimize.
    amsgrad : int
        0 off, 1 maximum of the raw ``v`` (PyTorch, Keras), 2 maximum of the bias-corrected
        ``v`` (optax).

    Returns
    -------
    p, m, v, vmax : float
        The updated values.

    See Also
    --------
    adam_coefficients : computes every argument after ``vmax`` for step ``t``.
    """
    g = sign * g + l2 * p
    m = beta1 * m + one_minus_beta1 * g
    v = beta2 * v + one_minus_beta2 * (g * g)
    if amsgrad == 1:
        vmax = max(vmax, v)
        vhat = c2 * vmax
    elif amsgrad == 2:
        vmax = max(vmax, c2 * v)
        vhat = vmax
    else:
        vhat = c2 * v
    p = wd_factor * p - step_size * m / (sqrt(vhat + eps_root) + eps)
    return p, m, v, vmax


def adam_coefficients(
    t, lr, beta1, beta2, eps, eps_root, weight_decay, decoupled_weight_decay,
    eps_hat, bias_correction, maximize, amsgrad, amsgrad_corrected,
):  # fmt: skip
    r"""Fold Adam's hyperparameters at step ``t`` into the arguments of :func:`adam_rule`.

    With bias corrections :math:`b_1 = 1 - \beta_1^t` and :math:`b_2 = 1 - \beta_2^t`
    (both 1 when ``bias_correction`` is false):

    - Algorithm 1 form (PyTorch, optax): :math:`\alpha = lr / b_1`, :math:`c_2 = 1 / b_2`,
      so that :math:`\theta \leftarrow \theta - lr\,\hat m / (\sqrt{\hat v} + \epsilon)`.
    - epsilon-hat form (Keras, TF1, ``eps_hat=True``): :math:`\alpha = lr\sqrt{b_2}/b_1`,
      :math:`c_2 = 1`, so that :math:`\theta \leftarrow \theta - \alpha\,m/(\sqrt v+\epsilon)`.
      This ``lr_t`` is a bias correction, not a decay of ``lr``.

    Weight decay is coupled (:math:`\lambda_2 = wd`, :math:`f = 1`) or decoupled
    (:math:`\lambda_2 = 0`, :math:`f = 1 - lr\cdot wd`).

    Parameters
    ----------
    t : int
        Step number, 1 on the first update.
    lr, beta1, beta2, eps, eps_root, weight_decay : float
        Hyperparameters (``lr`` already evaluated at ``t`` if it is a schedule).
    decoupled_weight_decay, eps_hat, bias_correction, maximize, amsgrad,
    amsgrad_corrected : bool
        Formula switches; see :class:`fastadam.conventions.AdamConvention`.

    Returns
    -------
    tuple
        The values named in :data:`ADAM_COEFFICIENTS`, as float64 (``amsgrad`` as int).
    """
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
    if decoupled_weight_decay:
        l2 = 0.0
        wd_factor = 1.0 - lr * weight_decay
    else:
        l2 = 1.0 * weight_decay
        wd_factor = 1.0
    sign = -1.0 if maximize else 1.0
    mode = (2 if amsgrad_corrected else 1) if amsgrad else 0
    return (
        1.0 * beta1, 1.0 - beta1, 1.0 * beta2, 1.0 - beta2, step_size, c2,
        1.0 * eps_root, 1.0 * eps, l2, wd_factor, sign, mode,
    )  # fmt: skip


def rmsprop_rule(
    p, g, v, gbar, buf,
    decay, one_minus_decay, c, eps_in, eps_out, lr_in, lr_out, momentum,
    l2, wd_factor, sign, centered, use_momentum, nesterov,
):  # fmt: skip
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

    ``lr`` sits either inside the momentum buffer (:math:`l_{in} = lr, l_{out} = 1`: Keras,
    TF1, optax) or outside it (:math:`l_{in} = 1, l_{out} = lr`: PyTorch). The centered
    variance :math:`c\,v - (c\,\bar g)^2` can round below zero; it is clamped at 0, so it
    never produces NaN from a square root of a negative number.

    Parameters
    ----------
    p, g, v, gbar, buf : float
        Parameter, gradient, mean square, mean gradient (any value unless ``centered``) and
        momentum buffer (any value unless ``use_momentum``).
    decay, one_minus_decay : float
        :math:`\rho` and :math:`1 - \rho`.
    c : float
        Bias correction of the moments, ``1 / (1 - decay**t)`` or 1.
    eps_in, eps_out : float
        Epsilon inside or outside the square root (one of them is 0).
    lr_in, lr_out : float
        Where the learning rate enters (see above).
    momentum : float
        :math:`\mu`.
    l2, wd_factor, sign : float
        Coupled weight decay, decoupled factor ``1 - lr * wd``, and -1 to maximize.
    centered, use_momentum, nesterov : bool
        Formula switches.

    Returns
    -------
    p, v, gbar, buf : float
        The updated values.

    See Also
    --------
    rmsprop_coefficients : computes every argument after ``buf`` for step ``t``.
    """
    g = sign * g + l2 * p
    v = decay * v + one_minus_decay * (g * g)
    if centered:
        gbar = decay * gbar + one_minus_decay * g
        gc = c * gbar
        s = c * v - gc * gc
        if s < 0:
            s = s - s
    else:
        s = c * v
    u = g / (sqrt(s + eps_in) + eps_out)
    if use_momentum:
        buf = momentum * buf + lr_in * u
        if nesterov:
            p = wd_factor * p - lr_out * (lr_in * u + momentum * buf)
        else:
            p = wd_factor * p - lr_out * buf
    else:
        p = wd_factor * p - lr_out * (lr_in * u)
    return p, v, gbar, buf


def rmsprop_coefficients(
    t, lr, decay, eps, momentum, weight_decay, decoupled_weight_decay, eps_in_sqrt,
    lr_in_momentum, bias_correction, maximize, centered, nesterov,
):  # fmt: skip
    r"""Fold RMSProp's hyperparameters at step ``t`` into the arguments of
    :func:`rmsprop_rule`.

    :math:`c = 1/(1-\rho^t)` with ``bias_correction`` (optax), else 1;
    :math:`\epsilon_{in} = \epsilon, \epsilon_{out} = 0` when ``eps_in_sqrt`` (Keras, TF1,
    optax) and the reverse otherwise (PyTorch); :math:`l_{in} = lr, l_{out} = 1` when
    ``lr_in_momentum`` (Keras, TF1, optax) and the reverse otherwise (PyTorch).

    Parameters
    ----------
    t : int
        Step number, 1 on the first update.
    lr, decay, eps, momentum, weight_decay : float
        Hyperparameters (``lr`` already evaluated at ``t`` if it is a schedule).
    decoupled_weight_decay, eps_in_sqrt, lr_in_momentum, bias_correction, maximize,
    centered, nesterov : bool
        Formula switches; see :class:`fastadam.conventions.RMSPropConvention`.

    Returns
    -------
    tuple
        The values named in :data:`RMSPROP_COEFFICIENTS` (float64, the last three bool).
    """
    c = 1.0 / (1.0 - decay ** float(t)) if bias_correction else 1.0
    if eps_in_sqrt:
        eps_in = 1.0 * eps
        eps_out = 0.0
    else:
        eps_in = 0.0
        eps_out = 1.0 * eps
    if lr_in_momentum:
        lr_in = 1.0 * lr
        lr_out = 1.0
    else:
        lr_in = 1.0
        lr_out = 1.0 * lr
    if decoupled_weight_decay:
        l2 = 0.0
        wd_factor = 1.0 - lr * weight_decay
    else:
        l2 = 1.0 * weight_decay
        wd_factor = 1.0
    sign = -1.0 if maximize else 1.0
    return (
        1.0 * decay, 1.0 - decay, c, eps_in, eps_out, lr_in, lr_out, 1.0 * momentum,
        l2, wd_factor, sign, bool(centered), momentum > 0, bool(nesterov),
    )  # fmt: skip
