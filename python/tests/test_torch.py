"""spattn.torch against torch: SDPA and the dense formula's autograd, torch.compile, opcheck.

gradcheck itself needs float64, which the library does not compute; the gradients are
compared instead with torch autograd of the dense formula in float64, within a float32
tolerance.
"""

import gc
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
st = pytest.importorskip("spattn.torch")
import spattn  # noqa: E402

needs_dtypes = pytest.mark.skipif(not spattn.has_dtypes(),
                                  reason="the loaded libspattn lacks the 0.2 element types")
needs_backward = pytest.mark.skipif(not spattn.has_backward(),
                                    reason="the loaded libspattn lacks spattn_plan_backward")

# The input tolerance of the narrowest type plus the output's rounding (as test_dtypes).
TOL = {torch.float32: 2e-5, torch.float16: 2e-3 + 2.0 ** -11, torch.bfloat16: 1e-2 + 2.0 ** -8}


def qkv(b=2, hq=4, hkv=2, lq=40, lk=56, d=16, dv=8, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, hq, lq, d, generator=g).to(dtype),
            torch.randn(b, hkv, lk, d, generator=g).to(dtype),
            torch.randn(b, hkv, lk, dv, generator=g).to(dtype))


def dense(q, k, v, allowed, *, scale=None, softcap=None, slopes=None, sinks=None):
    """The formula on dense scores in torch (differentiable), GQA by repeating K/V."""
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
    lq, lk = q.shape[2], k.shape[2]
    scale = 1 / math.sqrt(q.shape[3]) if scale is None else scale
    s = scale * q @ k.transpose(-1, -2)
    if softcap:
        s = softcap * torch.tanh(s / softcap)
    if slopes is not None:
        ip = torch.arange(lq)[:, None] + (lk - lq)
        s = s - slopes.to(s.dtype)[None, :, None, None] * (ip - torch.arange(lk)).abs()
    s = s.masked_fill(~allowed, -math.inf)
    if sinks is not None:
        col = sinks.to(s.dtype)[None, :, None, None].expand(*s.shape[:3], 1)
        s = torch.cat([s, col], dim=-1)
        v = torch.cat([v, torch.zeros_like(v[:, :, :1])], dim=2)
    return torch.softmax(s, dim=-1) @ v


def sdpa(q, k, v, allowed):
    g = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(g, dim=1), v.repeat_interleave(g, dim=1)
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


def close(got, want, tol):
    got, want = got.double(), want.double()
    err = (got - want).abs().max().item()
    assert err <= tol * max(1.0, want.abs().max().item()), err


@pytest.mark.parametrize("dtype", [
    torch.float32,
    pytest.param(torch.float16, marks=needs_dtypes),
    pytest.param(torch.bfloat16, marks=needs_dtypes),
])
def test_forward_against_sdpa_every_dtype_with_gqa(dtype):
    q, k, v = qkv(dtype=dtype)
    m = spattn.Mask.causal(40, 56) & spattn.Mask.window(40, 56, 24, 0)
    o = st.attention(q, k, v, m)
    assert o.dtype == dtype and o.shape == (2, 4, 40, 8)
    allowed = torch.from_numpy(m.to_dense())
    # The reference on the same (rounded) inputs, in float32.
    close(o, sdpa(q.float(), k.float(), v.float(), allowed), TOL[dtype])


def test_strided_views_are_read_in_place_and_masks_per_head():
    g = torch.Generator().manual_seed(3)
    # [B, T, H, D] storage seen as [B, H, T, D]; K/V shared over the batch by expand().
    q = torch.randn(2, 30, 4, 16, generator=g).transpose(1, 2)
    k = torch.randn(1, 2, 30, 16, generator=g).expand(2, -1, -1, -1)
    v = torch.randn(1, 30, 2, 16, generator=g).transpose(1, 2).expand(2, -1, -1, -1)
    masks = [spattn.Mask.causal(30), spattn.Mask.window(30, 30, 5, 5),
             spattn.Mask.strided(30, 30, 6), spattn.Mask.causal(30)]
    o, lse = st.attention(q, k, v, masks, return_lse=True)
    allowed = torch.stack([torch.from_numpy(m.to_dense()) for m in masks])[None]
    close(o, sdpa(q, k, v, allowed), 2e-5)
    assert lse.shape == (2, 4, 30) and lse.dtype == torch.float32
    lse_ref = torch.logsumexp(
        (q @ k.repeat_interleave(2, 1).transpose(-1, -2) / 4).masked_fill(~allowed, -math.inf),
        dim=-1)
    close(lse, lse_ref, 2e-5)


