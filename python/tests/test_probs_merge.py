"""spattn.probs against the NumPy softmax; spattn.merge of key shards against the whole."""

import numpy as np

import spattn
from oracle import assert_close, attention64


def test_probs_and_col_sums():
    rng = np.random.default_rng(11)
    q = rng.standard_normal((2, 2, 24, 16)).astype(np.float32)
    k = rng.standard_normal((2, 1, 40, 16)).astype(np.float32)
    m = spattn.Mask.causal(24, 40) & spattn.Mask.strided(24, 40, 5)
    sinks = np.array([0.0, -np.inf], np.float32)
    p = spattn.probs(q, k, m, sinks=sinks, col_sums=True)

    allowed = m.to_dense()
    s = np.einsum("bhid,bhjd->bhij", q.astype(np.float64),
                  np.repeat(k, 2, axis=1).astype(np.float64)) / 4.0
    s = np.where(allowed, s, -np.inf)
    _, lse = attention64(q, np.repeat(k, 2, axis=1), np.zeros((2, 2, 40, 1)), allowed,
                         sinks=sinks)
    want = np.where(allowed, np.exp(s - lse[..., None]), 0.0)
    assert_close(p.to_dense(), want)
    assert_close(p.col_sums, want.sum(axis=2))
    assert p.values.size == 4 * m.nnz
    row_ptr, col_idx, vals = p.head(1, 1)
    np.testing.assert_array_equal(col_idx, m.to_csr()[1])
    assert_close(vals, want[1, 1][allowed])


def test_merge_of_two_key_shards_equals_the_whole():
    rng = np.random.default_rng(12)
    lq, lk, cut = 32, 80, 50
    q = rng.standard_normal((1, 2, lq, 16)).astype(np.float32)
    k = rng.standard_normal((1, 2, lk, 16)).astype(np.float32)
    v = rng.standard_normal((1, 2, lk, 8)).astype(np.float32)
    m = spattn.Mask.window(lq, lk, 40, 10)  # both sides: ALiBi distances change sign
    slopes = spattn.alibi_slopes(2)
    whole, whole_lse = spattn.attention(q, k, v, m, alibi_slopes=slopes, return_lse=True)
    parts = []
    for k0, k1 in ((0, cut), (cut, lk)):
        parts.append(spattn.attention(q, k[:, :, k0:k1], v[:, :, k0:k1], m[:, k0:k1],
                                      alibi_slopes=slopes, pos_offset=(lk - k1) - 0,
                                      return_lse=True))
    o, lse = spattn.merge([p[0] for p in parts], [p[1] for p in parts])
    assert o.shape == whole.shape and lse.shape == whole_lse.shape
    assert_close(o, whole)
    assert_close(lse, whole_lse)
    ref_o, ref_lse = attention64(q, k, v, m.to_dense(), slopes=slopes)
    assert_close(o, ref_o)
    assert_close(lse, ref_lse)


def test_merge_checks_its_parts():
    o = np.zeros((4, 8), np.float32)
    lse = np.zeros(4, np.float32)
    for bad in (([o], [lse, lse]), ([o, o[:2]], [lse, lse[:2]]), ([o.astype(np.float64)], [lse])):
        try:
            spattn.merge(*bad)
        except (ValueError, TypeError):
            continue
        raise AssertionError("merge accepted bad parts")


def test_probs_without_mask_and_col_sums_alone():
    rng = np.random.default_rng(13)
    q = rng.standard_normal((1, 1, 6, 8)).astype(np.float32)
    k = rng.standard_normal((1, 1, 9, 8)).astype(np.float32)
    p = spattn.probs(q, k)
    dense = p.to_dense()
    assert p.values.size == 6 * 9
    assert_close(dense.sum(axis=-1), np.ones((1, 1, 6)))
    s = (q[0, 0].astype(np.float64) @ k[0, 0].T.astype(np.float64)) / np.sqrt(8)
    want = np.exp(s - s.max(axis=1, keepdims=True))
    assert_close(dense[0, 0], want / want.sum(axis=1, keepdims=True))
    sums = spattn.probs(q, k, values=False, col_sums=True)
    assert sums.values is None
    assert_close(sums.col_sums, dense.sum(axis=2))
