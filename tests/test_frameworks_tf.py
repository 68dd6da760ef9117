"""Optional cross-checks against Keras 3 and TensorFlow 1 graph mode (skipped when keras or
tensorflow is not installed; CI does not install them).

fastadam's ``keras`` convention against ``keras.optimizers.Adam``/``AdamW``/``RMSprop``
(applied eagerly with ``apply_gradients``), its ``tf1`` convention against
``tf.compat.v1.train.AdamOptimizer``/``RMSPropOptimizer`` in graph mode (one
``sess.run(train_op)`` per step), tf-keras' ``adaptive_epsilon`` against ``eps_hat``, and
TF1's sparse RMSProp against what fastadam does instead. 50 steps, two arrays, float32 and
float64, non-default hyperparameters and a large eps (its placement matters).

**The hyperparameters are float32-exact** (0.0625, 0.875, 0.9921875, ...). Keras 3 keeps
the learning rate in a float32 variable and rounds ``weight_decay`` and, in Adam's bias
correction, the betas to float32 (a Python float goes through a float32 constant); TF1
rounds every hyperparameter to float32. With such values a float64 run of theirs agrees
with fastadam's to ~1e-16 (with 0.02, 0.8, 0.99 only to ~1e-7:
``test_keras_rounds_the_learning_rate_to_float32`` and docs/conventions.rst).

Tolerances:

- float64: ``naive.RTOL64`` = 1e-12 relative (two independent float64 implementations over
  50 steps: O(steps * u) = ~1e-14, see tests/naive.py). TF1 Adam keeps its beta powers in
  float32 variables: to RTOL64 once fastadam is given TF1's float32 powers (through an lr
  schedule), and without them within the bound of ``_tf1_power_bound``.
- float32: both runs against fastadam's float64 run on the same float32 data are within
  ``naive.f32_atol`` (a rounding-error bound over 50 steps, see its docstring), so they are
  within twice that of each other.
"""

import os

import numpy as np
import pytest
from naive import RTOL64, assert_close64, f32_atol, make_data

import fastadam as fa

N_STEPS = 50
SHAPES = [(7,), (3, 4)]
DTYPES = [np.float64, np.float32]

# float32-exact hyperparameters: sums of a few powers of two
LR = 0.0625
BETAS = (0.875, 0.9921875)
EPS = 0.125  # large: where eps sits changes the result by far more than any tolerance
DECAY = 0.9375
MOMENTUM = 0.875
WD = 0.125


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("keras", minversion="3")


@pytest.fixture(scope="module")
def tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return pytest.importorskip("tensorflow")


def _data(dtype, seed):
    return make_data(SHAPES, N_STEPS, dtype=dtype, seed=seed)


def _fastadam(cls, params, grads, dtype=None, **kw):
    """fastadam's run on copies of params (cast to dtype); the trajectory of each array."""
    dtype = dtype or params[0].dtype
    ours = [p.astype(dtype) for p in params]
    opt = cls(ours, **kw)
    traj = [[p.copy()] for p in ours]
    for g in grads:
        opt.step([gi.astype(dtype) for gi in g])
        for tr, p in zip(traj, ours, strict=True):
            tr.append(p.copy())
    return traj


def _compare(theirs, params, grads, cls, **kw):
    """Compare their trajectory (arrays after each step) with fastadam's, step by step.

    float64: RTOL64 relative. float32: within 2 * f32_atol of fastadam's float32 run (both
    are within f32_atol of fastadam's float64 run on the same data). Returns the largest
    difference relative to max|theirs|.
    """
    max_err = 0.0
    dtype = params[0].dtype
    ours = _fastadam(cls, params, grads, **kw)
    ref64 = _fastadam(cls, params, grads, dtype=np.float64, **kw) if dtype == np.float32 else ours
    for i, (mine, their) in enumerate(zip(ours, theirs, strict=True)):
        atol = 2 * f32_atol(ref64[i]) if dtype == np.float32 else None
        for t in range(1, N_STEPS + 1):
            a, b = mine[t], np.asarray(their[t - 1])
            assert a.dtype == b.dtype == dtype
            scale = float(np.max(np.abs(b)))
            max_err = max(max_err, float(np.max(np.abs(a - b))) / scale)
            if atol is None:
                assert_close64(a, b, rtol=RTOL64, err_msg=f"array {i}, t={t}")
            else:
                np.testing.assert_allclose(a, b, rtol=0, atol=atol, err_msg=f"array {i}, t={t}")
    return max_err


