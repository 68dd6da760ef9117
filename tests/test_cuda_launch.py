"""The host side of a GPU step, without a GPU: the gradient checks' fast paths, the cached
launches' parameter block (fastadam.cuda.cached_launch), and benchmarks/gpu_host.py.

The real-GPU gradient check runs here on objects exposing ``__cuda_array_interface__`` (with
``fastadam.cuda.SIMULATOR`` switched off for the check only); ``gpu_host.py --cpu`` runs
numba-cuda's own parameter lists and its DeviceNDArray on made-up device addresses, and
``gpu_host.py --sim`` the bitwise comparisons on the simulator.
"""

import ctypes
import os
import subprocess
import sys
import types

import numpy as np
import pytest

cuda = pytest.importorskip("numba.cuda")

import fastadam as fa  # noqa: E402
import fastadam.cuda as fc  # noqa: E402
from fastadam.cuda import backend, cached_launch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Exported:
    """A CUDA array as another library exports it (only its interface is read)."""

    def __init__(self, shape, typestr="<f4", ptr=4096, strides=None, mask=None, stream=None):
        self.__cuda_array_interface__ = dict(
            shape=shape, typestr=typestr, data=(ptr, False), strides=strides, version=3
        )
        if mask is not None:
            self.__cuda_array_interface__["mask"] = mask
        if stream is not None:
            self.__cuda_array_interface__["stream"] = stream


def _param(shape, dtype=np.float32):
    return types.SimpleNamespace(shape=shape, dtype=np.dtype(dtype))


@pytest.fixture
def device_checks(monkeypatch):
    """check_grads as on a real GPU (the simulator's arrays are not read here)."""
    monkeypatch.setattr(fc, "SIMULATOR", False)
    return backend.check_grads


@pytest.mark.parametrize("fast", [True, False])
def test_device_gradient_check_reads_the_interface(device_checks, monkeypatch, fast):
    monkeypatch.setattr(backend, "FAST_GRADS", fast)
    grads = [Exported((3,), ptr=4096, stream=7), Exported((2, 2), "<f8", ptr=8192)]
    # C-contiguous up to the stride of a length-1 axis, as numpy says
    grads.append(Exported((1, 4), ptr=64, strides=(99, 4)))
    params = [_param((3,)), _param((2, 2), np.float64), _param((1, 4))]
    out = device_checks(grads, params, False)
    assert [(g.obj, g.shape, g.dtype, g.ptr, g.stream) for g in out] == [
        (grads[0], (3,), np.dtype(np.float32), 4096, 7),
        (grads[1], (2, 2), np.dtype(np.float64), 8192, None),
        (grads[2], (1, 4), np.dtype(np.float32), 64, None),
    ]
    assert out[1].size == 4 and backend.flat(out[1]) is out[1]


BAD = [  # (gradient, parameter, exception, message)
    (Exported((4,), strides=(8,)), _param((4,)), ValueError,
     r"grads\[1\] must be a C-contiguous CUDA array"),
    (Exported((4,), mask=object()), _param((4,)), ValueError, r"grads\[1\] is a masked"),
    (Exported((5,)), _param((4,)), ValueError,
     r"grads\[1\] is an array of dtype float32 and shape \(5,\) but its parameter is an "
     r"array of dtype float32 and shape \(4,\); they must match"),
    (Exported((4,), "<f8"), _param((4,)), ValueError, r"grads\[1\] is an array of dtype float64"),
    (np.zeros(4, np.float32), _param((4,)), TypeError,
     r"grads\[1\] is a numpy \(host\) array but the optimizer's parameters are CUDA arrays"),
    ([1.0] * 4, _param((4,)), TypeError, r"grads\[1\] must be a CUDA array, got list"),
]  # fmt: skip


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("bad, param, error, message", BAD)
def test_device_gradient_check_errors(device_checks, monkeypatch, fast, bad, param, error,
                                      message):  # fmt: skip
    monkeypatch.setattr(backend, "FAST_GRADS", fast)
    with pytest.raises(error, match=message):
        device_checks([Exported((3,)), bad], [_param((3,)), param], False)


