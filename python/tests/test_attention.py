"""spattn.attention against the library's float64 reference and a NumPy float64 formula."""

import numpy as np
import pytest

import spattn
from oracle import assert_close, attention64


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


@pytest.mark.parametrize("isa", spattn.isas())
@pytest.mark.parametrize("hq,hkv", [(4, 4), (4, 2), (4, 1)])
def test_matches_reference_and_formula(rng, isa, hq, hkv):
    q, k, v = rand(rng, 2, hq, 40, 32), rand(rng, 2, hkv, 72, 32), rand(rng, 2, hkv, 72, 16)
    m = spattn.Mask.causal(40, 72) | spattn.Mask.strided(40, 72, 7)
    o, lse = spattn.attention(q, k, v, m, return_lse=True, isa=isa, threads=2)
    ro, rl = spattn.reference_attention(q, k, v, m, return_lse=True)
    assert o.shape == (2, hq, 40, 16) and o.dtype == np.float32 and lse.shape == (2, hq, 40)
    assert_close(o, ro)
    assert_close(lse, rl)
    fo, fl = attention64(q, k, v, m.to_dense())
    assert_close(o, fo)
    assert_close(lse, fl)


def test_no_mask_means_every_pair(rng):
    q, k, v = rand(rng, 1, 2, 17, 8), rand(rng, 1, 2, 33, 8), rand(rng, 1, 2, 33, 8)
    assert_close(spattn.attention(q, k, v), attention64(q, k, v)[0])


def test_score_modifiers(rng):
    q, k, v = rand(rng, 1, 4, 24, 16), rand(rng, 1, 4, 24, 16), rand(rng, 1, 4, 24, 16)
    m = spattn.Mask.causal(24)
    slopes = spattn.alibi_slopes(4)
    np.testing.assert_array_equal(slopes, [2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8])
    sinks = np.array([0.5, -1.0, -np.inf, 2.0], np.float32)
    kw = dict(scale=0.3, softcap=5.0, alibi_slopes=slopes, sinks=sinks, pos_offset=3)
    o, lse = spattn.attention(q, k, v, m, return_lse=True, **kw)
    fo, fl = attention64(q, k, v, m.to_dense(), scale=0.3, softcap=5.0, slopes=slopes,
                         sinks=sinks, pos_offset=3)
    assert_close(o, fo)
    assert_close(lse, fl)


def test_masks_per_head_and_per_batch_head(rng):
    q, k, v = rand(rng, 2, 3, 20, 8), rand(rng, 2, 3, 20, 8), rand(rng, 2, 3, 20, 8)
    heads = [spattn.Mask.causal(20), spattn.Mask.window(20, 20, 2, 2),
             spattn.Mask.streaming(20, 20, 1, 3)]
    allowed = np.stack([m.to_dense() for m in heads])[None]
    assert_close(spattn.attention(q, k, v, heads), attention64(q, k, v, allowed)[0])
    every = heads + heads[::-1]
    allowed = np.stack([m.to_dense() for m in every]).reshape(2, 3, 20, 20)
    assert_close(spattn.attention(q, k, v, every), attention64(q, k, v, allowed)[0])


def test_fully_masked_rows_give_zero_and_minus_inf(rng):
    q, k, v = rand(rng, 1, 1, 8, 8), rand(rng, 1, 1, 4, 8), rand(rng, 1, 1, 4, 8)
    o, lse = spattn.attention(q, k, v, spattn.Mask.causal(8, 4), return_lse=True)
    assert (o[0, 0, :4] == 0).all() and np.isneginf(lse[0, 0, :4]).all()
    assert np.isfinite(lse[0, 0, 4:]).all()


def test_strided_views_are_read_in_place(rng):
    # [B, T, H, D] storage seen as [B, H, T, D]; every other head; a K shared by the batch.
    qs = rand(rng, 2, 30, 6, 16)
    q = qs.transpose(0, 2, 1, 3)[:, ::2]
    k = np.broadcast_to(rand(rng, 1, 3, 50, 16), (2, 3, 50, 16))
    vs = rand(rng, 2, 3, 50, 24)
    v = vs[..., 4:20]  # rows of 24 floats, 16 used: token stride 24
    assert not q.flags.c_contiguous and k.strides[0] == 0
    m = spattn.Mask.window(30, 50, 8, 0)
    o = spattn.attention(q, k, v, m)
    assert_close(o, attention64(q, k, v, m.to_dense())[0])
    assert_close(o, spattn.reference_attention(np.ascontiguousarray(q), np.ascontiguousarray(k),
                                               np.ascontiguousarray(v), m))


def test_results_do_not_depend_on_threads(rng):
    q, k, v = rand(rng, 2, 4, 96, 32), rand(rng, 2, 4, 96, 32), rand(rng, 2, 4, 96, 32)
    m = spattn.Mask.bigbird(96, 96, 16, 1, 1, 2, seed=5)
    np.testing.assert_array_equal(spattn.attention(q, k, v, m, threads=1),
                                  spattn.attention(q, k, v, m, threads=2))


def test_length_one_axes_take_any_stride(rng):
    q0, k, v = rand(rng, 1, 1, 16, 8), rand(rng, 1, 1, 16, 8), rand(rng, 1, 1, 16, 8)
    # A batch and head stride no layout could express, on axes never stepped along.
    q = np.lib.stride_tricks.as_strided(q0, strides=(3, 5) + q0.strides[2:])
    np.testing.assert_array_equal(q, q0)
    assert_close(spattn.attention(q, k, v), attention64(q0, k, v)[0])
