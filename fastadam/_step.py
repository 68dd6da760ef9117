"""One iteration of ``minimize``, compiled: the stop tests and the update, shared by both paths.

The Python loop (:mod:`fastadam._minimize`) and the compiled loop (:mod:`fastadam._compiled`)
call the same two functions, :func:`check` and :func:`update`, so they produce the same
iterates bit for bit. The update itself is the coefficients and compiled loops of
:mod:`fastadam.cpu.kernels` for Adam or RMSProp: no update formula is written here.

State lives in two arrays so that one call from Python carries all of it:

``ws`` (2-D, the dtype of ``x``, C order)
    Row 0 is the iterate ``x`` itself (the user's ``fun`` receives ``ws[0]``); the other rows
    are the optimizer state, the last accepted and best iterates, the ``xtol`` snapshot, the
    bounds and the last gradient. Rows that a run does not need are not allocated; their
    index points at row 0 and they are never read.
``info`` (1-D float64)
    Settings (written once by :mod:`fastadam._options`), row indices (written by
    :func:`allocate`) and the running scalars (iteration count, ``f``, best ``f``, ...).
    The slot names below are module constants so that compiled code reads them as literals.
"""

import numba
import numpy as np
from numba import njit

from .cpu.compile import OPTIONS
from .cpu.kernels import COMPILED, PARALLEL_MIN_SIZE

_ADAM = COMPILED["adam"]
_RMSPROP = COMPILED["rmsprop"]
adam_coefficients, adam_serial, adam_parallel = _ADAM.coefficients, _ADAM.serial, _ADAM.parallel
rmsprop_coefficients = _RMSPROP.coefficients
rmsprop_serial, rmsprop_parallel = _RMSPROP.serial, _RMSPROP.parallel

# -- info slots: settings --------------------------------------------------------------
METHOD = 0  # 0 Adam (and AdamW), 1 RMSProp
# Adam: lr, beta1, beta2, eps, eps_root, weight_decay, decoupled, eps_hat, bias_correction,
#       amsgrad, amsgrad_corrected
# RMSProp: lr, decay, eps, momentum, weight_decay, decoupled, eps_in_sqrt, lr_in_momentum,
#          bias_correction, centered, nesterov, initial_scale
H0 = 1  # first of 12 hyperparameter slots, in the orders above
LR = H0  # the constant learning rate (unused when lr is a schedule)
MAXITER = 13
GTOL = 14
FTOL = 15
XTOL = 16
WINDOW = 17
HAS_BOUNDS = 18
# -- info slots: rows of ws (written by allocate) -----------------------------------------
R_S0 = 19  # Adam m, RMSProp v
R_S1 = 20  # Adam v, RMSProp gbar
R_S2 = 21  # Adam vmax, RMSProp momentum buffer
ROW_A = 22  # three rows for the last accepted and the best iterate and a free one; which is
ROW_B = 23  # which is in LAST_ROW, BEST_ROW, FREE_ROW (their roles rotate, no copies)
R_SNAP = 24
R_LO = 25
R_HI = 26
R_GLAST = 27
# -- info slots: running values ------------------------------------------------------------
NIT = 28  # updates applied to obtain ws[0]
NFEV = 29
NJEV = 30
FUN = 31  # f at the last accepted iterate
GNORM = 32  # inf-norm of its (projected) gradient
BEST_FUN = 33
BEST_NIT = 34
LAST_ROW = 35  # row holding the last accepted iterate
FSUM = 36  # sum of f over the current window
FMEAN_PREV = 37  # mean of f over the previous window (NaN before the first)
FCHANGE = 38  # last |F_j - F_{j-1}| tested by ftol (NaN if none yet)
XCHANGE = 39  # last ||x_k - x_{k-w}||_inf tested by xtol (NaN if none yet)
BAD_NIT = 40  # iteration at which a non-finite value appeared (-1 if none)
BAD_FUN = 41  # the objective value there
SCRATCH = 42  # bit-cast scratch for the gradient norm
EVAL_NIT = 43  # the iteration whose f / gradient are in FUN / GNORM
ROW_C = 44
BEST_ROW = 45  # row holding the best iterate
FREE_ROW = 46  # the row the next iterate is copied to
SIZE = 47

