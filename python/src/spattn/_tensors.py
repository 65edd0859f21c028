"""NumPy arrays as spattn tensors: element types and [batch][head][token][dim] layouts.

An array is passed to the library as it is, never copied: its strides must be ones the C
layouts express (non-negative multiples of the item size, the last axis contiguous).
"""

import numpy as np

from . import _lib
from ._structs import Layout

F32, BF16, F16 = 0, 1, 2  # spattn_dtype

try:
    import ml_dtypes

    _bfloat16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # bfloat16 arrays cannot exist without it
    _bfloat16 = None

_NAMES = {F32: "float32", BF16: "bfloat16", F16: "float16"}


def dtype_code(dtype, what):
    """spattn_dtype of a NumPy dtype; TypeError for one the library has no type for."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return F32
    if dtype == np.float16:
        code = F16
    elif _bfloat16 is not None and dtype == _bfloat16:
        code = BF16
    else:
        raise TypeError(f"{what} must be float32, float16 or bfloat16, not {dtype}")
    if not _lib.has_dtypes():
        _lib.require("spattn_f32_to_bf16", f"{_NAMES[code]} {what}")
        raise NotImplementedError(
            f"{_NAMES[code]} {what} needs libspattn 0.2, the loaded one is {_lib.version()}"
        )
    return code


def numpy_dtype(code):
    if code == BF16:
        return _bfloat16
    return np.dtype(np.float16 if code == F16 else np.float32)


def check_array(a, what, ndim=4):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{what} must be a numpy.ndarray, not {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions, has shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{what} is empty (shape {a.shape})")


def layout(a, what):
    """The spattn_layout (element strides) of a [B, H, T, D] array, or ValueError."""
    item = a.itemsize
    n0, n1, n2, n3 = a.shape
    s0, s1, s2, s3 = a.strides
    # The common case in one test: every stride a non-negative multiple of the item size.
    if ((s3 == item or n3 == 1) and s0 >= 0 and s1 >= 0 and s2 >= 0
            and not (s0 % item or s1 % item or s2 % item) and a.flags.aligned):
        # A length-1 axis is never stepped along: 0 is as right as any stride there.
        return Layout(s0 // item if n0 > 1 else 0, s1 // item if n1 > 1 else 0,
                      s2 // item if n2 > 1 else 0)
    if n3 > 1 and s3 != item:
        raise ValueError(
            f"{what}: the last (dim) axis must be contiguous (stride {item} bytes), has "
            f"stride {s3}; pass numpy.ascontiguousarray({what}) if a copy is meant"
        )
    for n, st in zip(a.shape[:3], a.strides[:3]):
        if n > 1 and (st < 0 or st % item):
            raise ValueError(
                f"{what}: strides {a.strides} are not expressible as a spattn layout (each "
                f"must be a non-negative multiple of the item size {item}); pass "
                f"numpy.ascontiguousarray({what}) if a copy is meant"
            )
    if not a.flags.aligned:
        raise ValueError(f"{what} is not aligned to its item size")
    # Only length-1 axes had odd strides.
    return Layout(*(st // item if n > 1 else 0 for n, st in zip(a.shape[:3], a.strides[:3])))


def bhtd_layout(shape):
    _, h, t, d = shape
    return Layout(h * t * d, t * d, d)


def head_floats(x, n, what):
    """An optional per-head float array (ALiBi slopes, sinks) as n contiguous float32."""
    if x is None:
        return None
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(-1))
    if arr.shape != (n,):
        raise ValueError(f"{what} must hold heads_q = {n} values, has {arr.size}")
    return arr


def ptr(a):
    return None if a is None else a.ctypes.data