def test_softcap_sinks_alibi_against_the_dense_formula():
    q, k, v = qkv(seed=5)
    m = spattn.Mask.causal(40, 56)
    sinks = torch.tensor([0.5, -1.0, 2.0, 0.0])
    slopes = torch.tensor(spattn.alibi_slopes(4))
    o = st.attention(q, k, v, m, scale=0.3, softcap=5.0, sinks=sinks, alibi_slopes=slopes)
    want = dense(q.double(), k.double(), v.double(), torch.from_numpy(m.to_dense()),
                 scale=0.3, softcap=5.0, slopes=slopes, sinks=sinks)
    close(o, want, 2e-5)


def _grads(fn, tensors, d_o):
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    (fn(*leaves) * d_o).sum().backward()
    return [t.grad for t in leaves]


@needs_backward
@pytest.mark.parametrize("softcap,with_sinks", [(None, False), (4.0, True)])
def test_gradients_against_autograd_of_the_dense_formula(softcap, with_sinks):
    q, k, v = qkv(seed=7)
    sinks = torch.tensor([0.3, -1.0, 1.0, -0.5]) if with_sinks else None
    m = spattn.Mask.causal(40, 56) | spattn.Mask.fixed(40, 56, 8, 2)
    allowed = torch.from_numpy(m.to_dense())
    d_o = torch.randn(2, 4, 40, 8, generator=torch.Generator().manual_seed(8))
    ins = [q, k, v] + ([sinks] if with_sinks else [])

    def ours(q, k, v, s=None):
        return st.attention(q, k, v, m, softcap=softcap, sinks=s)

    def theirs(q, k, v, s=None):
        return dense(q, k, v, allowed, softcap=softcap, sinks=s)

    got = _grads(ours, ins, d_o)
    want = _grads(theirs, [t.double() for t in ins], d_o.double())
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == torch.float32
        close(g, w, 1e-4)


@needs_backward
def test_torch_compile_fullgraph_forward_and_backward():
    q, k, v = qkv(seed=9)
    m = spattn.Mask.window(40, 56, 16, 0)
    allowed = torch.from_numpy(m.to_dense())

    def layer(q, k, v):
        return st.attention(q * 2, k, v, m, scale=0.25).relu()

    # aot_eager: Dynamo and AOTAutograd with the operator's fake implementations, without
    # Inductor's C++ compile (minutes on a small CI machine).
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    d_o = torch.randn(2, 4, 40, 8)
    got = _grads(compiled, [q, k, v], d_o)
    want = _grads(lambda q, k, v: dense(q * 2, k, v, allowed, scale=0.25).relu(),
                  [t.double() for t in (q, k, v)], d_o.double())
    for g, w in zip(got, want):
        close(g, w, 1e-4)
    close(compiled(q, k, v), layer(q, k, v), 1e-6)


@needs_backward
def test_opcheck():
    q, k, v = qkv(b=1, hq=2, hkv=1, lq=8, lk=8, d=8, dv=8, seed=11)
    q.requires_grad_()
    m = spattn.Mask.causal(8)
    torch.library.opcheck(torch.ops.spattn.attention.default,
                          (q, k, v, [m.serial], None, None, None, None, 0, 1, "auto"))


def _flex():
    return pytest.importorskip("torch.nn.attention.flex_attention")


def _check_conversion(block_mask, mask_mod, lq, lk):
    fa = _flex()
    got = st.from_block_mask(block_mask)
    want = fa.create_mask(mask_mod, 1, 1, lq, lk, device="cpu")[0, 0].numpy()
    assert isinstance(got, spattn.Mask) and got.shape == (lq, lk)
    np.testing.assert_array_equal(got.to_dense(), want)
    np.testing.assert_array_equal(st.from_mask_mod(mask_mod, None, None, lq, lk).to_dense(),
                                  want)