def test_device_gradient_check_structure_errors(device_checks):
    with pytest.raises(TypeError, match="grads must be one array, like params"):
        device_checks([Exported((3,))], [_param((3,))], True)
    with pytest.raises(TypeError, match="grads must be a list of 2 arrays"):
        device_checks(Exported((3,)), [_param((3,))] * 2, False)
    with pytest.raises(ValueError, match="grads has 1 arrays but params has 2"):
        device_checks([Exported((3,))], [_param((3,))] * 2, False)
    with pytest.raises(ValueError, match=r"^grads is an array of dtype float32 and shape"):
        device_checks(Exported((3,)), [_param((4,))], True)


def test_a_torch_tensor_off_the_gpu_takes_the_interface_path(device_checks):
    torch = pytest.importorskip("torch")
    t = torch.zeros(4)
    assert backend._READERS[torch.Tensor] is not None  # the fast path exists...
    assert backend._READERS[torch.Tensor](t, _param((4,)), {}) is None  # ...for CUDA tensors
    with pytest.raises(TypeError, match=r"grads\[0\] must be a CUDA array, got Tensor"):
        device_checks([t], [_param((4,))], False)
    assert backend._READERS[Exported] is None  # unknown exporters: the interface


def test_a_failed_gradient_check_writes_nothing(monkeypatch):
    x, y = cuda.to_device(np.ones(3)), cuda.to_device(np.ones(4))
    opt = fa.Adam([x, y], lr=0.1)
    monkeypatch.setattr(fc, "SIMULATOR", False)  # the step checks as on a real GPU
    for bad in (Exported((4,), "<f8", strides=(16,)), Exported((4,), "<f4")):
        with pytest.raises(ValueError, match=r"grads\[1\]"):
            opt.step([Exported((3,), "<f8"), bad])
    monkeypatch.setattr(fc, "SIMULATOR", True)
    np.testing.assert_array_equal(x.copy_to_host(), np.ones(3))
    np.testing.assert_array_equal(y.copy_to_host(), np.ones(4))
    assert opt.t == 0


def test_call_stream_is_read_once_per_call_and_type():
    reads = []

    class Counted:
        @property
        def __cuda_array_interface__(self):
            reads.append(self)
            return dict(shape=(1,), typestr="<f4", data=(0, False), stream=3, version=3)

    streams = {}
    a, b = Counted(), Counted()
    assert backend._call_stream(a, streams) == backend._call_stream(b, streams) == 3
    assert reads == [a]


def test_launch_helpers():
    assert backend._picker([3])([9, 8, 7, 6]) == (6,)
    assert backend._picker([2, 0])([9, 8, 7]) == (7, 9)
    assert backend._aligned([0, 16, 4096]) and not backend._aligned([16, 20])
    assert backend._aligned([])


# -- the cached launches' parameter block ---------------------------------------------------
def _holder_bytes(flat, sizes):
    from cuda.core._kernel_arg_handler import ParamHolder

    holder = ParamHolder(flat)
    pointers = (ctypes.c_void_p * len(flat)).from_address(holder.ptr)
    return [ctypes.string_at(p, n) for p, n in zip(pointers, sizes, strict=True)]


#: values of each kind numba passes (an array's words, ctypes scalars, booleans)
FLAT = [0, 0, 12, 4, 1 << 40, 12, 4, ctypes.c_float(0.1), ctypes.c_double(-2.5),
        ctypes.c_int64(2), True, False, np.bool_(True), np.float32(3.5), np.int32(-7),
        1.5]  # fmt: skip


