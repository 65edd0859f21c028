"""spattn.empty and spattn.aligned: arrays on 64-byte boundaries, and results that do not
depend on the alignment of the inputs."""

import numpy as np
import pytest

import spattn

ml_dtypes = pytest.importorskip("ml_dtypes")
DTYPES = [np.dtype(np.float32), np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16),
          np.dtype(np.int64)]


def offset(a):
    return a.ctypes.data % 64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [7, (1,), (3, 5), (1, 2, 33, 17), (2, 0, 4)])
def test_empty_is_contiguous_writable_and_on_a_64_byte_boundary(shape, dtype):
    a = spattn.empty(shape, dtype)
    want = (shape,) if isinstance(shape, int) else shape
    assert a.shape == want and a.dtype == dtype
    assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
    if a.size:
        assert offset(a) == 0
        a[...] = 1  # every element is the array's own memory
        assert (a == 1).all()


def test_empty_defaults_to_float32_and_refuses_bad_shapes():
    assert spattn.empty((2, 3)).dtype == np.float32
    with pytest.raises(ValueError):
        spattn.empty((2, -1))
    with pytest.raises(TypeError):
        spattn.empty((2, 1.5))


def misaligned(a, by):
    """A copy of a whose data starts `by` bytes past a 64-byte boundary."""
    raw = spattn.empty(a.nbytes + 64, np.uint8)
    out = raw[by:by + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert offset(out) == by
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_aligned_returns_an_aligned_array_as_it_is_and_copies_others(dtype):
    a = spattn.empty((3, 4, 5), dtype)
    a[...] = np.arange(60).reshape(3, 4, 5)
    assert spattn.aligned(a) is a
    b = misaligned(a, 16)
    c = spattn.aligned(b)
    assert c is not b and offset(c) == 0 and c.flags.c_contiguous
    assert c.dtype == dtype and (c == a).all()
    t = a.transpose(2, 0, 1)  # aligned start, not contiguous
    d = spattn.aligned(t)
    assert d is not t and offset(d) == 0 and d.flags.c_contiguous and (d == t).all()
    assert spattn.aligned([1.0, 2.0]).tolist() == [1.0, 2.0]


def test_outputs_are_aligned():
    rng = np.random.default_rng(3)
    q = k = v = misaligned(rng.standard_normal((1, 2, 40, 32)).astype(np.float32), 16)
    o = spattn.attention(q, k, v, spattn.Mask.causal(40))
    assert offset(o) == 0


@pytest.mark.parametrize("isa", spattn.isas())
@pytest.mark.parametrize("by", [4, 16, 48])
def test_results_do_not_depend_on_the_inputs_alignment(isa, by):
    # A few random keys per row (the gather path) and a causal mask (the tile path).
    rng = np.random.default_rng(11)
    n = 200
    cols = np.sort(np.stack([rng.choice(n, 16, replace=False) for _ in range(n)]), axis=1)
    masks = [spattn.Mask.from_csr(np.arange(n + 1) * 16, cols.reshape(-1), n),
             spattn.Mask.causal(n)]
    q, k, v = (rng.standard_normal((1, 2, n, 64)).astype(np.float32) for _ in range(3))
    for m in masks:
        want = spattn.attention(*(spattn.aligned(x) for x in (q, k, v)), m, isa=isa)
        got = spattn.attention(*(misaligned(x, by) for x in (q, k, v)), m, isa=isa)
        assert np.array_equal(want, got)
