"""Independent plain-numpy float64 references for every convention in
docs/conventions.rst.

Nothing here imports fastadam: every formula is written again from the specification
(``docs/conventions.rst``), and, where a framework has a recognisable way of writing its
update, in that framework's own form (PyTorch's ``step_size``/``denom``, Keras' ``alpha_t``,
optax's ``m_hat``/``v_hat`` and its ``u = -lr * scale * g`` RMSProp chain; for NAdam,
PyTorch's ``mu``/``mu_product`` and two ``addcdiv`` steps, Keras' ``u_t``/``_u_product`` and
optax's Nesterov ``mu_hat``). The library
instead folds every convention into one coefficient tuple and one scalar rule, so agreement
between the two is a real check and not the same code run twice.

All arithmetic is float64, whatever the dtype of the inputs.

Public functions
----------------
adam_reference(params0, grads_seq, ...) -> (params, state, trajectory)
rmsprop_reference(params0, grads_seq, ...) -> (params, state, trajectory)
nadam_reference(params0, grads_seq, ...) -> (params, state, trajectory)
lr_t_ratio(t, beta1, beta2)
"""

import math

import numpy as np

# Defaults and formula switches of every convention, copied from docs/conventions.rst (not
# from fastadam.conventions).
ADAM_DEFAULTS = {
    # name: lr, (beta1, beta2), eps, adamw weight decay, Adam's weight decay is decoupled
    "pytorch": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, adamw_wd=1e-2, decoupled=False),
    "keras": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, adamw_wd=4e-3, decoupled=True),
    "tf1": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, adamw_wd=0.0, decoupled=False),
    "optax": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, adamw_wd=1e-4, decoupled=False),
}

RMSPROP_DEFAULTS = {
    "basic": dict(lr=1e-2, decay=0.99, eps=1e-8),
    "pytorch": dict(lr=1e-2, decay=0.99, eps=1e-8),
    "keras": dict(lr=1e-3, decay=0.9, eps=1e-7),
    "tf1": dict(lr=1e-3, decay=0.9, eps=1e-10),
    "optax": dict(lr=1e-3, decay=0.9, eps=1e-8),
}

# The knobs that distinguish the RMSProp conventions.
RMSPROP_KNOBS = {
    "basic": dict(
        eps_in_sqrt=False, lr_in_momentum=False, initial_scale=0.0, bias_correction=False,
        nesterov=False, decoupled_weight_decay=False,
    ),
    "pytorch": dict(
        eps_in_sqrt=False, lr_in_momentum=False, initial_scale=0.0, bias_correction=False,
        nesterov=False, decoupled_weight_decay=False,
    ),
    "keras": dict(
        eps_in_sqrt=True, lr_in_momentum=True, initial_scale=0.0, bias_correction=False,
        nesterov=False, decoupled_weight_decay=True,
    ),
    "tf1": dict(
        eps_in_sqrt=True, lr_in_momentum=True, initial_scale=1.0, bias_correction=False,
        nesterov=False, decoupled_weight_decay=False,
    ),
    "optax": dict(
        eps_in_sqrt=True, lr_in_momentum=True, initial_scale=0.0, bias_correction=False,
        nesterov=False, decoupled_weight_decay=False,
    ),
}  # fmt: skip

ADAM_CONVENTIONS = tuple(ADAM_DEFAULTS)
RMSPROP_CONVENTIONS = tuple(RMSPROP_DEFAULTS)


def lr_t_ratio(t, beta1=0.9, beta2=0.999):
    """Keras/TF1 ``lr_t / lr = sqrt(1 - beta2**t) / (1 - beta1**t)``."""
    return math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)


def _as_list(x):
    if isinstance(x, (list, tuple)):
        return [np.array(a, dtype=np.float64) for a in x], False
    return [np.array(x, dtype=np.float64)], True


def _lr_at(lr, t):
    return float(lr(t)) if callable(lr) else float(lr)


# ---------------------------------------------------------------------------------------------
# Adam, one step on one float64 array, in each framework's own form.
# Each takes the decayed-and-sign-flipped gradient handling itself, as the framework does.
# ---------------------------------------------------------------------------------------------