@pytest.mark.parametrize("lq,lk,block", [(200, 200, 64), (96, 160, 32)])
def test_from_block_mask_causal_and_sliding_window(lq, lk, block):
    fa = _flex()
    off = lk - lq

    def causal(b, h, qi, ki):
        return ki <= qi + off

    def window(b, h, qi, ki):
        return (ki <= qi + off) & (qi + off - ki <= 40)

    for mod in (causal, window):
        bm = fa.create_block_mask(mod, None, None, lq, lk, device="cpu", BLOCK_SIZE=block)
        _check_conversion(bm, mod, lq, lk)
    assert np.array_equal(st.from_block_mask(
        fa.create_block_mask(causal, None, None, lq, lk, device="cpu", BLOCK_SIZE=block)
    ).to_dense(), spattn.Mask.causal(lq, lk).to_dense())


def test_from_block_mask_of_blocks_alone():
    fa = _flex()
    layout = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 1, 0]], dtype=torch.bool)
    bm = fa.BlockMask.from_kv_blocks(
        layout.sum(1).int()[None, None],
        torch.argsort(~layout, dim=1, stable=True).int()[None, None],
        BLOCK_SIZE=32, seq_lengths=(96, 128))
    got = st.from_block_mask(bm)
    want = spattn.Mask.from_blocks(layout.numpy(), 32, 32)
    np.testing.assert_array_equal(got.to_dense(), want.to_dense())


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_from_block_mask_per_head_feeds_attention():
    fa = _flex()

    def per_head(b, h, qi, ki):
        return (ki <= qi) & ((qi - ki) % (h + 2) == 0)

    bm = fa.create_block_mask(per_head, 1, 4, 64, 64, device="cpu", BLOCK_SIZE=16)
    masks = st.from_block_mask(bm)
    assert isinstance(masks, list) and len(masks) == 4
    allowed = fa.create_mask(per_head, 1, 4, 64, 64, device="cpu")
    for h, m in enumerate(masks):
        np.testing.assert_array_equal(m.to_dense(), allowed[0, h].numpy())
    q, k, v = qkv(b=1, hq=4, hkv=4, lq=64, lk=64, seed=13)
    close(st.attention(q, k, v, masks), sdpa(q, k, v, allowed), 2e-5)
    close(st.attention(q, k, v, masks),
          fa.flex_attention(q, k, v, block_mask=bm), 2e-5)


def test_bad_inputs_raise():
    q, k, v = qkv()
    m = spattn.Mask.causal(40, 56)
    with pytest.raises(TypeError, match="float32, float16 or bfloat16"):
        st.attention(q.double(), k, v, m)
    with pytest.raises(TypeError, match="torch.Tensor"):
        st.attention(q.numpy(), k, v, m)
    with pytest.raises(ValueError, match="contiguous"):
        st.attention(q, k.transpose(2, 3).contiguous().transpose(2, 3)[..., :8], v, m)
    with pytest.raises(ValueError, match=r"\[batch, heads, tokens, dim\]"):
        st.attention(q[0], k, v, m)
    with pytest.raises(ValueError, match="multiple"):
        st.attention(q[:, :3], k, v, m)
    with pytest.raises(ValueError, match="dim"):
        st.attention(q[..., :8], k, v, m)
    with pytest.raises(TypeError, match="one dtype"):
        st.attention(q, k, v.half(), m)
    with pytest.raises(ValueError, match="3 masks"):
        st.attention(q, k, v, [m, m, m])
    with pytest.raises(TypeError, match="spattn.Mask"):
        st.attention(q, k, v, torch.ones(40, 56, dtype=torch.bool))
    with pytest.raises(ValueError, match="sinks"):
        st.attention(q, k, v, m, sinks=torch.zeros(3))
    with pytest.raises(spattn.Error, match="SPATTN_E_MASK"):
        st.attention(q, k, v, spattn.Mask.causal(40))
    with pytest.raises(ValueError, match="isa"):
        st.attention(q, k, v, m, isa="nonsense")


@needs_backward
@needs_dtypes
def test_half_backward_raises_and_collected_masks_are_named():
    q, k, v = (t.half().requires_grad_() for t in qkv())
    o = st.attention(q, k, v, spattn.Mask.causal(40, 56))
    with pytest.raises(TypeError, match="float32"):
        o.sum().backward()
    q, k, v = qkv()
    m = spattn.Mask.causal(40, 56)
    serial = m.serial
    del m
    gc.collect()
    with pytest.raises(ValueError, match="collected"):
        torch.ops.spattn.attention(q, k, v, [serial], None, None, None, None, 0, 1, "auto")