# -- codes returned by check (the status numbers of fastadam._results) -------------------
CONTINUE = -1
GTOL_MET = 0
MAXITER_MET = 1
FTOL_MET = 2
XTOL_MET = 3
NONFINITE_F = 4
NONFINITE_G = 5
BAD_JAC_SIZE = -2

_OPT = OPTIONS
_runtime_ready = False


def ensure_runtime():
    """Start numba's parallel threading layer before the first call of a function below.

    :func:`update` calls the parallel kernels of :mod:`fastadam.kernels`. With numba 0.68, a
    function loaded from the on-disk cache that links a parallel kernel crashes
    (segmentation fault) when it is called before the threading layer has been started in
    the process; starting it first (cheap, once) avoids that.
    """
    global _runtime_ready
    if _runtime_ready:
        return
    numba.get_num_threads()  # public API; it starts the threading layer
    _runtime_ready = True


_ABS64 = np.uint64(0x7FFFFFFFFFFFFFFF)
_INF64 = np.uint64(0x7FF0000000000000)


@njit(**_OPT)
def _scan_copy(g, x, dst, info):
    """Copy ``x`` to ``dst`` and return ``(finite, max|g_i|)``, in one vectorized pass (the
    max is meaningless if not finite)."""
    n = g.size
    if g.itemsize == 8:
        # |g_i| as unsigned integers: ordered like the floats, NaN above Inf; integer max
        # reductions vectorize where float ones do not (without fast-math).
        bits = g.view(np.uint64)
        m = np.uint64(0)
        for i in range(n):
            m = max(m, bits[i] & _ABS64)
            dst[i] = x[i]
        if m >= _INF64:
            return False, np.inf
        info.view(np.uint64)[SCRATCH] = m
        return True, info[SCRATCH]
    bad = False
    m = 0.0
    for i in range(n):
        a = abs(g[i])
        bad |= a - a != 0
        m = max(m, a)
        dst[i] = x[i]
    return not bad, m


@njit(**_OPT)
def _projected_norm(x, g, lo, hi):
    """inf-norm of the gradient projected on the box: components pushing out at an active
    bound are dropped (as in L-BFGS-B)."""
    m = 0.0
    for i in range(x.size):
        gi = g[i]
        if (x[i] <= lo[i] and gi > 0) or (x[i] >= hi[i] and gi < 0):
            continue
        m = max(m, abs(gi))
    return m


@njit(**_OPT)
def _copy(src, dst):
    for i in range(src.size):
        dst[i] = src[i]


@njit(**_OPT)
def inward_bounds(lo, hi, x0):
    """The float64 bounds ``lo``/``hi`` in ``x0``'s dtype, rounded *inward*.

    Returns ``(lo_x, hi_x, bad)``. Rounding to nearest could move a bound outside the box
    (0.3 becomes 0.30000001 in float32, 1e-50 becomes 0); a lower bound is rounded up and an
    upper bound down instead, so that every value in ``[lo_x, hi_x]`` is in ``[lo, hi]``.
    ``bad`` is the first index whose interval holds no finite value of the dtype (-1 if
    none): an interval narrower than the dtype's spacing, or one beyond its range.
    """
    n = lo.size
    lo_x = np.empty(n, dtype=x0.dtype)
    hi_x = np.empty(n, dtype=x0.dtype)
    lim = np.empty(2, dtype=x0.dtype)
    lim[0] = np.inf
    lim[1] = -np.inf
    up = lim[0]  # +inf and -inf in the dtype, so that nextafter stays in it
    down = lim[1]
    bad = -1
    for i in range(n):
        lo_x[i] = lo[i]
        if lo_x[i] < lo[i]:
            lo_x[i] = np.nextafter(lo_x[i], up)
        hi_x[i] = hi[i]
        if hi_x[i] > hi[i]:
            hi_x[i] = np.nextafter(hi_x[i], down)
        if bad < 0 and not (lo_x[i] <= hi_x[i] and lo_x[i] < up and hi_x[i] > down):
            bad = i
    return lo_x, hi_x, bad