def _adam_step_pytorch(p, g, s, t, lr, b1, b2, eps, wd, decoupled, amsgrad, eps_root, bc):
    """torch.optim.Adam / AdamW (``_single_tensor_adam``), Kingma & Ba Algorithm 1."""
    if decoupled:
        p = p * (1.0 - lr * wd)
    elif wd:
        g = g + wd * p
    s["exp_avg"] = s["exp_avg"] * b1 + (1.0 - b1) * g
    s["exp_avg_sq"] = s["exp_avg_sq"] * b2 + (1.0 - b2) * g * g
    bias_correction1 = 1.0 - b1**t if bc else 1.0
    bias_correction2 = 1.0 - b2**t if bc else 1.0
    step_size = lr / bias_correction1
    bias_correction2_sqrt = math.sqrt(bias_correction2)
    if amsgrad:
        s["max_exp_avg_sq"] = np.maximum(s["max_exp_avg_sq"], s["exp_avg_sq"])
        vv = s["max_exp_avg_sq"]
    else:
        vv = s["exp_avg_sq"]
    if eps_root:  # not a PyTorch option: optax's eps_root, inside the sqrt of v_hat
        denom = np.sqrt(vv / bias_correction2 + eps_root) + eps
    else:
        denom = np.sqrt(vv) / bias_correction2_sqrt + eps
    return p - step_size * (s["exp_avg"] / denom)


def _adam_step_keras(p, g, s, t, lr, b1, b2, eps, wd, decoupled, amsgrad, eps_root, bc):
    """Keras 3 ``Adam.update_step`` (the epsilon-hat form, TF1's formula too)."""
    if decoupled:
        if wd:
            p = p - p * wd * lr  # Keras' ``_apply_weight_decay``
    elif wd:
        g = g + wd * p
    if bc:
        alpha = lr * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
    else:
        alpha = lr
    s["exp_avg"] = s["exp_avg"] + (g - s["exp_avg"]) * (1.0 - b1)
    s["exp_avg_sq"] = s["exp_avg_sq"] + (g * g - s["exp_avg_sq"]) * (1.0 - b2)
    if amsgrad:
        s["max_exp_avg_sq"] = np.maximum(s["max_exp_avg_sq"], s["exp_avg_sq"])
        vv = s["max_exp_avg_sq"]
    else:
        vv = s["exp_avg_sq"]
    return p - (s["exp_avg"] * alpha) / (np.sqrt(vv + eps_root) + eps)


def _adam_step_optax(p, g, s, t, lr, b1, b2, eps, wd, decoupled, amsgrad, eps_root, bc):
    """optax ``scale_by_adam``/``scale_by_amsgrad`` + ``add_decayed_weights`` + ``scale``."""
    if wd and not decoupled:  # add_decayed_weights before the Adam transform: L2
        g = g + wd * p
    s["exp_avg"] = (1.0 - b1) * g + b1 * s["exp_avg"]
    s["exp_avg_sq"] = (1.0 - b2) * (g * g) + b2 * s["exp_avg_sq"]
    m_hat = s["exp_avg"] / (1.0 - b1**t) if bc else s["exp_avg"]
    v_hat = s["exp_avg_sq"] / (1.0 - b2**t) if bc else s["exp_avg_sq"]
    if amsgrad:  # optax keeps the maximum of the bias-corrected v_hat
        s["max_exp_avg_sq"] = np.maximum(s["max_exp_avg_sq"], v_hat)
        v_hat = s["max_exp_avg_sq"]
    u = m_hat / (np.sqrt(v_hat + eps_root) + eps)
    if wd and decoupled:  # adamw: add_decayed_weights after the Adam transform
        u = u + wd * p
    return p + (-lr) * u


def _adam_step_generic(p, g, s, t, lr, b1, b2, eps, wd, decoupled, amsgrad, eps_root, bc,
                       eps_hat, amsgrad_corrected):  # fmt: skip
    """Any combination of the Adam knobs, written from the table's notation."""
    if decoupled:
        p = p - lr * wd * p
    else:
        g = g + wd * p
    bc1 = (1.0 - b1**t) if bc else 1.0
    bc2 = (1.0 - b2**t) if bc else 1.0
    s["exp_avg"] = b1 * s["exp_avg"] + (1.0 - b1) * g
    s["exp_avg_sq"] = b2 * s["exp_avg_sq"] + (1.0 - b2) * g**2
    if eps_hat:
        scale_v = 1.0
        alpha = lr * math.sqrt(bc2) / bc1
    else:
        scale_v = 1.0 / bc2
        alpha = lr / bc1
    if amsgrad and amsgrad_corrected:
        s["max_exp_avg_sq"] = np.maximum(s["max_exp_avg_sq"], scale_v * s["exp_avg_sq"])
        vhat = s["max_exp_avg_sq"]
    elif amsgrad:
        s["max_exp_avg_sq"] = np.maximum(s["max_exp_avg_sq"], s["exp_avg_sq"])
        vhat = scale_v * s["max_exp_avg_sq"]
    else:
        vhat = scale_v * s["exp_avg_sq"]
    return p - alpha * s["exp_avg"] / (np.sqrt(vhat + eps_root) + eps)


