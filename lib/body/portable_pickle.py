"""Pickles that load on numpy 1.x and 2.x alike (and with old and new SciPy).

numpy 2 pickles arrays through ``numpy._core.multiarray._reconstruct`` and SciPy >= 1.8 names
its sparse classes ``scipy.sparse._csc.csc_matrix``; numpy <= 1.25 has no ``numpy._core`` and
SciPy < 1.8 no ``scipy.sparse._csc``, so files pickled here today would not open in the
originals' environments (HGN, Pose2Mesh: Python 3.7, numpy <= 1.24). Both newer libraries still
resolve the old names (``numpy.core.multiarray``, ``scipy.sparse.csc``: the names the official
SMPL pickles use), so this pickler writes every global under its old name. Each renamed global
is checked to resolve, under the old name, to the very object being pickled.
"""
from __future__ import annotations

import importlib
import io
import pickle
import pickletools
import warnings

# New module prefix -> the old one that every supported version resolves.
OLD_MODULE_PREFIXES = (("numpy._core", "numpy.core"),
                       ("scipy.sparse._csc", "scipy.sparse.csc"),
                       ("scipy.sparse._csr", "scipy.sparse.csr"),
                       ("scipy.sparse._coo", "scipy.sparse.coo"))


def portable_module(module: str) -> str:
    """The old spelling of ``module`` (unchanged when it has none)."""
    for new, old in OLD_MODULE_PREFIXES:
        if module == new or module.startswith(new + "."):
            return old + module[len(new):]
    return module


class PortablePickler(pickle._Pickler):   # the Python pickler: its save_global can be replaced
    """A pickler (protocol <= 3) whose globals use the old numpy / SciPy module names."""

    def __init__(self, file, protocol: int = 2):
        if protocol > 3:
            raise ValueError("PortablePickler writes protocol 2 or 3 (GLOBAL opcodes)")
        super().__init__(file, protocol=protocol)

    def save_global(self, obj, name=None):
        if name is None:
            name = getattr(obj, "__qualname__", None) or obj.__name__
        module = pickle.whichmodule(obj, name)
        old = portable_module(module)
        if old == module:
            return super().save_global(obj, name)
        with warnings.catch_warnings():          # the old names are deprecated aliases
            warnings.simplefilter("ignore")
            found = importlib.import_module(old)
            for part in name.split("."):
                found = getattr(found, part)
        if found is not obj:
            raise pickle.PicklingError(f"{old}.{name} is not {module}.{name}")
        self.write(pickle.GLOBAL + old.encode("ascii") + b"\n" + name.encode("ascii") + b"\n")
        self.memoize(obj)


def dump(obj, file, protocol: int = 2) -> None:
    PortablePickler(file, protocol=protocol).dump(obj)


def dumps(obj, protocol: int = 2) -> bytes:
    buf = io.BytesIO()
    dump(obj, buf, protocol)
    return buf.getvalue()


def pickled_globals(data: bytes) -> set:
    """The ``module.name`` of every global a pickle references (for tests and checks)."""
    out, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            out.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            out.add(f"{strings[-2]}.{strings[-1]}")
        if isinstance(arg, str):
            strings.append(arg)
    return out
