"""The torch.library operators spattn::attention and spattn::attention_backward.

Masks are not tensors: the schema carries their serials (int[]), resolved to a cached plan by
the real implementations, so the operators stay opaque, shape-only nodes (their fake
implementations) under torch.compile. lse is returned for the backward and is not
differentiable.
"""

from typing import List, Optional, Tuple

import torch

from .._lib import check, lib
from . import _plans
from . import _views as V
from ._args import forward_args


def _threads(threads):
    # 0 follows torch (torch.set_num_threads), as the rest of a model on this CPU does.
    return threads if threads > 0 else torch.get_num_threads()


def _shape(q, k, v):
    b, hq, lq, dqk = q.shape
    return (b, hq, k.shape[1], lq, k.shape[2], dqk, v.shape[3])


def _options(scale, softcap, alibi_slopes, sinks, pos_offset):
    return dict(scale=scale, softcap=softcap, alibi_slopes=V.head_floats(alibi_slopes),
                sinks=V.head_floats(sinks), pos_offset=pos_offset)


def forward(q, k, v, masks, scale, softcap, alibi_slopes, sinks, pos_offset, threads, isa,
            checked=False):
    """The operator's implementation: (o, lse) of a new call of the cached plan. `checked`:
    the caller has made check_problem's checks already."""
    if not checked:
        V.check_problem(q, k, v)
    plan = _plans.get(masks, _shape(q, k, v), _threads(threads), isa)
    o = torch.empty(q.shape[:3] + (v.shape[3],), dtype=q.dtype)
    lse = torch.empty(q.shape[:3], dtype=torch.float32)
    args, _keep = forward_args(plan._shape, q, k, v, o, lse, scale, softcap, alibi_slopes,
                               sinks, pos_offset)
    check(lib.spattn_plan_execute(plan.ptr, args), "spattn_plan_execute")
    return o, lse


@torch.library.custom_op("spattn::attention", mutates_args=())
def attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, masks: List[int],
                 scale: Optional[float], softcap: Optional[float],
                 alibi_slopes: Optional[torch.Tensor], sinks: Optional[torch.Tensor],
                 pos_offset: int, threads: int, isa: str) -> Tuple[torch.Tensor, torch.Tensor]:
    return forward(q, k, v, masks, scale, softcap, alibi_slopes, sinks, pos_offset, threads,
                   isa)


@attention_op.register_fake
def _(q, k, v, masks, scale, softcap, alibi_slopes, sinks, pos_offset, threads, isa):
    o = q.new_empty(q.shape[:3] + (v.shape[3],))
    return o, q.new_empty(q.shape[:3], dtype=torch.float32)


@torch.library.custom_op("spattn::attention_backward", mutates_args=())
def attention_backward_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                          o: torch.Tensor, lse: torch.Tensor, d_o: torch.Tensor,
                          masks: List[int], scale: Optional[float], softcap: Optional[float],
                          alibi_slopes: Optional[torch.Tensor], sinks: Optional[torch.Tensor],
                          pos_offset: int, threads: int, isa: str
                          ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    for t, name in ((q, "q"), (k, "k"), (v, "v"), (o, "o"), (d_o, "d_o")):
        if t.dtype != torch.float32:
            raise TypeError(f"spattn's backward takes float32 tensors only; {name} is "
                            f"{t.dtype} (compute in float32 to train through spattn)")
    if d_o.stride(3) != 1 and d_o.shape[3] > 1 or min(d_o.stride()) < 0:
        # The incoming gradient is torch's to lay out (an expanded one from .sum(), say):
        # copying it is not a copy of the caller's K or V.
        d_o = d_o.contiguous()
    plan = _plans.get(masks, _shape(q, k, v), _threads(threads), isa)
    d_q, d_k, d_v, d_sinks = plan.backward(
        V.numpy(q), V.numpy(k), V.numpy(v), V.numpy(o), lse.numpy(), V.numpy(d_o),
        **_options(scale, softcap, alibi_slopes, sinks, pos_offset))
    d_sinks = torch.from_numpy(d_sinks) if d_sinks is not None else q.new_empty(0)
    return torch.from_numpy(d_q), torch.from_numpy(d_k), torch.from_numpy(d_v), d_sinks


@attention_backward_op.register_fake
def _(q, k, v, o, lse, d_o, masks, scale, softcap, alibi_slopes, sinks, pos_offset, threads,
      isa):
    d_sinks = q.new_empty((q.shape[1],) if sinks is not None else (0,), dtype=torch.float32)
    return (torch.empty_like(q, dtype=torch.float32, memory_format=torch.contiguous_format),
            torch.empty_like(k, dtype=torch.float32, memory_format=torch.contiguous_format),
            torch.empty_like(v, dtype=torch.float32, memory_format=torch.contiguous_format),
            d_sinks)


_ARGS = ("masks", "scale", "softcap", "alibi_slopes", "sinks", "pos_offset", "threads", "isa")


def _setup_context(ctx, inputs, output):
    q, k, v, masks, scale, softcap, alibi_slopes, sinks, pos_offset, threads, isa = inputs
    o, lse = output
    ctx.save_for_backward(q, k, v, o, lse, alibi_slopes, sinks)
    ctx.args = (masks, scale, softcap, pos_offset, threads, isa)
    ctx.mark_non_differentiable(lse)


def _backward(ctx, d_o, _d_lse):
    q, k, v, o, lse, alibi_slopes, sinks = ctx.saved_tensors
    masks, scale, softcap, pos_offset, threads, isa = ctx.args
    d_q, d_k, d_v, d_sinks = attention_backward_op(
        q, k, v, o, lse, d_o, masks, scale, softcap, alibi_slopes, sinks, pos_offset, threads,
        isa)
    return (d_q, d_k, d_v, None, None, None, None, d_sinks if sinks is not None else None,
            None, None, None)


attention_op.register_autograd(_backward, setup_context=_setup_context)
