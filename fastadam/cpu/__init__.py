"""The CPU layer: kernels compiled with :func:`numba.njit` from the algorithms
(:mod:`fastadam.cpu.kernels`, public as :mod:`fastadam.kernels`) and the optimizers' backend
for numpy arrays (:mod:`fastadam.cpu.backend`)."""