def test_parameter_block_holds_what_cuda_core_would_pass():
    pytest.importorskip("cuda.core")
    sizes = [ctypes.sizeof(cached_launch._slot(v)[0]) for v in FLAT]
    assert sizes == [8] * 7 + [4, 8, 8, 1, 1, 1, 4, 4, 8]
    block = cached_launch.Parameters(FLAT, [4], slice(7, 10))
    assert [block.bytes(i, n) for i, n in enumerate(sizes)] == _holder_bytes(FLAT, sizes)
    cached_launch.check_against_cuda_core(block, FLAT, sizes)
    # the per-step writes: the gradient's pointer, the coefficients converted as numba does
    block.write((1 << 41,), (0.3, 7.25, 5))
    step = FLAT[:4] + [1 << 41] + FLAT[5:7] + [ctypes.c_float(0.3), ctypes.c_double(7.25),
                                               ctypes.c_int64(5)] + FLAT[10:]  # fmt: skip
    cached_launch.check_against_cuda_core(block, step, sizes)
    assert block.bytes(7, 4) == np.float32(0.3).tobytes()
    for zero in (0.0, -0.0, 0.0):  # every coefficient is written: signed zeros too
        block.write((1 << 41,), (zero, 7.25, 5))
        assert block.bytes(7, 4) == np.float32(zero).tobytes()
    block.write((1 << 41,), (0.3, 7.25, 5))
    with pytest.raises(RuntimeError, match="kernel parameter 4"):
        cached_launch.check_against_cuda_core(block, FLAT, sizes)
    with pytest.raises(RuntimeError, match="takes 8 bytes, its slot holds 4"):
        block.bytes(7, 8)
    with pytest.raises(RuntimeError, match="the kernel takes 3 parameters"):
        cached_launch.check_against_cuda_core(block, step, sizes[:3])
    with pytest.raises(ValueError):  # one pointer per gradient slot
        block.write((1, 2), (0.3, 7.25, 5))
    with pytest.raises(ValueError):  # one value per coefficient slot
        block.write((1,), (0.3, 7.25))


def test_parameter_block_refuses_what_it_cannot_hold():
    with pytest.raises(TypeError, match="no cached slot"):
        cached_launch.Parameters([1, 2j], [0], slice(1, 1))
    with pytest.raises(TypeError, match="no cached slot"):
        cached_launch.Parameters([1, np.float16(1)], [0], slice(1, 1))
    with pytest.raises(RuntimeError, match="not integer parameters"):
        cached_launch.Parameters([1, ctypes.c_float(1)], [1], slice(0, 0))
    with pytest.raises(RuntimeError, match="not equally spaced"):
        cached_launch.Parameters([1, 2, 3, 4], [0, 1, 3], slice(0, 0))
    assert cached_launch._as_slice([4, 11, 18]) == slice(4, 19, 7)
    assert cached_launch._dim3((5, 3)) == (5, 3, 1) and cached_launch._dim3(7) == (7, 1, 1)
    with pytest.raises(ValueError):
        cached_launch._dim3((0, 1))


def test_build_falls_back_to_the_dispatcher(monkeypatch):
    monkeypatch.setattr(cached_launch, "ENABLED", False)
    assert cached_launch.build(None, (), (1,), (1,), 0) is None
    monkeypatch.setattr(cached_launch, "ENABLED", True)
    monkeypatch.setattr(cached_launch, "LAST_ERROR", None)
    monkeypatch.setattr(cached_launch, "LAUNCHER", "driver")  # then the core launch
    assert cached_launch.build(None, (), (1,), (1,), 0) is None  # no kernel to read
    assert "DriverLaunch" in cached_launch.LAST_ERROR
    assert "CoreLaunch" in cached_launch.LAST_ERROR


# -- benchmarks/gpu_host.py ---------------------------------------------------------------
def _script(flag, sim):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM=sim)
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "gpu_host.py"), flag],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "# 0 failure(s)" in out.stdout and "FAIL" not in out.stdout
    return out.stdout


def test_gpu_host_script_runs_on_the_simulator():
    out = _script("--sim", "1")
    # lists, algorithms, dtypes, layouts, and the "before" and "new" paths
    assert out.count(" bitwise = dispatcher (") == 2 * 3 * 2 * 2 * 2
    assert "steps in new threads, new: bitwise = dispatcher" in out


def test_gpu_host_cpu_checks_numba_lists_and_arrays():
    """numba-cuda's own parameter lists and DeviceNDArray, without a GPU."""
    out = _script("--cpu", "0")
    assert out.count("as cuda.core packs numba's list") == 6
    assert "check_grads numba views: fast path = interface" in out
