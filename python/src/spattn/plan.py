"""spattn.Plan: analyse shape and masks once, run many times (spattn_plan_*)."""

import ctypes

import numpy as np

from . import _lib
from . import _tensors as T
from ._lib import check, lib
from ._options import ISA_NAMES, make_options
from ._problem import Problem, mask_array, shape_tuple
from ._structs import Grads, Shape
from .probs import Probs


class Plan:
    """A plan for one problem shape and its masks; calls run it on arrays of that shape.

    ``Plan(mask, batch=..., heads_q=..., len_q=..., dim_qk=...)`` (heads_kv defaults to
    heads_q, len_k to len_q, dim_v to dim_qk) or ``Plan.like(q, k, v, mask)``. The plan keeps
    its masks alive by itself. Calling it is thread-safe.
    """

    def __init__(self, mask=None, *, batch, heads_q, len_q, dim_qk, heads_kv=None, len_k=None,
                 dim_v=None, threads=0, isa="auto"):
        heads_kv = heads_q if heads_kv is None else heads_kv
        len_k = len_q if len_k is None else len_k
        dim_v = dim_qk if dim_v is None else dim_v
        self._ptr = None
        self._shape = Shape(batch, heads_q, heads_kv, len_q, len_k, dim_qk, dim_v)
        masks, n, _keep = mask_array(mask, batch, heads_q)
        out = ctypes.c_void_p()
        check(lib.spattn_plan_create(self._shape, masks, n, make_options(threads, isa),
                                     ctypes.byref(out)), "spattn_plan_create")
        self._ptr = out.value

    @classmethod
    def like(cls, q, k, v, mask=None, *, threads=0, isa="auto"):
        """A plan for the shapes of q [B, Hq, Lq, Dqk], k [B, Hkv, Lk, Dqk], v [.., Dv]."""
        p = Problem(q, k, v)
        s = p.shape
        return cls(mask, batch=s.batch, heads_q=s.heads_q, heads_kv=s.heads_kv, len_q=s.len_q,
                   len_k=s.len_k, dim_qk=s.dim_qk, dim_v=s.dim_v, threads=threads, isa=isa)

    @property
    def ptr(self):
        if self._ptr is None:
            raise ValueError("the plan is closed")
        return self._ptr

    @property
    def shape(self):
        """(batch, heads_q, heads_kv, len_q, len_k, dim_qk, dim_v)."""
        return shape_tuple(self._shape)

    @property
    def isa(self):
        return ISA_NAMES[lib.spattn_plan_isa(self.ptr)]

    @property
    def threads(self):
        return lib.spattn_plan_threads(self.ptr)

    def _problem(self, q, k, v, kw):
        p = Problem(q, k, v, **kw)
        if shape_tuple(p.shape)[:6] != self.shape[:6] or (
                v is not None and p.shape.dim_v != self._shape.dim_v):
            raise ValueError(f"arrays of shape {shape_tuple(p.shape)} given to a plan for "
                             f"{self.shape} (batch, heads_q, heads_kv, len_q, len_k, dim_qk, "
                             "dim_v)")
        p.args.shape = self._shape
        return p

    def __call__(self, q, k, v, *, scale=None, softcap=None, alibi_slopes=None, sinks=None,
                 pos_offset=0, return_lse=False, out=None, out_dtype=None):
        """Runs the plan (spattn_plan_execute); arguments as for spattn.attention.

        out: an array to write o into (any layout the library can write), else a new one.
        """
        p = self._problem(q, k, v, dict(scale=scale, softcap=softcap,
                                        alibi_slopes=alibi_slopes, sinks=sinks,
                                        pos_offset=pos_offset))
        o = p.outputs(out_dtype, return_lse, out)
        check(lib.spattn_plan_execute(self.ptr, p.args), "spattn_plan_execute")
        return (o, p.lse) if return_lse else o

    def probs(self, q, k, *, scale=None, softcap=None, alibi_slopes=None, sinks=None,
              pos_offset=0, values=True, col_sums=False):
        """The attention probabilities of the allowed pairs (spattn_probs) as spattn.Probs.

        values: compute the probabilities; col_sums: also the per-key sums over the rows,
        [B, Hq, Lk] float32 (Probs.col_sums).
        """
        if not values and not col_sums:
            raise ValueError("ask for values, col_sums or both")
        p = self._problem(q, k, None, dict(scale=scale, softcap=softcap,
                                           alibi_slopes=alibi_slopes, sinks=sinks,
                                           pos_offset=pos_offset))
        s = self._shape
        vals = np.empty(lib.spattn_plan_probs_len(self.ptr) if values else 0, dtype=np.float32)
        sums = np.empty((s.batch, s.heads_q, s.len_k), dtype=np.float32) if col_sums else None
        # A zero-length probs buffer still needs an address when values are asked for.
        vptr = (vals.ctypes.data if vals.size else np.empty(1, np.float32).ctypes.data) \
            if values else None
        check(lib.spattn_probs(self.ptr, p.args, vptr, T.ptr(sums)), "spattn_probs")
        return Probs(self, vals if values else None, sums)

    def backward(self, q, k, v, o, lse, d_o, *, scale=None, softcap=None, alibi_slopes=None,
                 sinks=None, pos_offset=0):
        """Gradients (d_q, d_k, d_v, d_sinks) through a call of this plan (spattn_plan_backward).

        o and lse are what the forward call returned (return_lse=True), d_o the gradient of the
        loss by o. float32 only. d_sinks is None without sinks.
        """
        _lib.require("spattn_plan_backward", "the backward")
        p = self._problem(q, k, v, dict(scale=scale, softcap=softcap,
                                        alibi_slopes=alibi_slopes, sinks=sinks,
                                        pos_offset=pos_offset))
        return _run_backward(p, o, lse, d_o, lambda a, g: (
            lib.spattn_plan_backward(self.ptr, a, g), "spattn_plan_backward"))

    def close(self):
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            lib.spattn_plan_free(ptr)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_ptr", None) is not None and lib is not None:
            self.close()

    def __repr__(self):
        if self._ptr is None:
            return "<spattn.Plan closed>"
        return f"<spattn.Plan {self.shape} on {self.isa}, {self.threads} threads>"


