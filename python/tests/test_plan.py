"""spattn.Plan: made once, run many times, equal to spattn.attention."""

import threading

import numpy as np
import pytest

import spattn


def test_plan_runs_many_times_like_attention():
    rng = np.random.default_rng(3)
    m = spattn.Mask.window(64, 64, 16, 0)
    with spattn.Plan(m, batch=2, heads_q=4, heads_kv=2, len_q=64, dim_qk=32, threads=2) as plan:
        m.close()  # the plan keeps its masks
        assert plan.shape == (2, 4, 2, 64, 64, 32, 32)
        assert plan.isa in spattn.isas() and plan.threads >= 1
        for _ in range(3):
            q = rng.standard_normal((2, 4, 64, 32)).astype(np.float32)
            k = rng.standard_normal((2, 2, 64, 32)).astype(np.float32)
            v = rng.standard_normal((2, 2, 64, 32)).astype(np.float32)
            o, lse = plan(q, k, v, return_lse=True)
            o2, lse2 = spattn.attention(q, k, v, spattn.Mask.window(64, 64, 16, 0),
                                        return_lse=True, threads=2)
            np.testing.assert_array_equal(o, o2)
            np.testing.assert_array_equal(lse, lse2)


def test_plan_from_threads_at_once():
    rng = np.random.default_rng(4)
    q, k, v = (rng.standard_normal((1, 2, 48, 16)).astype(np.float32) for _ in range(3))
    plan = spattn.Plan.like(q, k, v, spattn.Mask.causal(48), threads=1)
    want = plan(q, k, v)
    got = [None] * 4

    def run(t):
        got[t] = plan(q, k, v)

    ts = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for g in got:
        np.testing.assert_array_equal(g, want)


def test_plan_refuses_other_shapes():
    q = np.zeros((1, 2, 16, 8), np.float32)
    plan = spattn.Plan.like(q, q, q)
    with pytest.raises(ValueError, match="plan for"):
        plan(q[:, :, :8], q, q)
    with pytest.raises(ValueError, match="out has shape"):
        plan(q, q, q, out=np.zeros((1, 2, 16, 4), np.float32))
    plan.close()
    with pytest.raises(ValueError, match="closed"):
        plan(q, q, q)
