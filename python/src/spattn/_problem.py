"""One attention problem as spattn_args: shapes checked, arrays wrapped without copies."""

import ctypes

import numpy as np

from . import _tensors as T
from ._aligned import empty
from ._structs import Args, Shape
from .mask import Mask


def shape_tuple(shape):
    return (shape.batch, shape.heads_q, shape.heads_kv, shape.len_q, shape.len_k, shape.dim_qk,
            shape.dim_v)


def mask_array(mask, batch, heads_q):
    """(ctypes array of mask pointers or None, count, the Mask objects kept alive)."""
    if mask is None:
        return None, 0, ()
    masks = (mask,) if isinstance(mask, Mask) else tuple(mask)
    if not all(isinstance(m, Mask) for m in masks):
        raise TypeError("mask must be a spattn.Mask or a sequence of them")
    n = len(masks)
    if n not in (1, heads_q, batch * heads_q):
        raise ValueError(
            f"{n} masks given: pass 1, heads_q = {heads_q} or batch * heads_q = "
            f"{batch * heads_q}"
        )
    return (ctypes.c_void_p * n)(*[m.ptr for m in masks]), n, masks


class Problem:
    """spattn_args for q, k (and v) with the options of a call; `keep` holds what it points to."""

    def __init__(self, q, k, v=None, *, scale=None, softcap=None, alibi_slopes=None,
                 sinks=None, pos_offset=0):
        T.check_array(q, "q")
        T.check_array(k, "k")
        if v is not None:
            T.check_array(v, "v")
        b, hq, lq, dqk = q.shape
        bk, hkv, lk, dk = k.shape
        if bk != b:
            raise ValueError(f"q has batch {b}, k {bk} (numpy.broadcast_to shares one K)")
        if dk != dqk:
            raise ValueError(f"q has dim {dqk}, k {dk}")
        if hq % hkv:
            raise ValueError(f"heads_q = {hq} is not a multiple of heads_kv = {hkv}")
        dv = dqk
        if v is not None:
            if v.shape[:3] != k.shape[:3]:
                raise ValueError(f"v has shape {v.shape}, k {k.shape}: batch, heads and "
                                 "length must match")
            dv = v.shape[3]
            if v.dtype != k.dtype:
                raise TypeError(f"k and v must have one dtype, have {k.dtype} and {v.dtype}")

        a = Args()
        a.shape = Shape(b, hq, hkv, lq, lk, dqk, dv)
        a.q_dtype = T.dtype_code(q.dtype, "q")
        a.kv_dtype = T.dtype_code(k.dtype, "k")
        a.q, a.q_layout = q.ctypes.data, T.layout(q, "q")
        a.k, a.k_layout = k.ctypes.data, T.layout(k, "k")
        if v is not None:
            a.v, a.v_layout = v.ctypes.data, T.layout(v, "v")
        if scale is not None:
            scale = float(scale)
            if scale == 0.0:
                raise ValueError("scale must be positive (None means 1/sqrt(dim_qk))")
            a.scale = scale
        if softcap is not None:
            a.softcap = float(softcap)
        slopes = T.head_floats(alibi_slopes, hq, "alibi_slopes")
        sinks = T.head_floats(sinks, hq, "sinks")
        a.alibi_slopes, a.sinks = T.ptr(slopes), T.ptr(sinks)
        a.pos_offset = int(pos_offset)
        self.args = a
        self.keep = [q, k, v, slopes, sinks]
        self.o = self.lse = None

    @property
    def shape(self):
        return self.args.shape

    def outputs(self, out_dtype=None, return_lse=False, out=None):
        """Allocates (or takes) o [B, Hq, Lq, Dv] and, when asked, lse [B, Hq, Lq] float32."""
        s = self.args.shape
        o_shape = (s.batch, s.heads_q, s.len_q, s.dim_v)
        if out is None:
            dtype = out_dtype if out_dtype is not None else T.numpy_dtype(self.args.q_dtype)
            code = T.dtype_code(dtype, "the output")
            out = empty(o_shape, T.numpy_dtype(code))
        else:
            T.check_array(out, "out")
            if out.shape != o_shape:
                raise ValueError(f"out has shape {out.shape}, the output is {o_shape}")
            if not out.flags.writeable:
                raise ValueError("out is read-only")
            code = T.dtype_code(out.dtype, "out")
        self.args.o, self.args.o_layout, self.args.o_dtype = out.ctypes.data, T.layout(
            out, "out"), code
        self.o = out
        if return_lse:
            self.lse = np.empty(o_shape[:3], dtype=np.float32)
            self.args.lse = self.lse.ctypes.data
        return out