@njit(**_OPT)
def allocate(x0, settings, lo, hi):
    """Return ``(ws, info)`` for a run from ``x0`` (projected onto the bounds, if any).

    ``settings`` is the info array of :func:`fastadam._options.settings` (only the settings
    slots are read); ``lo``/``hi`` are the bounds (length ``n``) or empty arrays.
    """
    n = x0.size
    info = settings.copy()
    adam = info[METHOD] == 0
    has_bounds = lo.size > 0
    rows = 1
    info[R_S0] = rows
    rows += 1
    if adam or info[H0 + 9] != 0:  # Adam's v, or RMSProp centered
        info[R_S1] = rows
        rows += 1
    else:
        info[R_S1] = 0
    if (adam and info[H0 + 9] != 0) or (not adam and info[H0 + 3] > 0):  # amsgrad, momentum
        info[R_S2] = rows
        rows += 1
    else:
        info[R_S2] = 0
    info[ROW_A] = rows
    info[ROW_B] = rows + 1
    info[ROW_C] = rows + 2
    info[R_GLAST] = rows + 3
    rows += 4
    if info[XTOL] > 0:
        info[R_SNAP] = rows
        rows += 1
    else:
        info[R_SNAP] = 0
    if has_bounds:
        info[R_LO] = rows
        info[R_HI] = rows + 1
        rows += 2
    else:
        info[R_LO] = 0
        info[R_HI] = 0
    info[HAS_BOUNDS] = 1.0 if has_bounds else 0.0
    ws = np.zeros((rows, n), dtype=x0.dtype)
    x = ws[0]
    _copy(x0, x)
    if not adam:
        init = info[H0 + 11]
        s0 = ws[int(info[R_S0])]
        for i in range(n):
            s0[i] = init
    if has_bounds:
        lo_row = ws[int(info[R_LO])]
        hi_row = ws[int(info[R_HI])]
        _copy(lo, lo_row)
        _copy(hi, hi_row)
        for i in range(n):
            x[i] = min(max(x[i], lo_row[i]), hi_row[i])
    if info[XTOL] > 0:
        _copy(x, ws[int(info[R_SNAP])])
    info[NIT] = 0.0
    info[NFEV] = 0.0
    info[NJEV] = 0.0
    info[FUN] = np.nan
    info[GNORM] = np.nan
    info[BEST_FUN] = np.nan
    info[BEST_NIT] = -1.0
    info[LAST_ROW] = 0.0
    info[BEST_ROW] = 0.0
    info[FREE_ROW] = info[ROW_A]
    info[FSUM] = 0.0
    info[FMEAN_PREV] = np.nan
    info[FCHANGE] = np.nan
    info[XCHANGE] = np.nan
    info[BAD_NIT] = -1.0
    info[BAD_FUN] = np.nan
    info[EVAL_NIT] = -1.0
    return ws, info


