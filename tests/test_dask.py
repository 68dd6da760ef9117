"""fastadam.dask.minimize_batch: chunks of problems as tasks, bitwise equal to
fastadam.minimize_batch, on dask's local scheduler and on a LocalCluster of two
single-threaded worker processes (started here)."""

import os
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import numba  # noqa: E402

import fastadam as fa  # noqa: E402
import fastadam.dask as fd  # noqa: E402

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from asv_benchmarks import _peaks as pk  # noqa: E402

B = 60
FIELDS = ("x", "fun", "jac", "nit", "nfev", "njev", "status", "success", "best_x", "best_fun")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:  # fmt: skip
        with distributed.Client(cluster) as c:
            yield c


def problems(b=B, chunk=16):
    y, _, x0 = pk.data(b, seed=3)
    return x0, y, da.from_array(x0, chunks=(chunk, -1)), da.from_array(y, chunks=(chunk, -1))


OPTS = dict(lr=np.linspace(0.02, 0.08, B), maxiter=200, gtol=1e-5, amsgrad=True)
BOUNDS = [(0, 5), (-3, 3), (0.2, 3), (-1, 1)]


def assert_same(res, ref):
    for k in FIELDS:
        np.testing.assert_array_equal(res[k], ref[k], err_msg=k)
    assert res.message == ref.message


def test_compiled_on_a_local_cluster(client):
    x0, y, X, Y = problems()
    kw = dict(jac=True, bounds=BOUNDS, options=OPTS)
    ref = fa.minimize_batch(pk.fun_and_grad, x0, args=(y, pk.T[np.newaxis]), **kw)
    lazy = fd.minimize_batch(pk.fun_and_grad, X, args=(Y, pk.T[np.newaxis]), **kw)
    assert isinstance(lazy.x, da.Array) and lazy.x.chunks == X.chunks
    assert lazy.status.chunks == (X.chunks[0],)
    res = fd.compute(lazy)  # the client's scheduler: the cluster
    assert_same(res, ref)
    assert 0 < np.sum(res.status == 0) < B  # some stopped by gtol, the others at maxiter


def test_vectorized_objective_and_numpy_rows_on_the_local_scheduler():
    x0, y, X, _ = problems()
    kw = dict(jac=True, options=dict(lr=0.05, maxiter=60, betas=(0.9, np.full(B, 0.99))))
    ref = fa.minimize_batch(pk.fun_rows, x0, args=(y,), **kw)
    res = fd.compute(fd.minimize_batch(pk.fun_rows, X, args=(y,), **kw), scheduler="threads")
    assert_same(res, ref)


def test_a_task_runs_on_its_share_of_numba_threads():
    seen = []

    def rows(P, y):
        seen.append(numba.get_num_threads())
        return pk.fun_rows(P, y)

    x0, y, X, Y = problems()
    opts = dict(lr=0.05, maxiter=3)
    lazy = fd.minimize_batch(rows, X, args=(Y,), jac=True, options=opts)
    seen.clear()  # (the check made here, before scheduling, ran in this thread)
    fd.compute(lazy, scheduler="threads")
    assert seen and set(seen) == {1}
    two = min(2, numba.config.NUMBA_NUM_THREADS)
    lazy = fd.minimize_batch(rows, X, args=(Y,), jac=True, options=opts, threads_per_task=two)
    seen.clear()
    fd.compute(lazy, scheduler="sync")
    assert set(seen) == {two}


def test_track_best_off_leaves_best_x_out():
    _, y, X, Y = problems()
    opts = dict(lr=0.05, maxiter=5, track_best=False)
    lazy = fd.minimize_batch(pk.fun_rows, X, args=(Y,), jac=True, options=opts)
    assert "best_x" not in lazy and "x" in lazy


@pytest.mark.parametrize(
    ("change", "exc", "match"),
    [
        (dict(x0="numpy"), TypeError, "x0 must be a dask array"),
        (dict(x0="columns"), ValueError, "chunk it along the problems only"),
        (dict(args="misaligned"), ValueError, "chunk them alike"),
        (dict(args="2-d chunks"), ValueError, "along an axis after the first"),
        (dict(args="wrong length"), ValueError, "leading axis must be 60"),
        (dict(callback=print), ValueError, "no callback"),
        (dict(options=dict(lr=-1.0)), ValueError, "lr"),
        (dict(options=dict(lr=np.full(B, -1.0))), ValueError, "lr"),
        (dict(threads_per_task=0), ValueError, "threads_per_task"),
    ],
)
def test_errors_before_anything_is_scheduled(change, exc, match):
    x0, y, X, Y = problems()
    kw = dict(fun=pk.fun_rows, x0=X, args=(Y,), jac=True, options=dict(lr=0.05))
    x0_kind, args_kind = change.pop("x0", None), change.pop("args", None)
    if x0_kind == "numpy":
        kw["x0"] = x0
    elif x0_kind == "columns":
        kw["x0"] = X.rechunk((16, 2))
    if args_kind == "misaligned":
        kw["args"] = (Y.rechunk((20, -1)),)
    elif args_kind == "2-d chunks":
        kw["args"] = (Y.rechunk((16, 8)),)
    elif args_kind == "wrong length":
        kw["args"] = (np.zeros((7, 32)),)
    kw.update(change)
    with pytest.raises(exc, match=match):
        fd.minimize_batch(**kw)


