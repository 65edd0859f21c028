"""spattn.torch.attention: argument checks in front of the spattn::attention operator."""

import torch

from ..mask import Mask
from ._ops import attention_op, forward
from ._views import check_problem


def mask_serials(mask, batch, heads_q):
    """The serials of mask (None, one Mask or a sequence of 1, heads_q or batch * heads_q)."""
    if mask is None:
        return []
    if isinstance(mask, Mask):
        return [mask.serial]
    masks = list(mask)
    for m in masks:
        if not isinstance(m, Mask):
            raise TypeError("mask must be a spattn.Mask or a sequence of them (convert a "
                            "FlexAttention BlockMask with spattn.torch.from_block_mask)")
    if len(masks) not in (1, heads_q, batch * heads_q):
        raise ValueError(f"{len(masks)} masks given: pass 1, heads_q = {heads_q} or "
                         f"batch * heads_q = {batch * heads_q}")
    return [m.serial for m in masks]


def _head_tensor(x, heads_q, what):
    if x is None:
        return None
    if not isinstance(x, torch.Tensor):
        x = torch.tensor(x, dtype=torch.float32)
    if x.dtype != torch.float32:
        raise TypeError(f"{what} must be float32, not {x.dtype}")
    if x.shape != (heads_q,):
        raise ValueError(f"{what} must have shape [heads_q] = [{heads_q}], has "
                         f"{tuple(x.shape)}")
    return x


def _direct(tensors):
    """Whether a call may run the operator's implementation without the operator: when there
    is nothing for autograd to record and nothing that intercepts operators (torch.compile's
    and torch.jit.trace's tracing, torch function or dispatch modes, tensor subclasses,
    functorch transforms), the operator's dispatch does nothing but costs tens of
    microseconds a call, as much as a small problem's whole work (docs/performance.md). A
    torch without one of these checks always takes the operator."""
    if torch.compiler.is_compiling():
        return False
    try:
        if (torch._C._get_tracing_state() is not None
                or torch._C._is_torch_function_mode_enabled()
                or torch._C._len_torch_dispatch_stack()):
            return False
        wrapped = torch._C._functorch.is_functorch_wrapped_tensor
    except AttributeError:
        return False
    grad = torch.is_grad_enabled()
    return all(t is None or (type(t) is torch.Tensor and not (grad and t.requires_grad)
                             and not wrapped(t)) for t in tensors)


def attention(q, k, v, mask=None, *, scale=None, softcap=None, alibi_slopes=None, sinks=None,
              pos_offset=0, return_lse=False, threads=0, isa="auto"):
    """softmax(scale * q k^T over the allowed pairs) v on CPU tensors [B, H, T, D].

    q [B, Hq, Lq, Dqk], k [B, Hkv, Lk, Dqk], v [B, Hkv, Lk, Dv] (Hq a multiple of Hkv: grouped
    queries), float32, float16 or bfloat16, read where they are: any strides with a
    contiguous last axis (an expand()ed K/V is fine); another layout raises instead of
    copying. mask: None, a spattn.Mask, or a sequence of heads_q or batch * heads_q masks
    (from_block_mask / from_mask_mod convert FlexAttention masks). scale None is
    1/sqrt(Dqk); softcap, alibi_slopes ([Hq] floats) and sinks ([Hq] float32 tensor, may
    require grad) as in spattn.attention. threads 0 follows torch.get_num_threads().

    Differentiable in float32 (spattn_plan_backward) for q, k, v and sinks; a torch.library
    operator (spattn::attention), so torch.compile treats it as one node; a call with nothing
    for autograd or a mode to see runs the operator's implementation directly. Returns o of q's
    dtype, and with return_lse also lse [B, Hq, Lq] float32 (not differentiable).
    torch.autograd.gradcheck needs float64, which spattn does not compute: the tests compare
    the gradients with torch autograd of the dense formula in float64 instead (within 1e-4).
    The masks must stay alive until the backward has run (or their plan be cached).
    """
    check_problem(q, k, v)
    b, hq = q.shape[0], q.shape[1]
    if scale is not None and scale <= 0:
        raise ValueError("scale must be positive (None means 1/sqrt(dim_qk))")
    slopes = _head_tensor(alibi_slopes, hq, "alibi_slopes")
    sinks = _head_tensor(sinks, hq, "sinks")
    args = (q, k, v, mask_serials(mask, b, hq), None if scale is None else float(scale),
            None if softcap is None else float(softcap), slopes, sinks, int(pos_offset),
            int(threads), isa)
    if _direct((q, k, v, slopes, sinks)):
        o, lse = forward(*args, checked=True)
    else:
        o, lse = attention_op(*args)
    return (o, lse) if return_lse else o
