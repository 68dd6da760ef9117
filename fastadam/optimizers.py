"""Optimizer objects: :class:`Adam`, :class:`AdamW` and :class:`RMSProp`.

They own the state arrays, resolve a convention into coefficients once per step (in float64,
on the host) and call the kernels of :mod:`fastadam.kernels` once per dtype for all their
arrays. Changing ``lr`` (or passing a schedule) never recompiles anything.
"""

from dataclasses import replace

import numpy as np

from . import _cpu, rules
from . import _validation as val
from .conventions import adam_convention, rmsprop_convention

__all__ = ["Adam", "AdamW", "RMSProp"]


class _Optimizer:
    """Shared machinery: parameters, state arrays, validation, state_dict."""

    _state_names = ()  # names of the per-array state buffers, in kernel order

    def __init__(self, params, lr, skip_nonfinite, stream, mixed_precision):
        self._backend = _backend_for(params)
        self._params, self._single = self._backend.check_params(
            params, val.check_bool(mixed_precision, "mixed_precision")
        )
        self._stream = self._backend.check_stream(stream)
        self._lr = val.check_lr(lr)
        self.skip_nonfinite = val.check_bool(skip_nonfinite, "skip_nonfinite")
        self.t = 0
        # one group of array indices per dtype, so that each kernel call sees one dtype
        groups = {}
        for i, p in enumerate(self._params):
            groups.setdefault(p.dtype, []).append(i)
        self._groups = list(groups.values())
        self._skips = [self._backend.counters(len(idx)) for idx in self._groups]

    def _allocate(self, used, initial=None):
        """Allocate the state buffers named in ``used``; the others are not accessed by the
        kernels and are passed as aliases of the first buffer."""
        initial = initial or {}
        b = self._backend
        self._state = {}
        for name in self._state_names:
            if name in used:
                self._state[name] = [
                    b.full(p, initial.get(name, 0.0), self._stream) for p in self._params
                ]
        first = self._state[self._state_names[0]]
        buffers = (
            [b.flat(p) for p in self._params],
            *(self._state.get(name, first) for name in self._state_names),
        )
        # per dtype group: the tuples of parameter and state arrays that every step passes
        self._group_args = [
            tuple(tuple(a[i] for i in idx) for a in buffers) for idx in self._groups
        ]

    # -- learning rate -------------------------------------------------------------------
    @property
    def lr(self):
        """The learning rate: a float, or a callable ``lr(t)`` evaluated at every step."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = val.check_lr(value)

    @property
    def nonfinite_skips(self):
        """Per parameter array, the number of steps skipped for a non-finite gradient."""
        out = np.zeros(len(self._params), dtype=np.int64)
        for idx, skips in zip(self._groups, self._skips, strict=True):
            out[idx] = self._backend.to_numpy(skips)
        return out

    @property
    def params(self):
        """The parameter arrays (updated in place): one array or a list, as passed."""
        return self._params[0] if self._single else list(self._params)

    # -- stepping ------------------------------------------------------------------------
    def step(self, grads):
        """Apply one update in place.

        Parameters
        ----------
        grads : ndarray or list of ndarray
            Same structure, shapes and dtypes as ``params``.

        Raises
        ------
        TypeError, ValueError
            Mismatched or invalid gradients, or a schedule returning an invalid ``lr``;
            nothing is written in that case.
        """
        b = self._backend
        grads = b.check_grads(grads, self._params, self._single)
        t = self.t + 1
        coef = self._coefficients(t, val.lr_at(self._lr, t))
        many = self._many(b)
        if len(self._groups) == 1:
            ps, *state = self._group_args[0]
            gs = tuple(map(b.flat, grads))
            many(ps, gs, *state, coef, self.skip_nonfinite, self._skips[0], self._stream)
        else:
            for idx, (ps, *state), skips in zip(
                self._groups, self._group_args, self._skips, strict=True
            ):
                gs = tuple(b.flat(grads[i]) for i in idx)
                many(ps, gs, *state, coef, self.skip_nonfinite, skips, self._stream)
        self.t = t

    # -- state ---------------------------------------------------------------------------
    def state_dict(self):
        """The optimizer state as a flat dict of numpy arrays and Python scalars.

        It can be saved with ``np.savez(file, **opt.state_dict())`` and restored with
        ``opt.load_state_dict(np.load(file))``. Keys: ``optimizer``, ``convention``, ``t``,
        ``nonfinite_skips`` and ``<buffer>.<i>`` for each state buffer and parameter array
        (copies, shaped like the parameters).
        """
        out = {
            "optimizer": type(self).__name__,
            "convention": self.convention.name,
            "t": int(self.t),
            "nonfinite_skips": self.nonfinite_skips,
        }
        for name, buffers in self._state.items():
            for i, (b, p) in enumerate(zip(buffers, self._params, strict=True)):
                out[f"{name}.{i}"] = self._backend.to_numpy(b).reshape(p.shape)
        return out

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict`; the resumed run is bitwise identical.

        Raises
        ------
        ValueError
            The state comes from another optimizer type or convention, has other buffers
            (for example AMSGrad on one side only) or other shapes or dtypes. Nothing is
            changed in that case.
        """

        def scalar(key):
            if key not in state:
                raise ValueError(f"state is missing {key!r}; was it made by state_dict()?")
            value = state[key]
            return value.item() if isinstance(value, np.ndarray) else value

        kind = scalar("optimizer")
        if kind != type(self).__name__:
            raise ValueError(f"state comes from a {kind} optimizer, not {type(self).__name__}")
        conv = scalar("convention")
        if conv != self.convention.name:
            raise ValueError(
                f"state comes from convention {conv!r}, this optimizer uses "
                f"{self.convention.name!r}"
            )
        t = scalar("t")
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 0:
            raise ValueError(f"state['t'] must be a non-negative integer, got {t!r}")
        expected = {f"{n}.{i}" for n in self._state for i in range(len(self._params))}
        given = {k for k in state if "." in k}
        if given != expected:
            raise ValueError(
                f"state buffers do not match this optimizer: missing {sorted(expected - given)},"
                f" unexpected {sorted(given - expected)}"
            )
        skips = np.asarray(state.get("nonfinite_skips", np.zeros(len(self._params))))
        if skips.shape != (len(self._params),):
            raise ValueError("state['nonfinite_skips'] has the wrong length")
        for key in expected:
            i = int(key.rsplit(".", 1)[1])
            a, p = np.asarray(state[key]), self._params[i]
            dtype = self._state[key.rsplit(".", 1)[0]][i].dtype
            if a.shape != p.shape or a.dtype != dtype:
                raise ValueError(
                    f"state[{key!r}] is {a.dtype} {a.shape}; this optimizer's buffer for "
                    f"parameter {i} is {dtype} {p.shape}"
                )
        for name, buffers in self._state.items():
            for i, b in enumerate(buffers):
                self._backend.assign(b, state[f"{name}.{i}"])
        for idx, group_skips in zip(self._groups, self._skips, strict=True):
            self._backend.assign(group_skips, skips[idx])
        self.t = int(t)

    def __repr__(self):
        sizes = ", ".join(f"{p.dtype}{list(p.shape)}" for p in self._params)
        return (
            f"{type(self).__name__}(convention={self.convention.name!r}, lr={self._lr!r}, "
            f"t={self.t}, params=[{sizes}])"
        )