@njit(**_OPT)
def check(ws, g, f, info):
    """Accept the evaluation ``f, g`` of the current iterate ``ws[0]`` and run the stop tests.

    Returns :data:`CONTINUE` or the status code of the criterion that fired. On a non-finite
    ``f`` or ``g`` the iterate is restored to the last accepted one (so ``ws[0]`` is always
    an iterate with a finite objective and gradient, except at iteration 0).
    """
    x = ws[0]
    n = x.size
    if g.size != n:
        return BAD_JAC_SIZE
    k = info[NIT]
    free = info[FREE_ROW]
    finite_g, gmax = _scan_copy(g, x, ws[int(free)], info)
    if not (f - f == 0) or not finite_g:
        info[BAD_NIT] = k
        info[BAD_FUN] = f
        if k > 0:
            _copy(ws[int(info[LAST_ROW])], x)
            info[NIT] = k - 1.0
        else:
            info[FUN] = f
            info[GNORM] = gmax if finite_g else np.nan
            info[EVAL_NIT] = 0.0
        return NONFINITE_G if f - f == 0 else NONFINITE_F
    # x_k, now in the free row, is the last accepted iterate (and maybe the best); the next
    # free row is one holding neither
    info[LAST_ROW] = free
    if k == 0 or f < info[BEST_FUN]:
        info[BEST_ROW] = free
        info[BEST_FUN] = f
        info[BEST_NIT] = k
    best = info[BEST_ROW]
    for r in (ROW_A, ROW_B, ROW_C):
        if info[r] != free and info[r] != best:
            info[FREE_ROW] = info[r]
            break
    info[FUN] = f
    info[EVAL_NIT] = k
    if info[HAS_BOUNDS] != 0:
        gmax = _projected_norm(x, g, ws[int(info[R_LO])], ws[int(info[R_HI])])
    info[GNORM] = gmax
    if gmax <= info[GTOL]:
        return GTOL_MET
    w = info[WINDOW]
    if k > 0:
        info[FSUM] += f
        if k % w == 0:
            mean = info[FSUM] / w
            info[FSUM] = 0.0
            prev = info[FMEAN_PREV]
            info[FMEAN_PREV] = mean
            if info[FTOL] > 0 and prev == prev:
                change = abs(mean - prev)
                info[FCHANGE] = change
                if change <= info[FTOL] * max(abs(mean), abs(prev), 1.0):
                    return FTOL_MET
            if info[XTOL] > 0:
                snap = ws[int(info[R_SNAP])]
                dx = 0.0
                xn = 0.0
                for i in range(n):
                    dx = max(dx, abs(x[i] - snap[i]))
                    xn = max(xn, abs(x[i]))
                    snap[i] = x[i]
                info[XCHANGE] = dx
                if dx <= info[XTOL] * max(xn, 1.0):
                    return XTOL_MET
    if k >= info[MAXITER]:
        return MAXITER_MET
    return CONTINUE


@njit(**_OPT)
def update(ws, g, lr, info):
    """Apply one Adam or RMSProp update to ``ws[0]`` with gradient ``g`` and learning rate
    ``lr``, through :mod:`fastadam.kernels`, then project onto the bounds."""
    x = ws[0]
    n = x.size
    t = info[NIT] + 1.0  # a float: beta**t is then the same pow() as in Python
    s0 = ws[int(info[R_S0])]
    s1 = ws[int(info[R_S1])]
    s2 = ws[int(info[R_S2])]
    h = H0
    if info[METHOD] == 0:
        coef = adam_coefficients(
            t, lr, info[h + 1], info[h + 2], info[h + 3], info[h + 4], info[h + 5],
            info[h + 6] != 0, info[h + 7] != 0, info[h + 8] != 0, False, info[h + 9] != 0,
            info[h + 10] != 0,
        )  # fmt: skip
        if n >= PARALLEL_MIN_SIZE:
            adam_parallel(x, g, s0, s1, s2, coef)
        else:
            adam_serial(x, g, s0, s1, s2, coef)
    else:
        coef = rmsprop_coefficients(
            t, lr, info[h + 1], info[h + 2], info[h + 3], info[h + 4], info[h + 5] != 0,
            info[h + 6] != 0, info[h + 7] != 0, info[h + 8] != 0, False, info[h + 9] != 0,
            info[h + 10] != 0,
        )  # fmt: skip
        if n >= PARALLEL_MIN_SIZE:
            rmsprop_parallel(x, g, s0, s1, s2, coef)
        else:
            rmsprop_serial(x, g, s0, s1, s2, coef)
    if info[HAS_BOUNDS] != 0:
        lo = ws[int(info[R_LO])]
        hi = ws[int(info[R_HI])]
        for i in range(n):
            x[i] = min(max(x[i], lo[i]), hi[i])
    info[NIT] = t


@njit(**_OPT)
def iterate(ws, g, f, lr, info):
    """:func:`check`, then :func:`update` unless a criterion fired (one call from Python)."""
    code = check(ws, g, f, info)
    if code == CONTINUE:
        update(ws, g, lr, info)
    return code