_ADAM_FORMS = {
    # convention: (step function, eps_hat, amsgrad on the corrected v_hat)
    "pytorch": (_adam_step_pytorch, False, False),
    "keras": (_adam_step_keras, True, False),
    "tf1": (_adam_step_keras, True, False),
    "optax": (_adam_step_optax, False, True),
}


def adam_reference(
    params0, grads_seq, convention="pytorch", *, lr=None, betas=None, eps=None,
    weight_decay=0.0, decoupled=None, amsgrad=False, maximize=False, eps_root=0.0,
    bias_correction=True, eps_hat=None, amsgrad_corrected=None, adamw=False,
    keep_trajectory=False,
):  # fmt: skip
    """Run Adam in float64 from ``params0`` over the gradients ``grads_seq``.

    Parameters
    ----------
    params0 : array or list of arrays
        Initial parameters (copied, converted to float64).
    grads_seq : sequence
        One entry per step, with the structure of ``params0``.
    convention : str
        'pytorch', 'keras', 'tf1' or 'optax'; supplies the defaults and the formula.
    lr : float or callable ``lr(t)``
    adamw : bool
        AdamW defaults (decoupled decay, the convention's AdamW weight decay when
        ``weight_decay`` is None).
    eps_hat, amsgrad_corrected : bool or None
        Override the convention's formula knobs (then the generic form is used).

    Returns
    -------
    params, state, trajectory
        ``params`` has the structure of ``params0``; ``state`` maps the buffer names
        ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``) to lists of arrays;
        ``trajectory`` is the list of params after each step (when ``keep_trajectory``).
    """
    d = ADAM_DEFAULTS[convention]
    lr = d["lr"] if lr is None else lr
    b1, b2 = d["betas"] if betas is None else betas
    eps = d["eps"] if eps is None else eps
    if decoupled is None:
        decoupled = True if adamw else d["decoupled"]
    if weight_decay is None:
        weight_decay = d["adamw_wd"] if adamw else 0.0
    step_fn, conv_eps_hat, conv_corrected = _ADAM_FORMS[convention]
    if (eps_hat is not None and eps_hat != conv_eps_hat) or (
        amsgrad_corrected is not None and amsgrad_corrected != conv_corrected
    ):
        e_hat = conv_eps_hat if eps_hat is None else eps_hat
        corr = conv_corrected if amsgrad_corrected is None else amsgrad_corrected

        def step_fn(*args):
            return _adam_step_generic(*args, e_hat, corr)

    params, single = _as_list(params0)
    state = {
        "exp_avg": [np.zeros_like(p) for p in params],
        "exp_avg_sq": [np.zeros_like(p) for p in params],
    }
    if amsgrad:
        state["max_exp_avg_sq"] = [np.zeros_like(p) for p in params]
    traj = []
    for t, grads in enumerate(grads_seq, start=1):
        grads, _ = _as_list(grads)
        lr_t = _lr_at(lr, t)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if maximize:
                g = -g
            s = {k: v[i] for k, v in state.items()}
            params[i] = step_fn(
                p, g, s, t, lr_t, b1, b2, eps, weight_decay, decoupled, amsgrad, eps_root,
                bias_correction,
            )  # fmt: skip
            for k in state:
                state[k][i] = s[k]
        if keep_trajectory:
            traj.append([p.copy() for p in params])
    out = params[0] if single else params
    return out, state, traj


# ---------------------------------------------------------------------------------------------
# RMSProp
# ---------------------------------------------------------------------------------------------


def _rms_step_pytorch(p, g, s, t, lr, alpha, eps, mu, centered, wd):
    """torch.optim.RMSprop (``_single_tensor_rmsprop``), with the clamp-at-0 policy."""
    if wd:
        g = g + wd * p
    s["square_avg"] = s["square_avg"] * alpha + (1.0 - alpha) * g * g
    if centered:
        s["grad_avg"] = s["grad_avg"] + (g - s["grad_avg"]) * (1.0 - alpha)  # lerp
        var = s["square_avg"] - s["grad_avg"] * s["grad_avg"]
        avg = np.sqrt(np.maximum(var, 0.0)) + eps
    else:
        avg = np.sqrt(s["square_avg"]) + eps
    if mu > 0:
        s["momentum_buffer"] = s["momentum_buffer"] * mu + g / avg
        return p - lr * s["momentum_buffer"]
    return p - lr * (g / avg)


