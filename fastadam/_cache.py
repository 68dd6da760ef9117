"""numba's on-disk cache for fastadam's own functions, never stale.

numba decides whether a cached function is stale from its own source file only, so after
an edit of an algorithm module (or an upgrade that changes only the math) the cached
kernels in other files would keep running the old math. fastadam registers a cache locator,
ahead of numba's own, for the functions defined in its package: it keeps numba's choice of
cache directory and replaces the source stamp with a hash of every source file of the
package, so that any change to fastadam recompiles all of fastadam's cached functions.

This uses numba's cache-locator interface (``numba.core.caching.CacheImpl``); if it ever
changes, fastadam compiles without the disk cache instead of risking stale code.
"""

import hashlib
import os

import numba

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_STAMP = None


def package_stamp():
    """A hash of every ``.py`` file of the package (computed once per process)."""
    global _STAMP
    if _STAMP is None:
        digest = hashlib.sha256()
        for root, dirs, files in os.walk(PACKAGE_DIR):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(f for f in files if f.endswith(".py")):
                path = os.path.join(root, name)
                digest.update(os.path.relpath(path, PACKAGE_DIR).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
        _STAMP = digest.hexdigest()
    return _STAMP


def _in_package(py_file):
    return os.path.abspath(py_file).startswith(PACKAGE_DIR + os.sep)


def _package_locator(base):
    """``base`` (one of numba's locators) for fastadam's files, with the package stamp."""

    def from_function(cls, py_func, py_file):
        if not _in_package(py_file):
            return None
        return base.from_function.__func__(cls, py_func, py_file)

    def get_source_stamp(self):
        return package_stamp()

    return type(
        "Fastadam" + base.__name__.lstrip("_"),
        (base,),
        {
            "from_function": classmethod(from_function),
            "get_source_stamp": get_source_stamp,
            "__module__": __name__,
        },
    )


def install():
    """Register the locators; return the ``cache`` flag for fastadam's ``njit`` calls
    (False if numba's interface is not the one expected)."""
    try:
        from numba.core import caching

        impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
        classes = impl._locator_classes
        ours = [_package_locator(c) for c in classes if "IPython" not in c.__name__]
    except (ImportError, AttributeError, TypeError):  # pragma: no cover - depends on numba
        return False
    if not any(getattr(c, "__module__", None) == __name__ for c in classes):
        classes[:0] = ours
    return not numba.config.DISABLE_JIT


#: Whether fastadam's compiled functions use numba's on-disk cache.
CACHE = install()