# ---------------------------------------------------------------------------------------------
# Keras 3
# ---------------------------------------------------------------------------------------------

KERAS_CASES = [
    ("Adam", dict(beta_1=BETAS[0], beta_2=BETAS[1], epsilon=EPS),
     fa.Adam, dict(betas=BETAS, eps=EPS)),
    ("Adam", dict(beta_1=BETAS[0], beta_2=BETAS[1], epsilon=EPS, amsgrad=True),
     fa.Adam, dict(betas=BETAS, eps=EPS, amsgrad=True)),
    ("Adam", dict(beta_1=BETAS[0], beta_2=BETAS[1], epsilon=EPS, weight_decay=WD),
     fa.Adam, dict(betas=BETAS, eps=EPS, weight_decay=WD)),
    ("AdamW", dict(beta_1=BETAS[0], beta_2=BETAS[1], epsilon=EPS, weight_decay=WD),
     fa.AdamW, dict(betas=BETAS, eps=EPS, weight_decay=WD)),
    ("AdamW", dict(beta_1=BETAS[0], beta_2=BETAS[1], epsilon=EPS, weight_decay=WD,
                   amsgrad=True),
     fa.AdamW, dict(betas=BETAS, eps=EPS, weight_decay=WD, amsgrad=True)),
    ("RMSprop", dict(rho=DECAY, epsilon=EPS),
     fa.RMSProp, dict(decay=DECAY, eps=EPS)),
    ("RMSprop", dict(rho=DECAY, epsilon=EPS, momentum=MOMENTUM),
     fa.RMSProp, dict(decay=DECAY, eps=EPS, momentum=MOMENTUM)),
    ("RMSprop", dict(rho=DECAY, epsilon=EPS, centered=True),
     fa.RMSProp, dict(decay=DECAY, eps=EPS, centered=True)),
    ("RMSprop", dict(rho=DECAY, epsilon=EPS, momentum=MOMENTUM, centered=True,
                     weight_decay=WD),
     fa.RMSProp, dict(decay=DECAY, eps=EPS, momentum=MOMENTUM, centered=True,
                      weight_decay=WD)),
]  # fmt: skip


def _case_ids(cases):
    def short(kw):
        return ",".join(k if v is True else f"{k}={v:g}" for k, v in kw.items())

    return [f"{c[0]}({short(c[1])})" for c in cases]


def _keras_run(keras, name, kw, params, grads, lr=LR):
    dtype = params[0].dtype
    variables = [keras.Variable(p.copy(), dtype=dtype.name) for p in params]
    opt = getattr(keras.optimizers, name)(learning_rate=lr, **kw)
    out = []
    for g in grads:
        tensors = [keras.ops.convert_to_tensor(gi, dtype=dtype.name) for gi in g]
        opt.apply_gradients(list(zip(tensors, variables, strict=True)))
        out.append([np.asarray(v.numpy()) for v in variables])
    return [list(step) for step in zip(*out, strict=True)]  # per array: one entry per step


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("name,kkw,cls,fkw", KERAS_CASES, ids=_case_ids(KERAS_CASES))
def test_against_keras(keras, name, kkw, cls, fkw, dtype):
    params, grads = _data(dtype, seed=41)
    theirs = _keras_run(keras, name, kkw, params, grads)
    _compare(theirs, params, grads, cls, lr=LR, convention="keras", **fkw)


def test_keras_rounds_the_learning_rate_to_float32(keras):
    """Keras keeps ``learning_rate`` in a float32 variable: a float64 run with lr = 0.02
    agrees with fastadam given float32(0.02), not with fastadam given 0.02."""
    params, grads = _data(np.float64, seed=42)
    kw = dict(rho=DECAY, epsilon=EPS, momentum=MOMENTUM)
    theirs = _keras_run(keras, "RMSprop", kw, params, grads, lr=0.02)
    fkw = dict(convention="keras", decay=DECAY, eps=EPS, momentum=MOMENTUM)
    exact = _fastadam(fa.RMSProp, params, grads, lr=0.02, **fkw)
    rounded = _fastadam(fa.RMSProp, params, grads, lr=float(np.float32(0.02)), **fkw)
    last = np.asarray(theirs[0][-1])
    rel = np.max(np.abs(exact[0][-1] - last)) / np.max(np.abs(last))
    assert 1e-9 < rel < 1e-6  # measured 2e-8: float32(0.02) = 0.02 * (1 + 2.2e-8)
    assert_close64(rounded[0][-1], last)