def _rms_step_basic(p, g, s, t, lr, d, eps):
    """The textbook rule."""
    s["square_avg"] = d * s["square_avg"] + (1.0 - d) * g**2
    return p - lr * g / (np.sqrt(s["square_avg"]) + eps)


def _rms_step_keras(p, g, s, t, lr, rho, eps, mu, centered, wd, decoupled):
    """Keras 3 ``RMSprop.update_step`` (and TF1's, whose mean square starts at 1)."""
    if wd and decoupled:
        p = p - p * wd * lr
    elif wd:
        g = g + wd * p
    s["square_avg"] = rho * s["square_avg"] + (1.0 - rho) * g * g
    if centered:
        s["grad_avg"] = rho * s["grad_avg"] + (1.0 - rho) * g
        denominator = np.maximum(s["square_avg"] - s["grad_avg"] ** 2, 0.0) + eps
    else:
        denominator = s["square_avg"] + eps
    increment = lr * g / np.sqrt(denominator)
    if mu > 0:
        s["momentum_buffer"] = mu * s["momentum_buffer"] + increment
        return p - s["momentum_buffer"]
    return p - increment


def _rms_step_optax(p, g, s, t, lr, decay, eps, mu, centered, wd, decoupled, eps_in_sqrt,
                    bias_correction, nesterov, lr_in_momentum):  # fmt: skip
    """optax ``scale_by_rms``/``scale_by_stddev`` + ``scale_by_learning_rate`` + ``trace``.

    Every RMSProp knob is expressible here, so this is also the generic form.
    """
    if wd and decoupled:
        p = p * (1.0 - lr * wd)
    elif wd:
        g = g + wd * p
    s["square_avg"] = (1.0 - decay) * (g**2) + decay * s["square_avg"]
    nu_hat = s["square_avg"]
    if centered:
        s["grad_avg"] = (1.0 - decay) * g + decay * s["grad_avg"]
        mu_hat = s["grad_avg"]
    if bias_correction:
        corr = 1.0 - decay**t
        nu_hat = nu_hat / corr
        if centered:
            mu_hat = mu_hat / corr
    ms = np.maximum(nu_hat - mu_hat**2, 0.0) if centered else nu_hat
    if eps_in_sqrt:
        scale = 1.0 / np.sqrt(ms + eps)
    else:
        scale = 1.0 / (np.sqrt(ms) + eps)
    if lr_in_momentum:
        u = -lr * (scale * g)
        if mu > 0:
            # optax's trace holds the (negative) update; the state is stored as the descent
            # direction, the sign every other convention (and fastadam) uses for its buffer
            trace = u + mu * (-s["momentum_buffer"])
            s["momentum_buffer"] = -trace
            step = u + mu * trace if nesterov else trace
        else:
            step = u
        return p + step
    # lr outside the buffer (PyTorch's placement), here with optax's other knobs
    u = scale * g
    if mu > 0:
        s["momentum_buffer"] = u + mu * s["momentum_buffer"]
        step = u + mu * s["momentum_buffer"] if nesterov else s["momentum_buffer"]
    else:
        step = u
    return p - lr * step


