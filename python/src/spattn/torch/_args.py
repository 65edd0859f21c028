"""spattn_args straight from CPU tensors, for the forward operator.

The forward is the call a model makes many times; building its arguments from the tensors'
pointers and strides spares it the NumPy views and checks of the NumPy binding (tens of
microseconds a call; see docs/performance.md). The backward keeps the NumPy binding's path.
"""

import torch

from .. import _lib
from .._structs import Args, Layout

_CODES = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}  # spattn_dtype


def dtype_code(dtype, what):
    code = _CODES[dtype]
    if code and not _lib.has_dtypes():
        raise NotImplementedError(f"{dtype} {what} needs libspattn 0.2, the loaded one is "
                                  f"{_lib.version()}")
    return code


def layout(t):
    # A length-1 axis is never stepped along: 0 is as right as any stride there.
    n, s = t.shape, t.stride()
    return Layout(s[0] if n[0] > 1 else 0, s[1] if n[1] > 1 else 0, s[2] if n[2] > 1 else 0)


def head_floats(x, heads_q, what):
    """(pointer, tensor to keep alive) of an optional per-head float array."""
    if x is None:
        return None, None
    x = x.detach().to(torch.float32).contiguous()
    if x.numel() != heads_q:
        raise ValueError(f"{what} must hold heads_q = {heads_q} values, has {x.numel()}")
    return x.data_ptr(), x


def forward_args(shape, q, k, v, o, lse, scale, softcap, alibi_slopes, sinks, pos_offset):
    """(Args, what it points to that must stay alive) for o and lse from q, k, v."""
    a = Args()
    a.shape = shape
    a.q, a.q_layout, a.q_dtype = q.data_ptr(), layout(q), dtype_code(q.dtype, "q")
    a.k, a.k_layout, a.kv_dtype = k.data_ptr(), layout(k), dtype_code(k.dtype, "k")
    a.v, a.v_layout = v.data_ptr(), layout(v)
    a.o, a.o_layout, a.o_dtype = o.data_ptr(), layout(o), dtype_code(o.dtype, "o")
    a.lse = lse.data_ptr()
    if scale is not None:
        if scale == 0.0:
            raise ValueError("scale must be positive (None means 1/sqrt(dim_qk))")
        a.scale = scale
    if softcap is not None:
        a.softcap = softcap
    a.alibi_slopes, slopes = head_floats(alibi_slopes, shape.heads_q, "alibi_slopes")
    a.sinks, sinks = head_floats(sinks, shape.heads_q, "sinks")
    a.pos_offset = pos_offset
    return a, (slopes, sinks)
