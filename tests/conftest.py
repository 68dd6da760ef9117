import os

# The GPU tests run on the CUDA simulator unless a real GPU run asks otherwise
# (NUMBA_ENABLE_CUDASIM=0). This must happen before numba is first imported.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

# Under pytest-xdist (CI runs two workers on its two cores) each worker compiles into a numba
# cache of its own: concurrent first compiles into one cache can crash (numba issue 4807).
# The first worker keeps numba's default place (the package's __pycache__), which the docs
# build then finds warm.
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker not in (None, "gw0") and "NUMBA_CACHE_DIR" not in os.environ:
    import tempfile

    _dir = os.path.join(tempfile.gettempdir(), f"fastadam-numba-{_worker}")
    os.environ["NUMBA_CACHE_DIR"] = _dir