def rmsprop_reference(
    params0, grads_seq, convention="pytorch", *, lr=None, decay=None, eps=None, momentum=0.0,
    centered=False, weight_decay=0.0, maximize=False, keep_trajectory=False, form=None,
    **knobs,
):  # fmt: skip
    """Run RMSProp in float64 from ``params0`` over the gradients ``grads_seq``.

    ``knobs`` override the convention's ``eps_in_sqrt``, ``lr_in_momentum``,
    ``initial_scale``, ``bias_correction``, ``nesterov``, ``decoupled_weight_decay``. The
    framework's own form is used when the knobs are the convention's; otherwise (or with
    ``form='generic'``) the optax form, which covers every knob.

    Returns ``(params, state, trajectory)`` as :func:`adam_reference` (buffers
    ``square_avg``, ``grad_avg`` when centered, ``momentum_buffer`` when momentum > 0).
    """
    d = RMSPROP_DEFAULTS[convention]
    lr = d["lr"] if lr is None else lr
    decay = d["decay"] if decay is None else decay
    eps = d["eps"] if eps is None else eps
    k = dict(RMSPROP_KNOBS[convention])
    unknown = set(knobs) - set(k)
    if unknown:
        raise TypeError(f"unknown knobs {unknown}")
    default_knobs = all(v is None or v == k[name] for name, v in knobs.items())
    k.update({name: v for name, v in knobs.items() if v is not None})
    if form is None:
        form = convention if default_knobs else "generic"

    params, single = _as_list(params0)
    state = {"square_avg": [np.full_like(p, k["initial_scale"]) for p in params]}
    if centered:
        state["grad_avg"] = [np.zeros_like(p) for p in params]
    if momentum > 0:
        state["momentum_buffer"] = [np.zeros_like(p) for p in params]
    traj = []
    for t, grads in enumerate(grads_seq, start=1):
        grads, _ = _as_list(grads)
        lr_t = _lr_at(lr, t)
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if maximize:
                g = -g
            s = {name: v[i] for name, v in state.items()}
            if form == "basic":
                assert momentum == 0 and not centered and not weight_decay
                p = _rms_step_basic(p, g, s, t, lr_t, decay, eps)
            elif form == "pytorch":
                p = _rms_step_pytorch(p, g, s, t, lr_t, decay, eps, momentum, centered,
                                      weight_decay)  # fmt: skip
            elif form in ("keras", "tf1"):
                p = _rms_step_keras(p, g, s, t, lr_t, decay, eps, momentum, centered,
                                    weight_decay, k["decoupled_weight_decay"])  # fmt: skip
            else:  # optax, or any knob combination
                p = _rms_step_optax(
                    p, g, s, t, lr_t, decay, eps, momentum, centered, weight_decay,
                    k["decoupled_weight_decay"], k["eps_in_sqrt"], k["bias_correction"],
                    k["nesterov"], k["lr_in_momentum"],
                )  # fmt: skip
            params[i] = p
            for name in state:
                state[name][i] = s[name]
        if keep_trajectory:
            traj.append([p.copy() for p in params])
    out = params[0] if single else params
    return out, state, traj


# ---------------------------------------------------------------------------------------------
# NAdam
# ---------------------------------------------------------------------------------------------

# Defaults of each framework's NAdam, from its own signature (torch.optim.NAdam,
# keras.optimizers.Nadam, optax.nadam), not from fastadam. ``momentum_decay`` is psi of the
# schedule mu_t = beta1 * (1 - 0.5 * 0.96**(t * psi)): PyTorch's keyword; Keras writes
# ``0.96 ** local_step`` (psi = 1); optax has no schedule (mu_t = b1: ``schedule=False``).
NADAM_DEFAULTS = {
    "pytorch": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, momentum_decay=4e-3,
                    schedule=True, decoupled=False),
    "keras": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, momentum_decay=1.0,
                  schedule=True, decoupled=True),
    "optax": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, momentum_decay=0.0,
                  schedule=False, decoupled=False),
}  # fmt: skip

NADAM_CONVENTIONS = tuple(NADAM_DEFAULTS)


def _nadam_step_pytorch(p, g, s, t, lr, b1, b2, eps, wd, decoupled, psi, schedule, eps_root,
                        scalar_dtype):  # fmt: skip
    """torch.optim.NAdam, ``_single_tensor_nadam`` (torch 2.x, the non-capturable branch).

    ``mu_product`` is a per-parameter 0-d tensor of ``_get_scalar_dtype()`` (float32 unless
    torch's default dtype is float64: ``scalar_dtype``), multiplied in place by ``mu`` before
    the moments are updated and read back as a Python float; the parameter takes two
    ``addcdiv_`` steps with the same ``denom``. Beyond PyTorch: ``schedule=False`` keeps
    ``mu = beta1`` (optax's NAdam), and ``eps_root`` is added under the square root (optax's
    option). Returns ``(p, |terms| / denom)``.
    """
    step = t
    bias_correction2 = 1 - b2**step
    if wd != 0:
        if decoupled:
            p = p * (1 - lr * wd)  # param.mul_(1 - lr * weight_decay)
        else:
            g = g + wd * p  # grad.add(param, alpha=weight_decay)
    if schedule:
        mu = b1 * (1.0 - 0.5 * (0.96 ** (step * psi)))
        mu_next = b1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * psi)))
    else:
        mu, mu_next = b1, b1
    # mu_product *= mu: in the tensor's dtype (a float32 tensor times a Python float is
    # computed in float32)
    f = scalar_dtype.type
    s["mu_product"] = float(f(f(s["mu_product"]) * f(mu)))
    s["exp_avg"] = s["exp_avg"] + (g - s["exp_avg"]) * (1 - b1)  # lerp_(grad, 1 - beta1)
    s["exp_avg_sq"] = s["exp_avg_sq"] * b2 + (1 - b2) * g * g
    denom = np.sqrt(s["exp_avg_sq"] / bias_correction2 + eps_root)
    mu_product_next = s["mu_product"] * mu_next
    denom = denom + eps
    value_g = -lr * (1.0 - mu) / (1.0 - s["mu_product"])
    value_m = (-lr * mu_next) / (1.0 - mu_product_next)
    p = p + value_g * (g / denom)
    p = p + value_m * (s["exp_avg"] / denom)
    return p, (np.abs(value_g * g) + np.abs(value_m * s["exp_avg"])) / denom


