"""Plan.backward (spattn_plan_backward) against the float64 reference and the chain rule."""

import numpy as np
import pytest

import spattn
from oracle import assert_close, grads64

needs_backward = pytest.mark.skipif(
    not spattn.has_backward(), reason="the loaded libspattn lacks spattn_plan_backward")


@needs_backward
@pytest.mark.parametrize("softcap,with_sinks", [(None, False), (4.0, True)])
def test_gradients(softcap, with_sinks):
    rng = np.random.default_rng(31)
    q = rng.standard_normal((2, 4, 24, 16)).astype(np.float32)
    k = rng.standard_normal((2, 2, 40, 16)).astype(np.float32)
    v = rng.standard_normal((2, 2, 40, 8)).astype(np.float32)
    d_o = rng.standard_normal((2, 4, 24, 8)).astype(np.float32)
    sinks = np.array([0.3, -np.inf, 1.0, -0.5], np.float32) if with_sinks else None
    m = spattn.Mask.causal(24, 40) & spattn.Mask.window(24, 40, 20, 0)
    plan = spattn.Plan.like(q, k, v, m)
    o, lse = plan(q, k, v, softcap=softcap, sinks=sinks, return_lse=True)
    got = plan.backward(q, k, v, o, lse, d_o, softcap=softcap, sinks=sinks)
    ref = spattn.reference_backward(q, k, v, d_o, m, softcap=softcap, sinks=sinks)
    want = grads64(q, k, v, d_o, m.to_dense(), softcap=softcap, sinks=sinks)
    for name, g, r, w in zip(("d_q", "d_k", "d_v", "d_sinks"), got, ref, want):
        if w is None:
            assert g is None and r is None, name
            continue
        assert g.shape == w.shape, name
        assert_close(g, r, tol=1e-4)
        assert_close(g, w, tol=1e-4)


@needs_backward
def test_backward_needs_float32_and_matching_shapes():
    q = np.zeros((1, 1, 8, 8), np.float32)
    plan = spattn.Plan.like(q, q, q)
    o, lse = plan(q, q, q, return_lse=True)
    with pytest.raises(ValueError, match="lse"):
        plan.backward(q, q, q, o, lse[:, :, :4], o)
    with pytest.raises(TypeError, match="float32"):
        plan.backward(q, q, q, o, lse.astype(np.float64), o)


@pytest.mark.skipif(spattn.has_backward(), reason="the loaded libspattn has the backward")
def test_backward_raises_without_library_support():
    q = np.zeros((1, 1, 8, 8), np.float32)
    plan = spattn.Plan.like(q, q, q)
    o, lse = plan(q, q, q, return_lse=True)
    with pytest.raises(NotImplementedError, match="spattn_plan_backward"):
        plan.backward(q, q, q, o, lse, o)
    with pytest.raises(NotImplementedError, match="spattn_reference_backward"):
        spattn.reference_backward(q, q, q, o)
