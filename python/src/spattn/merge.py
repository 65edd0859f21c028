"""spattn.merge: combine results of the same rows over disjoint sets of keys."""

import ctypes

import numpy as np

from ._lib import check, lib


def merge(o_parts, lse_parts):
    """(o, lse) of attention over the union of the parts' keys (spattn_merge).

    o_parts: a sequence of float32 arrays of one shape [..., dim]; lse_parts: float32 arrays
    of shape [...] (what attention(..., return_lse=True) returns for each key shard). Summed
    in the order given, so the result is reproducible bit for bit.
    """
    o_parts, lse_parts = list(o_parts), list(lse_parts)
    if not o_parts or len(o_parts) != len(lse_parts):
        raise ValueError(f"{len(o_parts)} o parts and {len(lse_parts)} lse parts: need the "
                         "same number, at least one")
    shape = np.shape(o_parts[0])
    if len(shape) < 1:
        raise ValueError("an o part needs a dim axis")
    os_, ls_ = [], []
    for s, (o, lse) in enumerate(zip(o_parts, lse_parts)):
        for name, a in (("o_parts", o), ("lse_parts", lse)):
            if np.asarray(a).dtype != np.float32:
                raise TypeError(f"{name}[{s}] must be float32, not {np.asarray(a).dtype}")
        o, lse = np.ascontiguousarray(o), np.ascontiguousarray(lse)
        if o.shape != shape or lse.shape != shape[:-1]:
            raise ValueError(f"part {s}: o {o.shape} and lse {lse.shape}, part 0 has o {shape}"
                             f" and so lse {shape[:-1]}")
        os_.append(o)
        ls_.append(lse)
    rows, dim = int(np.prod(shape[:-1])), shape[-1]
    o = np.empty(shape, dtype=np.float32)
    lse = np.empty(shape[:-1], dtype=np.float32)
    n = len(os_)
    op = (ctypes.c_void_p * n)(*[a.ctypes.data for a in os_])
    lp = (ctypes.c_void_p * n)(*[a.ctypes.data for a in ls_])
    check(lib.spattn_merge(n, rows, dim, op, lp, o.ctypes.data, lse.ctypes.data), "spattn_merge")
    return o, lse