def _nadam_u(b1, step, psi, schedule, decay):
    """Keras' ``beta_1 * (1.0 - 0.5 * (ops.power(decay, local_step)))`` (psi = 1)."""
    return b1 * (1.0 - 0.5 * (decay ** (step * psi))) if schedule else b1


def _nadam_step_keras(p, g, s, t, lr, b1, b2, eps, wd, decoupled, psi, schedule, eps_root,
                      u_product, decay):  # fmt: skip
    """Keras 3 ``Nadam.update_step`` (keras/src/optimizers/nadam.py).

    ``_u_product`` is one variable of the optimizer, multiplied by ``u_t`` once per step in
    ``_backend_update_step`` before any variable is updated (passed in here, already
    updated); the moments are updated as ``assign_add(m, (g - m) * (1 - beta_1))``;
    decoupled weight decay (``_apply_weight_decay``: ``variable - variable * wd * lr``) runs
    before the update. ``decay`` is ``ops.cast(0.96, var_dtype)``: with the TensorFlow
    backend the Python float goes through a float32 constant, so a float64 variable gets
    ``float32(0.96)`` here, while ``_u_product`` is updated with 0.96 (in the optimizer, not
    here). Beyond Keras: psi != 1, ``schedule=False``, L2 decay, ``eps_root``.
    """
    if wd and decoupled:
        p = p - p * wd * lr
    elif wd:
        g = g + wd * p
    local_step, next_step = t, t + 1
    u_t = _nadam_u(b1, local_step, psi, schedule, decay)
    u_t_1 = _nadam_u(b1, next_step, psi, schedule, decay)
    u_product_t = u_product
    u_product_t_1 = u_product_t * u_t_1
    beta_2_power = b2**local_step
    s["exp_avg"] = s["exp_avg"] + (g - s["exp_avg"]) * (1 - b1)
    s["exp_avg_sq"] = s["exp_avg_sq"] + (g * g - s["exp_avg_sq"]) * (1 - b2)
    m_hat = (u_t_1 * s["exp_avg"]) / (1 - u_product_t_1) + ((1 - u_t) * g) / (1 - u_product_t)
    v_hat = s["exp_avg_sq"] / (1 - beta_2_power)
    denom = np.sqrt(v_hat + eps_root) + eps
    p = p - (m_hat * lr) / denom
    terms = (np.abs(u_t_1 * s["exp_avg"] / (1 - u_product_t_1))
             + np.abs((1 - u_t) * g / (1 - u_product_t))) * lr / denom  # fmt: skip
    return p, terms


def _nadam_step_optax(p, g, s, t, lr, b1, b2, eps, wd, decoupled, eps_root):
    """optax ``nadam`` / ``nadamw``: ``scale_by_adam(nesterov=True)`` (optax/_src/transform.py)
    + ``add_decayed_weights`` + ``scale_by_learning_rate``.

    No momentum schedule: ``mu_hat = b1 * bias_correction(mu, b1, count + 2)
    + (1 - b1) * bias_correction(g, b1, count + 1)`` with ``count + 1 = t``. L2 decay is
    ``add_decayed_weights`` chained before ``nadam``; ``nadamw`` adds ``wd * p`` to the
    update after the NAdam transform, and the learning rate scales both.
    """
    if wd and not decoupled:
        g = g + wd * p
    s["exp_avg"] = (1 - b1) * g + b1 * s["exp_avg"]  # update_moment(updates, mu, b1, 1)
    s["exp_avg_sq"] = (1 - b2) * (g**2) + b2 * s["exp_avg_sq"]
    count_inc = t
    m_corr = s["exp_avg"] / (1 - b1 ** (count_inc + 1))
    g_corr = g / (1 - b1**count_inc)
    mu_hat = b1 * m_corr + (1 - b1) * g_corr
    nu_hat = s["exp_avg_sq"] / (1 - b2**count_inc)
    denom = np.sqrt(nu_hat + eps_root) + eps
    u = mu_hat / denom
    if wd and decoupled:
        u = u + wd * p
    terms = lr * (np.abs(b1 * m_corr) + np.abs((1 - b1) * g_corr)) / denom
    return p + (-lr) * u, terms