def test_tf_keras_adaptive_epsilon_is_eps_hat_false():
    """tf-keras' ``Adam(adaptive_epsilon=True)`` uses eps * sqrt(1 - beta2^t) (Algorithm 1,
    fastadam's ``eps_hat=False``); the default ``adaptive_epsilon=False`` is the Keras form
    (``eps_hat=True``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tf_keras = pytest.importorskip("tf_keras")
    import tensorflow as tf

    if not hasattr(tf_keras.optimizers.Adam(), "adaptive_epsilon"):
        pytest.skip("this tf-keras has no adaptive_epsilon")
    params, grads = _data(np.float64, seed=43)
    for adaptive in (True, False):
        variables = [tf.Variable(p.copy()) for p in params]
        opt = tf_keras.optimizers.Adam(learning_rate=LR, beta_1=BETAS[0], beta_2=BETAS[1],
                                       epsilon=EPS, adaptive_epsilon=adaptive,
                                       jit_compile=False)  # fmt: skip
        theirs = [[] for _ in params]
        for g in grads:
            opt.apply_gradients(zip([tf.constant(gi) for gi in g], variables, strict=True))
            for tr, v in zip(theirs, variables, strict=True):
                tr.append(v.numpy())
        _compare(theirs, params, grads, fa.Adam, lr=LR, betas=BETAS, eps=EPS,
                 convention="keras", eps_hat=not adaptive)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# TensorFlow 1, graph mode
# ---------------------------------------------------------------------------------------------


def _tf1_run(tf, name, kw, params, grads):
    """tf.compat.v1.train.<name>(**kw) in a graph: one sess.run(train_op) per step."""
    v1 = tf.compat.v1
    dtype = tf.as_dtype(params[0].dtype)
    graph = tf.Graph()
    with graph.as_default():
        variables = [v1.Variable(p.copy(), dtype=dtype) for p in params]
        feeds = [v1.placeholder(dtype, shape=p.shape) for p in params]
        opt = getattr(v1.train, name)(**kw)
        train_op = opt.apply_gradients(list(zip(feeds, variables, strict=True)))
        init = v1.global_variables_initializer()
    theirs = [[] for _ in params]
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        for g in grads:
            sess.run(train_op, feed_dict=dict(zip(feeds, g, strict=True)))
            for tr, value in zip(theirs, sess.run(variables), strict=True):
                tr.append(value)
    return theirs


def _tf1_powers(beta, n_steps):
    """TF1's beta powers: a float32 variable that starts at beta and is multiplied by beta
    (in float32) after each step."""
    b = np.float32(beta)
    out, p = [], b
    for _ in range(n_steps):
        out.append(float(p))
        p = np.float32(p * b)
    return np.array(out)


def _tf1_lr_factor(betas):
    """lr(t) multiplier that turns fastadam's bias correction (beta^t in float64) into TF1's
    (beta^t accumulated in float32): sqrt(1 - P2) / (1 - P1) over the float64 one."""
    t = np.arange(1, N_STEPS + 1)
    p1, p2 = _tf1_powers(betas[0], N_STEPS), _tf1_powers(betas[1], N_STEPS)
    exact = np.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t)
    return np.sqrt(1 - p2) / (1 - p1) / exact


def _tf1_power_bound(betas, traj):
    """Bound on the float64 difference that TF1's float32 beta powers cause.

    Without weight decay the moments do not depend on the parameters, so TF1's step t is
    fastadam's times the factor of ``_tf1_lr_factor`` (its float32 beta^t carries up to t-1
    roundings) and the differences add up: sum over t of |factor - 1| times the largest
    step, plus the float64 tolerance. Measured: 1.1e-7 of max|x| against a bound of 1.9e-7.
    """
    dev = np.abs(_tf1_lr_factor(betas) - 1.0)
    steps = [np.max(np.abs(b - a)) for a, b in zip(traj[:-1], traj[1:], strict=True)]
    return float(np.sum(dev) * max(steps)) + RTOL64 * max(np.max(np.abs(a)) for a in traj)


TF1_RMSPROP_CASES = [
    dict(decay=DECAY, epsilon=EPS),
    dict(decay=DECAY, epsilon=EPS, momentum=MOMENTUM),
    dict(decay=DECAY, epsilon=EPS, centered=True),
    dict(decay=DECAY, epsilon=EPS, momentum=MOMENTUM, centered=True),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize(
    "kw", TF1_RMSPROP_CASES, ids=_case_ids([("RMSProp", c) for c in TF1_RMSPROP_CASES])
)
def test_against_tf1_rmsprop(tf, kw, dtype):
    params, grads = _data(dtype, seed=44)
    theirs = _tf1_run(tf, "RMSPropOptimizer", dict(learning_rate=LR, **kw), params, grads)
    fkw = dict(kw)
    fkw["eps"] = fkw.pop("epsilon")
    _compare(theirs, params, grads, fa.RMSProp, lr=LR, convention="tf1", **fkw)


def test_against_tf1_adam_float32(tf):
    params, grads = _data(np.float32, seed=45)
    kw = dict(learning_rate=LR, beta1=BETAS[0], beta2=BETAS[1], epsilon=EPS)
    theirs = _tf1_run(tf, "AdamOptimizer", kw, params, grads)
    _compare(theirs, params, grads, fa.Adam, lr=LR, betas=BETAS, eps=EPS,
             convention="tf1")  # fmt: skip


def test_against_tf1_adam_float64(tf):
    """TF1 keeps beta1^t and beta2^t in float32 variables even for float64 parameters, so
    its bias correction is off by up to (t-1) float32 roundings. With that one difference
    put back (through an lr schedule) the runs agree to RTOL64; without it, to the bound of
    ``_tf1_power_bound`` (measured ~1e-7 relative)."""
    params, grads = _data(np.float64, seed=46)
    kw = dict(learning_rate=LR, beta1=BETAS[0], beta2=BETAS[1], epsilon=EPS)
    theirs = _tf1_run(tf, "AdamOptimizer", kw, params, grads)
    factor = _tf1_lr_factor(BETAS)
    assert np.max(np.abs(factor - 1)) > 1e-9  # the float32 powers do differ

    def lr(t):
        return LR * float(factor[t - 1])

    fkw = dict(betas=BETAS, eps=EPS, convention="tf1")
    _compare(theirs, params, grads, fa.Adam, lr=lr, **fkw)
    plain = _fastadam(fa.Adam, params, grads, lr=LR, **fkw)
    for mine, their in zip(plain, theirs, strict=True):
        bound = _tf1_power_bound(BETAS, mine)
        for t in range(1, N_STEPS + 1):
            np.testing.assert_allclose(mine[t], their[t - 1], rtol=0, atol=bound)


def test_tf1_sparse_rmsprop_updates_only_the_rows_present(tf):
    """With an IndexedSlices gradient (tf.gather), TF1's RMSProp leaves the rows that are not
    gathered untouched (parameter, mean square and momentum). That is one fastadam RMSProp
    per row, stepped only when the row is present; fastadam's dense step on the whole array
    (absent rows: gradient 0) moves those rows on by momentum and decays their mean square."""
    v1 = tf.compat.v1
    rng = np.random.default_rng(47)
    x0 = rng.standard_normal((4, 3))
    rows_per_step = [[0, 1, 2, 3], [0, 2], [2, 3], [0, 2]]
    grads = [rng.standard_normal((len(r), 3)) for r in rows_per_step]
    kw = dict(decay=DECAY, momentum=MOMENTUM)
    graph = tf.Graph()
    with graph.as_default():
        var = v1.Variable(x0.copy())
        rows = v1.placeholder(tf.int32, shape=[None])
        gvals = v1.placeholder(tf.float64, shape=[None, 3])
        loss = tf.reduce_sum(tf.gather(var, rows) * gvals)  # d loss / d rows = gvals
        opt = v1.train.RMSPropOptimizer(LR, epsilon=EPS, **kw)
        grad = opt.compute_gradients(loss, [var])[0][0]
        assert isinstance(grad, tf.IndexedSlices)
        train_op = opt.minimize(loss, var_list=[var])
        init = v1.global_variables_initializer()
    with v1.Session(graph=graph) as sess:
        sess.run(init)
        for r, g in zip(rows_per_step, grads, strict=True):
            sess.run(train_op, feed_dict={rows: r, gvals: g})
        theirs = sess.run(var)

    per_row = x0.copy()
    opts = [fa.RMSProp(per_row[i], lr=LR, eps=EPS, convention="tf1", **kw) for i in range(4)]
    dense = x0.copy()
    dense_opt = fa.RMSProp(dense, lr=LR, eps=EPS, convention="tf1", **kw)
    for r, g in zip(rows_per_step, grads, strict=True):
        full = np.zeros_like(x0)
        full[r] = g
        for i, gi in zip(r, g, strict=True):
            opts[i].step(gi)
        dense_opt.step(full)
    assert_close64(per_row, theirs)
    assert np.max(np.abs(dense - theirs)) > 1e-3  # the dense rule is a different algorithm
