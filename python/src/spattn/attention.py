"""spattn.attention: one forward call on NumPy arrays (spattn_forward)."""

from ._lib import check, lib
from ._options import make_options
from ._problem import Problem, mask_array


def attention(q, k, v, mask=None, *, scale=None, softcap=None, alibi_slopes=None, sinks=None,
              pos_offset=0, return_lse=False, out_dtype=None, threads=0, isa="auto"):
    """softmax(scale * q k^T over the allowed pairs) v, on [batch, heads, tokens, dim] arrays.

    q: [B, Hq, Lq, Dqk]; k: [B, Hkv, Lk, Dqk]; v: [B, Hkv, Lk, Dv], Hq a multiple of Hkv
    (query head h reads kv head h // (Hq // Hkv)). Any strides a spattn layout expresses are
    taken as they are (non-negative multiples of the item size, the last axis contiguous; a
    stride of 0 broadcasts); others raise ValueError rather than copy. float32, and float16 /
    bfloat16 with a 0.2 library; k and v share a dtype.

    mask: None (every pair), one spattn.Mask for every head, or a sequence of heads_q or
    batch * heads_q masks (index b * heads_q + h). scale None means 1/sqrt(Dqk); softcap,
    alibi_slopes (Hq floats), sinks (Hq floats) and pos_offset as in spattn_args.

    Returns o [B, Hq, Lq, Dv] of out_dtype (default: q's dtype), and with return_lse also
    lse [B, Hq, Lq] float32. Raises spattn.Error when the library refuses the call.
    """
    p = Problem(q, k, v, scale=scale, softcap=softcap, alibi_slopes=alibi_slopes, sinks=sinks,
                pos_offset=pos_offset)
    masks, n, _keep = mask_array(mask, p.shape.batch, p.shape.heads_q)
    opt = make_options(threads, isa)
    o = p.outputs(out_dtype, return_lse)
    check(lib.spattn_forward(p.args, masks, n, opt), "spattn_forward")
    return (o, p.lse) if return_lse else o


def reference_attention(q, k, v, mask=None, *, scale=None, softcap=None, alibi_slopes=None,
                        sinks=None, pos_offset=0, return_lse=False, out_dtype=None):
    """The same computed by spattn_reference_forward: float64 pair by pair (slow; an oracle)."""
    p = Problem(q, k, v, scale=scale, softcap=softcap, alibi_slopes=alibi_slopes, sinks=sinks,
                pos_offset=pos_offset)
    masks, n, _keep = mask_array(mask, p.shape.batch, p.shape.heads_q)
    o = p.outputs(out_dtype, return_lse)
    check(lib.spattn_reference_forward(p.args, masks, n), "spattn_reference_forward")
    return (o, p.lse) if return_lse else o