def nadam_reference(
    params0, grads_seq, convention="pytorch", *, lr=None, betas=None, eps=None,
    weight_decay=0.0, momentum_decay=None, decoupled_weight_decay=None, maximize=False,
    eps_root=0.0, momentum_schedule=None, keep_trajectory=False, form=None, terms=None,
    torch_scalar_dtype=np.float64, keras_decay=0.96,
):  # fmt: skip
    """Run NAdam in float64 from ``params0`` over the gradients ``grads_seq``.

    Each convention in its framework's own form: PyTorch (``_single_tensor_nadam``), Keras 3
    (``Nadam.update_step`` with the optimizer's ``_u_product``), optax (``scale_by_adam`` with
    ``nesterov=True``). With ``momentum_schedule`` other than the convention's, or with
    ``form='pytorch'``, the PyTorch form (which has every knob) is used.

    Parameters
    ----------
    convention : str
        'pytorch', 'keras' or 'optax'; supplies the defaults (``NADAM_DEFAULTS``).
    lr : float or callable ``lr(t)``
    momentum_decay : float
        psi of the schedule ``0.96**(t * psi)`` (PyTorch's keyword; Keras has psi = 1).
    terms : list, optional
        If given, one entry per step is appended: per array, the largest
        ``(|step_m * m| + |step_g * g|) / denom`` (the two terms of the step before they are
        added), for rounding bounds that do not rely on the sum (which may cancel).
    torch_scalar_dtype : numpy dtype
        The dtype of PyTorch's ``mu_product`` tensor (form 'pytorch'): float64 when torch's
        default dtype is float64, else float32 (torch's default).
    keras_decay : float
        The value Keras' ``update_step`` uses for 0.96 (form 'keras'): ``float32(0.96)``
        for a float64 variable with the TensorFlow backend (see :func:`_nadam_step_keras`).

    Returns
    -------
    params, state, trajectory
        As :func:`adam_reference`; ``state`` has ``exp_avg``, ``exp_avg_sq`` (lists of
        arrays) and ``mu_product``: the running product P_t after the last step (a float).
    """
    d = NADAM_DEFAULTS[convention]
    lr = d["lr"] if lr is None else lr
    b1, b2 = d["betas"] if betas is None else betas
    eps = d["eps"] if eps is None else eps
    psi = d["momentum_decay"] if momentum_decay is None else momentum_decay
    decoupled = d["decoupled"] if decoupled_weight_decay is None else decoupled_weight_decay
    schedule = d["schedule"] if momentum_schedule is None else momentum_schedule
    if form is None:
        form = convention if schedule == d["schedule"] else "pytorch"
    if form == "optax" and schedule:
        raise ValueError("optax's NAdam has no momentum schedule")

    params, single = _as_list(params0)
    state = {
        "exp_avg": [np.zeros_like(p) for p in params],
        "exp_avg_sq": [np.zeros_like(p) for p in params],
    }
    mu_products = [1.0] * len(params)  # PyTorch: one per parameter; all equal
    u_product = 1.0  # Keras: one per optimizer
    traj = []
    for t, grads in enumerate(grads_seq, start=1):
        grads, _ = _as_list(grads)
        lr_t = _lr_at(lr, t)
        # Keras' _backend_update_step, once per step: _u_product * beta_1 * (1 - 0.5 * ...)
        u_product = u_product * b1 * ((1.0 - 0.5 * 0.96 ** (t * psi)) if schedule else 1.0)
        step_terms = []
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if maximize:
                g = -g
            s = {k: v[i] for k, v in state.items()}
            args = (p, g, s, t, lr_t, b1, b2, eps, weight_decay, decoupled)
            if form == "pytorch":
                s["mu_product"] = mu_products[i]
                p, term = _nadam_step_pytorch(*args, psi, schedule, eps_root,
                                              np.dtype(torch_scalar_dtype))  # fmt: skip
                mu_products[i] = s.pop("mu_product")
            elif form == "keras":
                p, term = _nadam_step_keras(*args, psi, schedule, eps_root, u_product,
                                            keras_decay)  # fmt: skip
            else:
                p, term = _nadam_step_optax(*args, eps_root)
            params[i] = p
            step_terms.append(float(np.max(term)) if term.size else 0.0)
            for k in state:
                state[k][i] = s[k]
        if terms is not None:
            terms.append(step_terms)
        if keep_trajectory:
            traj.append([p.copy() for p in params])
    # optax keeps no product (it has b1**t): there P_t = b1 * ... * b1, Keras' running form
    state["mu_product"] = mu_products[0] if form == "pytorch" else u_product
    out = params[0] if single else params
    return out, state, traj


