"""Arrays whose data starts on a 64-byte boundary.

spattn reads K and V rows fastest when each starts on a cache line: NumPy gives large arrays
16-byte alignment, with which sparse masks (whose keys are gathered row by row) run up to 1.5x
slower. An engine that keeps its KV cache in spattn.empty arrays, or aligns it once with
spattn.aligned, avoids that; results are the same either way.
"""

import operator

import numpy as np

ALIGNMENT = 64


def _shape(shape):
    try:
        dims = (operator.index(shape),)
    except TypeError:
        dims = tuple(operator.index(n) for n in shape)
    if any(n < 0 for n in dims):
        raise ValueError(f"negative dimensions are not allowed: {dims}")
    return dims


def empty(shape, dtype=np.float32):
    """A new uninitialised C-contiguous array of shape and dtype (as numpy.empty) whose data
    starts on a 64-byte boundary."""
    dims, dt = _shape(shape), np.dtype(dtype)
    nbytes = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    raw = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start:start + nbytes].view(dt).reshape(dims)


def aligned(a):
    """a itself when it is a C-contiguous array starting on a 64-byte boundary, else a copy
    (spattn.empty) of its values that is."""
    a = np.asarray(a)
    if a.flags.c_contiguous and a.ctypes.data % ALIGNMENT == 0:
        return a
    out = empty(a.shape, a.dtype)
    np.copyto(out, a)
    return out
