"""float16 and bfloat16 tensors (libspattn 0.2 element types)."""

import numpy as np
import pytest

import spattn
from oracle import assert_close, attention64

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)

needs_dtypes = pytest.mark.skipif(
    not spattn.has_dtypes(),
    reason="the loaded libspattn lacks the 0.2 element types (spattn_f32_to_bf16)")

# The contract's input tolerance by the narrowest input type, and output rounding.
T_IN = {F32: 2e-5, F16: 2e-3, BF16: 1e-2}
T_OUT = {F32: 0.0, BF16: 2.0 ** -8, F16: 2.0 ** -11}


@needs_dtypes
@pytest.mark.parametrize("qt,kvt,ot", [(F16, F16, F16), (BF16, BF16, BF16), (F32, BF16, F32),
                                       (F16, F32, BF16), (BF16, F16, F32), (F32, F32, F16)])
def test_every_dtype_against_the_formula_on_the_exact_inputs(qt, kvt, ot):
    rng = np.random.default_rng(21)
    q = rng.standard_normal((1, 4, 33, 32)).astype(qt)
    k = rng.standard_normal((1, 2, 50, 32)).astype(kvt)
    v = rng.standard_normal((1, 2, 50, 32)).astype(kvt)
    m = spattn.Mask.causal(33, 50) | spattn.Mask.fixed(33, 50, 16, 2)
    o, lse = spattn.attention(q, k, v, m, out_dtype=ot, return_lse=True)
    assert o.dtype == ot and lse.dtype == np.float32
    fo, fl = attention64(q.astype(np.float64), k.astype(np.float64), v.astype(np.float64),
                         m.to_dense())
    t_in = max(T_IN[qt], T_IN[kvt])
    assert_close(o.astype(np.float64), fo, tol=t_in + T_OUT[ot])
    assert_close(lse, fl, tol=t_in)
    ro = spattn.reference_attention(q, k, v, m, out_dtype=ot)
    assert_close(o.astype(np.float64), ro.astype(np.float64), tol=t_in + 2 * T_OUT[ot])


@needs_dtypes
def test_output_dtype_defaults_to_q_and_plans_take_any_dtype():
    rng = np.random.default_rng(22)
    q = rng.standard_normal((1, 2, 16, 16)).astype(F16)
    kv = rng.standard_normal((1, 2, 16, 16)).astype(BF16)
    assert spattn.attention(q, kv, kv).dtype == F16
    plan = spattn.Plan.like(q, kv, kv)
    o16 = plan(q, kv, kv)
    o32 = plan(q.astype(F32), kv.astype(F32), kv.astype(F32))
    assert_close(o16.astype(np.float64), o32, tol=1e-2 + 2.0 ** -11)


@pytest.mark.skipif(spattn.has_dtypes(), reason="the loaded libspattn has element types")
def test_half_inputs_raise_without_library_support():
    q = np.zeros((1, 1, 4, 4), F16)
    with pytest.raises(NotImplementedError, match="spattn_f32_to_bf16"):
        spattn.attention(q, q, q)
