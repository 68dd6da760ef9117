#!/bin/bash
# Every real-GPU check of fastadam in one call on a lent GPU machine (at most 580 s):
# benchmarks/gpu_check.py (correctness, size sweep, the cases against the peers),
# the GPU tests (tests/test_cuda.py with NUMBA_ENABLE_CUDASIM=0, tests/test_cuda_ptx.py),
# then compute-sanitizer memcheck and racecheck on a small correctness pass.
#
# The machine's python3 has numba-cuda but numpy 2.5, with which numba-cuda 0.30 fails to
# import; carry a numpy 2.4 wheel in .whl/ (see the device README):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
#     --platform manylinux2014_x86_64 -d .whl numpy==2.4.6
# then run, carrying .whl:  bash benchmarks/gpu_run.sh "$OUT" [check] [tests] [sanitize]
# [minimize] [batch] [host] [correct] [variants] (by default check, tests, sanitize, minimize
# and batch, in that order; minimize runs tests/test_minimize_gpu.py, batch
# benchmarks/bench_batch_gpu.py and memcheck on minimize_batch's kernel; host runs
# benchmarks/gpu_host.py; correct gpu_check's correctness part alone; variants the minimize
# kernel's launch shapes, register caps and data orders at 10^6 problems).
# Results land in the given folder: env.txt, pytest.txt, memcheck.txt, racecheck.txt,
# gpu_check.txt, gpu.md (the table for docs/performance.md), bandwidth_gpu.csv (for
# docs/data/), pytest_minimize.txt, batch_gpu.txt, batch_fit_gpu.csv, memcheck_minimize.txt,
# gpu_host.txt, variants.txt.
set -u
out=${1:-gpu-results}
mkdir -p "$out"
export PYTHONPATH=$PWD NUMBA_ENABLE_CUDASIM=0 PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
fi
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    nproc
    python3 -c "import numpy, numba, numba_cuda, fastadam; print('numpy', numpy.__version__,
'numba', numba.__version__, 'numba-cuda', numba_cuda.__version__)"
} >"$out/env.txt" 2>&1
cat "$out/env.txt"
# most important first; the timeouts (seconds, overridable) add up to 580 s by default,
# inside one 600-s device call
T_CHECK=${T_CHECK:-300} T_TESTS=${T_TESTS:-140} T_SANITIZE=${T_SANITIZE:-70}
# NO_SWEEP=1 skips gpu_check's size sweep (the cases still run)
steps=${*:2}
steps=${steps:-check tests sanitize minimize batch}
for step in $steps; do
    case $step in
    check)
        timeout $T_CHECK python3 benchmarks/gpu_check.py --out "$out/gpu.md" \
            --csv "$out/bandwidth_gpu.csv" ${NO_SWEEP:+--no-sweep} >"$out/gpu_check.txt" 2>&1
        echo "gpu_check exit $?"
        grep -v "^ok " "$out/gpu_check.txt" | tail -60
        ;;
    tests)
        timeout $T_TESTS python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py \
            tests/test_cuda_ptx.py >"$out/pytest.txt" 2>&1
        echo "pytest exit $?"
        tail -5 "$out/pytest.txt"
        ;;
    sanitize)
        for tool in memcheck racecheck; do
            timeout $T_SANITIZE compute-sanitizer --tool "$tool" --error-exitcode 9 \
                python3 benchmarks/gpu_check.py --sanitize >"$out/$tool.txt" 2>&1
            echo "$tool exit $?"
            tail -4 "$out/$tool.txt"
        done
        ;;
    minimize)  # minimize_batch on the GPU: its tests on the hardware
        timeout $T_TESTS python3 -m pytest -q -p no:cacheprovider tests/test_minimize_gpu.py \
            >"$out/pytest_minimize.txt" 2>&1
        echo "pytest minimize exit $?"
        tail -5 "$out/pytest_minimize.txt"
        ;;
    batch)  # minimize_batch on the GPU: the benchmark, then memcheck on its kernel
        timeout $T_CHECK python3 benchmarks/bench_batch_gpu.py --csv "$out/batch_fit_gpu.csv" \
            >"$out/batch_gpu.txt" 2>&1
        echo "bench_batch_gpu exit $?"
        tail -30 "$out/batch_gpu.txt"
        timeout $T_SANITIZE compute-sanitizer --tool memcheck --error-exitcode 9 \
            python3 benchmarks/bench_batch_gpu.py --check --iters 20 >"$out/memcheck_minimize.txt" 2>&1
        echo "memcheck minimize exit $?"
        tail -4 "$out/memcheck_minimize.txt"
        ;;
    host)  # the host's share of a step (benchmarks/gpu_host.py)
        timeout $T_TESTS python3 benchmarks/gpu_host.py >"$out/gpu_host.txt" 2>&1
        echo "gpu_host exit $?"
        tail -40 "$out/gpu_host.txt"
        ;;
    correct)  # gpu_check's correctness part alone
        timeout $T_CHECK python3 benchmarks/gpu_check.py --correctness >"$out/gpu_check.txt" 2>&1
        echo "gpu_check --correctness exit $?"
        grep -v "^ok " "$out/gpu_check.txt" | tail -30
        ;;
    variants)  # the minimize kernel's launch shape, register cap and data order
        timeout $T_CHECK python3 benchmarks/bench_batch_gpu.py --variants --sizes 1000000 \
            >"$out/variants.txt" 2>&1
        echo "bench_batch_gpu --variants exit $?"
        grep -v Warning "$out/variants.txt" | tail -30
        ;;
    *) echo "unknown step $step (check, tests, sanitize, minimize, batch, host, correct, variants)" ;;
    esac
done
