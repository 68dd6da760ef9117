"""airspeed velocity benchmarks for fastadam (configuration: ../asv.conf.json).

Every benchmark seeds its data and compiles (or loads from numba's disk cache) what it runs
in ``setup``, so compile time is never timed, except in :mod:`.bench_compile`, which times
it on purpose. Benchmarks whose requirements are missing (a GPU, torch, jax/optax,
``fastadam.minimize``) raise ``NotImplementedError`` in ``setup``: asv records them as
skipped, not failed.
"""