def test_compute_refuses_what_is_not_a_lazy_result():
    x0, *_ = problems()
    args = (np.zeros((1, 32)), pk.T[np.newaxis])
    eager = fa.minimize_batch(pk.fun_and_grad, x0[:2], args=args, jac=True,
                              options=dict(maxiter=2))  # fmt: skip
    with pytest.raises(TypeError, match="result of fastadam.dask.minimize_batch"):
        fd.compute(eager)
    with pytest.raises(TypeError, match="got dict"):
        fd.compute({"x": da.zeros(3)})


# -- optimizers over dask arrays --------------------------------------------------------------
SHARDED = [
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05)),
    ("AdamW", dict(lr=lambda t: 0.02 / t**0.5, weight_decay=0.1, convention="keras")),
    ("RMSProp", dict(lr=0.01, centered=True, momentum=0.9, initial_scale=0.1)),
    ("NAdam", dict(lr=0.02, convention="keras")),
]


def gradients(steps, n, dtype, seed=4):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for _ in range(steps)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("name", "kw"), SHARDED, ids=[n for n, _ in SHARDED])
def test_sharded_steps_equal_the_optimizer_on_gathered_arrays(name, kw, dtype):
    n = 1000
    x = np.random.default_rng(1).standard_normal(n).astype(dtype)
    ref = getattr(fa, name)(x.copy(), **kw)
    opt = getattr(fd, name)(da.from_array(x, chunks=300), **kw)
    for g in gradients(50, n, dtype):
        ref.step(g)
        opt.step(da.from_array(g, chunks=300))
    assert opt.t == 50 and opt.params.chunks == ((300, 300, 300, 100),)
    np.testing.assert_array_equal(opt.params.compute(), ref.params)
    state = ref.state_dict()
    for buffer, value in opt.state.items():
        np.testing.assert_array_equal(value.compute(), state[buffer + ".0"], err_msg=buffer)


def test_sharded_on_a_local_cluster_and_through_zarr(client, tmp_path):
    n = 400
    x = np.linspace(-1, 1, n)
    ref = fa.NAdam(x.copy(), lr=0.05)
    opt = fd.NAdam(da.from_array(x, chunks=100), lr=0.05)
    grads = gradients(20, n, np.float64)
    for g in grads[:10]:
        ref.step(g)
        opt.step(da.from_array(g, chunks=100))
    opt.to_zarr(str(tmp_path / "state.zarr"))
    back = fd.NAdam.from_zarr(str(tmp_path / "state.zarr"), lr=0.05)
    assert back.t == 10
    for g in grads[10:]:
        ref.step(g)
        back.step(da.from_array(g, chunks=100))
    np.testing.assert_array_equal(back.params.compute(), ref.params)
    with pytest.raises(ValueError):  # other hyperparameters than the state's
        fd.NAdam.from_zarr(str(tmp_path / "state.zarr"), lr=0.05, convention="keras")


def test_sharded_errors_leave_the_optimizer_unchanged():
    x = da.from_array(np.ones(10), chunks=5)
    with pytest.raises(TypeError, match="must be a dask array"):
        fd.Adam(np.ones(10))
    with pytest.raises(ValueError, match="lr"):
        fd.Adam(x, lr=-1.0)
    with pytest.raises(ValueError, match="skip_nonfinite"):
        fd.RMSProp(x, skip_nonfinite=True)
    opt = fd.Adam(x, lr=0.1)
    with pytest.raises(TypeError, match="grads must be a dask array"):
        opt.step(np.ones(10))
    with pytest.raises(ValueError, match="chunk them alike"):
        opt.step(da.ones(10, chunks=3))
    with pytest.raises(ValueError, match="shape"):
        opt.step(da.ones(11, chunks=5))
    state = opt.state_dict()
    with pytest.raises(ValueError, match="chunked like the parameters"):
        opt.load_state_dict({**state, "exp_avg": state["exp_avg"].rechunk(2)})
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1.0
    with pytest.raises(AttributeError, match="only lr changes"):
        opt.weight_decay = 0.1  # (it was set, and ignored by the steps)
    assert opt.t == 0 and np.all(opt.params.compute() == 1) and opt.lr == 0.1


def test_sharded_lr_set_during_a_run():
    x = np.linspace(-1, 1, 20)
    ref = fa.Adam(x.copy(), lr=0.1)
    opt = fd.Adam(da.from_array(x, chunks=5), lr=0.1)
    for k, g in enumerate(gradients(6, 20, np.float64)):
        if k == 3:
            ref.lr = opt.lr = 0.02
        ref.step(g)
        opt.step(da.from_array(g, chunks=5))
    assert opt.lr == 0.02
    np.testing.assert_array_equal(opt.params.compute(), ref.params)