class Adam(_Optimizer):
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
    params : ndarray or list of ndarray
        float32 or float64, C-contiguous, writeable; updated in place by :meth:`step`.
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
        Convention knobs, see :class:`fastadam.conventions.AdamConvention`.

    Attributes
    ----------
    t : int
        Steps taken.
    convention : AdamConvention
        The resolved convention (knobs included).
    nonfinite_skips : ndarray of int64
        Per array, the number of steps skipped for a non-finite gradient.

    Examples
    --------
    >>> import numpy as np, fastadam as fa
    >>> x = np.array([1.0, -2.0])
    >>> opt = fa.Adam(x, lr=0.1)
    >>> opt.step(2 * x)            # gradient of sum(x**2)
    >>> x                           # the first Adam step moves each element by lr
    array([ 0.9, -1.9])
    """

    _state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled_default = None

    def __init__(
        self, params, lr=None, betas=None, eps=None, *, weight_decay=None,
        decoupled_weight_decay=None, amsgrad=False, maximize=False, eps_root=None,
        bias_correction=None, convention="pytorch", skip_nonfinite=False, stream=None,
        mixed_precision=False, **knobs,
    ):  # fmt: skip
        conv = adam_convention(convention, _caller=_caller(self, Adam.__init__), **knobs)
        if bias_correction is not None:
            conv = replace(
                conv, bias_correction=val.check_bool(bias_correction, "bias_correction")
            )
        decoupled = self._decoupled_default if decoupled_weight_decay is None else (
            val.check_bool(decoupled_weight_decay, "decoupled_weight_decay"))  # fmt: skip
        if decoupled is None:
            decoupled = conv.decoupled_weight_decay
        conv = replace(conv, decoupled_weight_decay=decoupled)
        if weight_decay is None:
            weight_decay = conv.adamw_weight_decay if self._decoupled_default else 0.0
        if betas is None:
            betas = (conv.beta1, conv.beta2)
        if not isinstance(betas, (tuple, list, np.ndarray)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (val.check_beta(betas[0], "beta1"), val.check_beta(betas[1], "beta2"))
        self.eps_root = val.check_real(conv.eps_root if eps_root is None else eps_root,
                                       "eps_root", low=0.0)  # fmt: skip
        self.eps = val.check_real(conv.eps if eps is None else eps, "eps", low=0.0)
        if self.eps == 0 and self.eps_root == 0:
            raise ValueError(
                "eps=0 (with eps_root=0) divides by zero wherever a gradient element has "
                f"always been 0; use eps > 0 (convention {conv.name!r} default: {conv.eps:g})"
            )
        self.weight_decay = val.check_real(weight_decay, "weight_decay", low=0.0)
        self.amsgrad = val.check_bool(amsgrad, "amsgrad")
        self.maximize = val.check_bool(maximize, "maximize")
        if self.amsgrad and not conv.has_amsgrad:
            raise ValueError(f"convention {conv.name!r} has no amsgrad; use 'keras' or 'pytorch'")
        if (self.weight_decay or self._decoupled_default) and not conv.has_weight_decay:
            raise ValueError(
                f"convention {conv.name!r} has no weight decay (so no AdamW); use 'keras' for "
                "the same epsilon-hat formula with decoupled decay"
            )
        self.convention = conv
        super().__init__(
            params, conv.lr if lr is None else lr, skip_nonfinite, stream, mixed_precision
        )
        used = {"exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if self.amsgrad else set())
        self._allocate(used)

    @staticmethod
    def _many(backend):
        return backend.adam_many

    def _coefficients(self, t, lr):
        c = self.convention
        return rules.adam_coefficients(
            t, lr, self.betas[0], self.betas[1], self.eps, self.eps_root, self.weight_decay,
            c.decoupled_weight_decay, c.eps_hat, c.bias_correction, self.maximize,
            self.amsgrad, c.amsgrad_corrected,
        )  # fmt: skip


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


class RMSProp(_Optimizer):
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
    params : ndarray or list of ndarray
        float32 or float64, C-contiguous, writeable; updated in place by :meth:`step`.
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
    **knobs
        ``eps_in_sqrt``, ``lr_in_momentum``, ``initial_scale``, ``bias_correction``,
        ``nesterov``, ``decoupled_weight_decay``: see
        :class:`fastadam.conventions.RMSPropConvention` (``nesterov`` changes nothing
        without momentum, as in optax).
    """

    _state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(
        self, params, lr=None, decay=None, eps=None, *, momentum=0.0, centered=False,
        weight_decay=0.0, maximize=False, convention="pytorch", skip_nonfinite=False, stream=None,
        mixed_precision=False, **knobs,
    ):  # fmt: skip
        conv = rmsprop_convention(convention, _caller=_caller(self, RMSProp.__init__), **knobs)
        self.decay = val.check_real(conv.decay if decay is None else decay, "decay",
                                    low=0.0, high=1.0, high_open=True)  # fmt: skip
        self.eps = val.check_real(conv.eps if eps is None else eps, "eps", low=0.0)
        self.momentum = val.check_real(momentum, "momentum", low=0.0)
        self.centered = val.check_bool(centered, "centered")
        self.weight_decay = val.check_real(weight_decay, "weight_decay", low=0.0)
        self.maximize = val.check_bool(maximize, "maximize")
        val.check_real(conv.initial_scale, "initial_scale", low=0.0)
        if not conv.has_momentum and (self.momentum or self.centered or conv.nesterov):
            raise ValueError(
                f"convention {conv.name!r} has no momentum or centering; use 'pytorch'"
            )
        if self.weight_decay and not conv.has_weight_decay:
            raise ValueError(f"convention {conv.name!r} has no weight decay; use 'pytorch'")
        if self.eps == 0 and (self.centered or conv.initial_scale == 0):
            raise ValueError(
                "eps=0 divides by zero wherever the mean square is 0 (a gradient element "
                f"that has always been 0); use eps > 0 (convention {conv.name!r} default: "
                f"{conv.eps:g})"
            )
        self.convention = conv
        super().__init__(
            params, conv.lr if lr is None else lr, skip_nonfinite, stream, mixed_precision
        )
        used = {"square_avg"}
        if self.centered:
            used.add("grad_avg")
        if self.momentum > 0:
            used.add("momentum_buffer")
        self._allocate(used, {"square_avg": conv.initial_scale})

    @staticmethod
    def _many(backend):
        return backend.rmsprop_many

    def _coefficients(self, t, lr):
        c = self.convention
        return rules.rmsprop_coefficients(
            t, lr, self.decay, self.eps, self.momentum, self.weight_decay,
            c.decoupled_weight_decay, c.eps_in_sqrt, c.lr_in_momentum, c.bias_correction,
            self.maximize, self.centered, c.nesterov,
        )  # fmt: skip


def _caller(opt, init):
    """The class name and explicit keywords, for the unknown-keyword message."""
    names = init.__code__.co_varnames[
        1 : init.__code__.co_argcount + init.__code__.co_kwonlyargcount
    ]
    return type(opt).__name__, [n for n in names if n != "params"]


def _backend_for(params):
    """The CPU backend for numpy arrays, the GPU backend for CUDA arrays."""
    first = params[0] if isinstance(params, (list, tuple)) and params else params
    if not isinstance(first, np.ndarray) and (
        hasattr(first, "__cuda_array_interface__")
        or type(first).__module__.startswith("numba.cuda")
    ):
        from . import _gpu

        return _gpu
    return _cpu
