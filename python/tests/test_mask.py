"""Every mask builder against the set its contract writes down, and the mask operations."""

import numpy as np
import pytest

import spattn
from oracle import bigbird_dense, grid

SHAPES = [(48, 48), (20, 70), (70, 20), (1, 100)]


def dense_of(name, lq, lk):
    i, j = grid(lq, lk)
    if name == "causal":
        return spattn.Mask.causal(lq, lk), j <= i
    if name == "window":
        return spattn.Mask.window(lq, lk, 5, 3), (j >= i - 5) & (j <= i + 3)
    if name == "strided":
        return spattn.Mask.strided(lq, lk, 6), (j <= i) & (((i - j) < 6) | ((i - j) % 6 == 0))
    if name == "fixed":
        return spattn.Mask.fixed(lq, lk, 8, 3), (j <= i) & ((j // 8 == i // 8) | (j % 8 >= 8 - 3))
    if name == "longformer":
        g = [0, 7, 7, lk - 1]
        band = (j >= i - 4) & (j <= i + 2)
        glob = np.isin(j, g) | np.isin(i, g)
        return spattn.Mask.longformer(lq, lk, 4, 2, g), band | glob
    if name == "bigbird":
        return (spattn.Mask.bigbird(lq, lk, 8, 1, 1, 2, seed=1234),
                bigbird_dense(lq, lk, 8, 1, 1, 2, 1234))
    if name == "dilated":
        ok = np.zeros((lq, lk), bool)
        ii = np.broadcast_to(i, (lq, lk))
        jj = np.broadcast_to(j, (lq, lk))
        for t in range(0, 4):
            ok |= jj == ii - 3 * t
        for t in range(1, 3):
            ok |= jj == ii + 3 * t
        return spattn.Mask.dilated(lq, lk, 3, 2, 3), ok
    if name == "streaming":
        return spattn.Mask.streaming(lq, lk, 4, 10), (j <= i) & ((j < 4) | (j > i - 10))
    raise AssertionError(name)


@pytest.mark.parametrize("lq,lk", SHAPES)
@pytest.mark.parametrize("name", ["causal", "window", "strided", "fixed", "longformer",
                                  "bigbird", "dilated", "streaming"])
def test_pattern_builders_match_their_definition(name, lq, lk):
    m, want = dense_of(name, lq, lk)
    with m:
        assert m.shape == (lq, lk) and (m.len_q, m.len_k) == (lq, lk)
        np.testing.assert_array_equal(m.to_dense(), want)
        assert m.nnz == want.sum()


def test_documents():
    lens = [5, 0, 7, 4]
    starts = np.cumsum([0] + lens)
    want = np.zeros((16, 16), bool)
    for s, n in zip(starts, lens):
        want[s:s + n, s:s + n] = True
    np.testing.assert_array_equal(spattn.Mask.documents(lens).to_dense(), want)
    np.testing.assert_array_equal(spattn.Mask.documents(lens, causal=True).to_dense(),
                                  want & np.tri(16, dtype=bool))


def test_documents_kv_is_bottom_right_aligned_in_each_document():
    ql, kl = [2, 3], [5, 1]
    m = spattn.Mask.documents([2, 3], causal=True, k_lens=[5, 1])
    want = np.zeros((5, 6), bool)
    qs, ks = 0, 0
    for nq, nk in zip(ql, kl):
        for r in range(nq):
            for t in range(nk):
                want[qs + r, ks + t] = t <= r + nk - nq
        qs, ks = qs + nq, ks + nk
    np.testing.assert_array_equal(m.to_dense(), want)


def test_from_dense_csr_blocks_round_trip():
    rng = np.random.default_rng(1)
    allowed = rng.random((37, 91)) < 0.2
    allowed[5] = False  # an empty row
    m = spattn.Mask.from_dense(allowed)
    np.testing.assert_array_equal(m.to_dense(), allowed)
    row_ptr, col_idx = m.to_csr()
    assert row_ptr.dtype == np.int64 and col_idx.dtype == np.int32
    assert row_ptr[0] == 0 and row_ptr[-1] == allowed.sum() == m.nnz
    m2 = spattn.Mask.from_csr(row_ptr, col_idx, 91)
    np.testing.assert_array_equal(m2.to_dense(), allowed)

    layout = rng.random((3, 4)) < 0.5
    mb = spattn.Mask.from_blocks(layout, 16, 32, len_q=40, len_k=100)
    want = np.kron(layout, np.ones((16, 32), bool))[:40, :100]
    np.testing.assert_array_equal(mb.to_dense(), want)


def test_from_fn_calls_the_predicate():
    m = spattn.Mask.from_fn(lambda i, j: (i + j) % 3 == 0, 9, 11)
    i, j = np.indices((9, 11))
    np.testing.assert_array_equal(m.to_dense(), (i + j) % 3 == 0)


def test_from_fn_reraises_the_predicate_error():
    def bad(i, j):
        raise KeyError("boom")

    with pytest.raises(KeyError):
        spattn.Mask.from_fn(bad, 4, 4)


def test_and_or_slice():
    a = spattn.Mask.causal(64, 80)
    b = spattn.Mask.window(64, 80, 10, 10)
    np.testing.assert_array_equal((a & b).to_dense(), a.to_dense() & b.to_dense())
    np.testing.assert_array_equal((a | b).to_dense(), a.to_dense() | b.to_dense())
    np.testing.assert_array_equal(a.slice(3, 50, 17, 79).to_dense(), a.to_dense()[3:50, 17:79])
    np.testing.assert_array_equal(b[10:, :40].to_dense(), b.to_dense()[10:, :40])


def test_malformed_inputs_raise_spattn_error():
    with pytest.raises(spattn.Error) as e:
        spattn.Mask.from_csr([0, 2, 1], [0, 1], 4)  # row_ptr decreasing
    assert e.value.status_name == "SPATTN_E_MASK" and e.value.status == 3
    with pytest.raises(spattn.Error) as e:
        spattn.Mask.from_csr([0, 2], [1, 1], 4)  # columns not strictly increasing
    assert e.value.status_name == "SPATTN_E_MASK"
    with pytest.raises(spattn.Error) as e:
        spattn.Mask.causal(0, 4)
    assert e.value.status_name == "SPATTN_E_SHAPE"
    assert "spattn_mask_causal" in str(e.value)
    with pytest.raises(spattn.Error):
        spattn.Mask.causal(8) & spattn.Mask.causal(8, 9)
    with pytest.raises(spattn.Error):
        spattn.Mask.causal(8).slice(4, 4, 0, 8)
    with pytest.raises(ValueError):
        spattn.Mask.from_blocks(np.ones((2, 2)), 4, 4, len_q=20)
    with pytest.raises(TypeError):
        spattn.Mask.causal(8) & np.ones((8, 8))


def test_closed_mask_refuses_use():
    m = spattn.Mask.causal(8)
    m.close()
    m.close()  # twice is harmless
    with pytest.raises(ValueError):
        m.nnz
    assert "closed" in repr(m)
