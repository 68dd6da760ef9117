import os

# The GPU tests run on the CUDA simulator unless a real GPU run asks otherwise
# (NUMBA_ENABLE_CUDASIM=0). This must happen before numba is first imported.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")