def _run_backward(p, o, lse, d_o, call):
    """Checks o, lse and d_o against problem p, allocates the gradients and runs `call`."""
    s = p.args.shape
    o_shape = (s.batch, s.heads_q, s.len_q, s.dim_v)
    for name, a, shp in (("o", o, o_shape), ("d_o", d_o, o_shape)):
        T.check_array(a, name)
        if a.shape != shp:
            raise ValueError(f"{name} has shape {a.shape}, expected {shp}")
    T.check_array(lse, "lse", ndim=3)
    if lse.shape != o_shape[:3]:
        raise ValueError(f"lse has shape {lse.shape}, expected {o_shape[:3]}")
    for name, a in (("q", p.keep[0]), ("k", p.keep[1]), ("o", o), ("d_o", d_o), ("lse", lse)):
        if a.dtype != np.float32:
            raise TypeError(f"the backward takes float32 tensors only; {name} is {a.dtype}")
    if not lse.flags.c_contiguous:
        raise ValueError("lse must be C-contiguous, as the forward returns it")
    p.args.o, p.args.o_layout = o.ctypes.data, T.layout(o, "o")
    p.args.lse = lse.ctypes.data
    q, k, v = p.keep[:3]
    d_q, d_k, d_v = (np.empty(a.shape, np.float32) for a in (q, k, v))
    sinks = p.keep[4]
    d_sinks = np.empty(s.heads_q, np.float32) if sinks is not None else None
    g = Grads()
    g.d_o, g.d_o_layout = d_o.ctypes.data, T.layout(d_o, "d_o")
    g.d_q, g.d_q_layout = d_q.ctypes.data, T.bhtd_layout(d_q.shape)
    g.d_k, g.d_k_layout = d_k.ctypes.data, T.bhtd_layout(d_k.shape)
    g.d_v, g.d_v_layout = d_v.ctypes.data, T.bhtd_layout(d_v.shape)
    g.d_sinks = T.ptr(d_sinks)
    status, fn = call(p.args, g)
    check(status, fn)
    return d_q, d_k, d_v, d_sinks


def reference_backward(q, k, v, d_o, mask=None, *, scale=None, softcap=None, alibi_slopes=None,
                       sinks=None, pos_offset=0):
    """(d_q, d_k, d_v, d_sinks) by spattn_reference_backward: float64 pair by pair (slow)."""
    _lib.require("spattn_reference_backward", "the reference backward")
    p = Problem(q, k, v, scale=scale, softcap=softcap, alibi_slopes=alibi_slopes, sinks=sinks,
                pos_offset=pos_offset)
    masks, n, _keep = mask_array(mask, p.shape.batch, p.shape.heads_q)
    # The reference recomputes o and lse itself but needs valid buffers for them.
    o = p.outputs(np.float32, return_lse=True)
    return _run_backward(p, o, p.lse, d_o, lambda a, g: (
        lib.spattn_reference_backward(a, masks, n, g), "spattn_reference_backward"))


def probs(q, k, mask=None, *, scale=None, softcap=None, alibi_slopes=None, sinks=None,
          pos_offset=0, values=True, col_sums=False, threads=0, isa="auto"):
    """Attention probabilities of the allowed pairs (a Plan made for this one call)."""
    T.check_array(q, "q")
    T.check_array(k, "k")
    b, hq, lq, d = q.shape
    plan = Plan(mask, batch=b, heads_q=hq, heads_kv=k.shape[1], len_q=lq, len_k=k.shape[2],
                dim_qk=d, threads=threads, isa=isa)
    # The result keeps the plan: it gives each head's (i, j) through spattn_plan_mask.
    return plan.probs(q, k, scale=scale, softcap=softcap, alibi_slopes=alibi_slopes,
                      sinks=sinks, pos_offset=pos_offset, values=values, col_sums=col_sums)