def test_from_block_mask_per_batch_needs_heads():
    fa = _flex()
    lens = torch.tensor([40, 64])

    def padded(b, h, qi, ki):
        return (ki <= qi) & (ki < lens[b])

    bm = fa.create_block_mask(padded, 2, None, 64, 64, device="cpu", BLOCK_SIZE=16)
    with pytest.raises(ValueError, match="heads="):
        st.from_block_mask(bm)
    masks = st.from_block_mask(bm, heads=3)
    assert len(masks) == 6
    allowed = fa.create_mask(padded, 2, 1, 64, 64, device="cpu")
    for i, m in enumerate(masks):
        np.testing.assert_array_equal(m.to_dense(), allowed[i // 3, 0].numpy())
    assert len(st.from_mask_mod(padded, 2, None, 64, 64, heads=3)) == 6


def test_the_operator_checks_its_inputs_itself():
    # torch.ops.spattn.attention is public too: it must not let the library read past a tensor.
    q, k, v = qkv()
    m = spattn.Mask.causal(40, 56)
    s = [m.serial]
    op = torch.ops.spattn.attention
    with pytest.raises(ValueError, match="batch"):
        op(q, k[:1], v[:1], s, None, None, None, None, 0, 1, "auto")
    with pytest.raises(ValueError, match="multiple"):
        op(q[:, :3], k, v, s, None, None, None, None, 0, 1, "auto")
    with pytest.raises(ValueError, match="sinks"):
        op(q, k, v, s, None, None, None, torch.zeros(2), 0, 1, "auto")
    with pytest.raises(ValueError, match="alibi_slopes"):
        op(q, k, v, s, None, None, torch.zeros(8), None, 0, 1, "auto")


def test_plain_calls_skip_the_operator_and_give_its_bits(monkeypatch):
    from spattn.torch import _api

    q, k, v = qkv()
    m = spattn.Mask.causal(40, 56)
    sinks, slopes = torch.linspace(-1, 1, 4), torch.linspace(0.1, 0.4, 4)
    kw = dict(softcap=20.0, alibi_slopes=slopes, sinks=sinks, return_lse=True, threads=1)
    via_op = torch.ops.spattn.attention(q, k, v, [m.serial], None, 20.0, slopes, sinks, 0, 1,
                                        "auto")
    called = []
    real = _api.attention_op

    def op(*args):
        called.append(1)
        return real(*args)

    monkeypatch.setattr(_api, "attention_op", op)
    o, lse = st.attention(q, k, v, m, **kw)  # nothing to record or intercept: no operator
    assert not called
    assert torch.equal(o, via_op[0]) and torch.equal(lse, via_op[1])
    with torch.no_grad():  # requires_grad under no_grad: still nothing to record
        st.attention(q.requires_grad_(), k, v, m)
    assert not called
    o = st.attention(q, k, v, m)  # q requires grad: autograd needs the operator
    assert len(called) == 1 and o.grad_fn is not None


def test_dispatch_modes_see_the_operator():
    from torch.utils._python_dispatch import TorchDispatchMode

    class Seen(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    q, k, v = qkv()
    m = spattn.Mask.causal(40, 56)
    with Seen() as seen:
        o = st.attention(q, k, v, m)
    assert any("spattn.attention" in name for name in seen.ops), seen.ops
    close(o, sdpa(q, k, v, torch.from_numpy(m.to_dense())), TOL[torch.float32])


# The shape checks read shapes as constants (TracerWarning), and torch.jit.trace is deprecated
# (FutureWarning); what matters is that a trace still records the operator.
@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_jit_trace_records_the_operator():
    q, k, v = qkv()
    m = spattn.Mask.causal(40, 56)
    traced = torch.jit.trace(lambda q, k, v: st.attention(q, k, v, m), (q, k, v),
                             check_trace=False)
    assert "spattn::attention" in str(traced.graph)
    q2 = torch.randn_like(q)
    assert torch.equal(traced(q2, k, v), st.attention(q2, k, v, m))