# ---------------------------------------------------------------------------------------------
# Test data and tolerances (shared by the test modules)
# ---------------------------------------------------------------------------------------------

#: float64 relative tolerance. One step is ~20 roundings (u = 1.1e-16) in either
#: implementation, and the moments are exponential averages whose relative error stays
#: O(steps * u); over 50 steps that is ~1e-13 on every quantity. 1e-12 leaves a 10x margin
#: and is still 9 orders of magnitude below any formula difference these tests look for
#: (eps = 0.1 placement, bias correction, lr placement: all >= 1e-4 relative).
RTOL64 = 1e-12

U32 = 2.0**-24  # float32 unit roundoff


def schedule(t):
    """A non-constant, non-monotone learning-rate schedule lr(t) > 0."""
    return 0.01 + 0.04 * (1.0 + math.cos(t / 7.0)) / 2.0


def make_data(shapes, n_steps, dtype=np.float64, seed=0, dtypes=None):
    """Random params and gradients whose scale rises and falls (so AMSGrad's max matters)."""
    rng = np.random.default_rng(seed)
    dtypes = dtypes or [dtype] * len(shapes)
    pairs = list(zip(shapes, dtypes, strict=True))
    params = [np.array(rng.standard_normal(s), dtype=dt) for s, dt in pairs]
    grads = []
    for t in range(1, n_steps + 1):
        scale = 0.2 + 2.0 * math.sin(t / 5.0) ** 2
        grads.append(
            [
                np.array(scale * (0.3 + rng.standard_normal(s)), dtype=dt)
                for s, dt in zip(shapes, dtypes, strict=True)
            ]
        )
    return params, grads


def assert_close64(actual, expected, rtol=RTOL64, err_msg=""):
    """Relative agreement, with an absolute floor of ``rtol * max|expected|`` for zeros."""
    expected = np.asarray(expected, dtype=np.float64)
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=rtol * scale,
        err_msg=err_msg,
    )  # fmt: skip


def f32_atol(trajectory):
    """Absolute tolerance for a float32 run against the float64 reference ``trajectory``.

    ``trajectory`` is the list of one array's reference values after each step (index 0:
    the float32 initial values; the gradients are the same float32 values in both runs, so
    there is no chaotic feedback: only rounding accumulates). Per step, in float32:

    - p is rounded: the decay factor cast to float32, the multiply, the final subtraction:
      <= 1.5 u |p| < 2 u max|p|;
    - the step Delta carries ~10 roundings of its own (g*g, the moment updates, sqrt, +eps,
      /, *step_size, the float32 casts of the coefficients) plus the moments' accumulated
      error: exponential averages over at most t terms, each rounded once and weighted by
      float32-rounded beta / (1 - beta), so <= t u relative: (10 + t) u |Delta|.

    Summed over T steps: T u (2 max|p| + (10 + T) max|Delta|). Measured errors over 50
    steps are 10-40x below this bound; it is still ~1e-5 relative, far below any formula
    difference (eps placement at eps = 0.1, bias correction, lr placement: >= 1e-3).
    """
    traj = [np.asarray(a, dtype=np.float64) for a in trajectory]
    n_steps = len(traj) - 1
    if traj[0].size == 0:
        return 0.0
    pmax = max(float(np.max(np.abs(a))) for a in traj)
    dmax = max(float(np.max(np.abs(b - a))) for a, b in zip(traj[:-1], traj[1:], strict=True))
    return n_steps * U32 * (2.0 * pmax + (10 + n_steps) * dmax)


def copy_params(params):
    return [p.copy() for p in params]
