"""Bad inputs raise: Python-side checks before the call, spattn.Error from the library."""

import numpy as np
import pytest

import spattn
from oracle import assert_close, attention64


def arrays(b=1, hq=2, hkv=2, lq=8, lk=8, d=8, dv=8, dtype=np.float32):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((b, hq, lq, d)).astype(dtype),
            rng.standard_normal((b, hkv, lk, d)).astype(dtype),
            rng.standard_normal((b, hkv, lk, dv)).astype(dtype))


def test_shape_mismatches():
    q, k, v = arrays()
    with pytest.raises(ValueError, match="dim"):
        spattn.attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="batch"):
        spattn.attention(q, np.concatenate([k, k]), np.concatenate([v, v]))
    with pytest.raises(ValueError, match="multiple"):
        q3, k3, v3 = arrays(hq=3, hkv=2)
        spattn.attention(q3, k3, v3)
    with pytest.raises(ValueError, match="v has shape"):
        spattn.attention(q, k, v[:, :, :4])
    with pytest.raises(ValueError, match="4 dimensions"):
        spattn.attention(q[0], k, v)
    with pytest.raises(ValueError, match="masks given"):
        spattn.attention(q, k, v, [spattn.Mask.causal(8)] * 3)


def test_mask_of_the_wrong_shape_is_the_librarys_error():
    q, k, v = arrays()
    with pytest.raises(spattn.Error) as e:
        spattn.attention(q, k, v, spattn.Mask.causal(8, 9))
    assert e.value.status_name == "SPATTN_E_MASK"
    assert e.value.function == "spattn_forward" and e.value.message


def test_wrong_dtypes():
    q, k, v = arrays()
    with pytest.raises(TypeError, match="float32"):
        spattn.attention(q.astype(np.float64), k, v)
    with pytest.raises(TypeError, match="one dtype"):
        spattn.attention(q, k, v.astype(np.float64))
    with pytest.raises(TypeError, match="ndarray"):
        spattn.attention(q.tolist(), k, v)
    with pytest.raises(TypeError):
        spattn.attention(q.astype(np.int32), k, v)


def test_strides_no_layout_expresses():
    q, k, v = arrays(d=16)
    with pytest.raises(ValueError, match="contiguous"):
        spattn.attention(q[..., ::2], k[..., ::2], v)
    with pytest.raises(ValueError, match="not expressible"):
        spattn.attention(q, k[:, :, ::-1], v)
    raw = np.zeros(q.nbytes + 2, np.uint8)[2:].view(np.float32)  # misaligned by 2 bytes
    with pytest.raises(ValueError):
        spattn.attention(raw.reshape(q.shape), k, v)


def test_bad_and_unavailable_isa_and_threads():
    q, k, v = arrays()
    with pytest.raises(ValueError, match="isa must be one of"):
        spattn.attention(q, k, v, isa="sse9")
    missing = [n for n in ("avx2", "avx512", "neon") if n not in spattn.isas()]
    assert missing  # no machine runs both x86 and Arm kernels
    with pytest.raises(spattn.Error) as e:
        spattn.attention(q, k, v, isa=missing[0])
    assert e.value.status_name == "SPATTN_E_UNSUPPORTED"
    with pytest.raises(ValueError):
        spattn.attention(q, k, v, threads=-1)


def test_bad_scalars():
    q, k, v = arrays()
    with pytest.raises(ValueError):
        spattn.attention(q, k, v, scale=0)
    for kw in (dict(scale=-1.0), dict(scale=np.inf), dict(softcap=-2.0),
               dict(alibi_slopes=[np.nan, 1.0]), dict(sinks=[np.inf, 0.0])):
        with pytest.raises(spattn.Error) as e:
            spattn.attention(q, k, v, **kw)
        assert e.value.status_name == "SPATTN_E_ARG", kw
    with pytest.raises(ValueError, match="heads_q"):
        spattn.attention(q, k, v, sinks=[0.0])


def test_error_leaves_a_given_output_unwritten():
    q, k, v = arrays()
    plan = spattn.Plan.like(q, k, v)
    out = np.full((1, 2, 8, 8), 7.0, np.float32)
    with pytest.raises(spattn.Error):
        plan(q, k, v, scale=-1.0, out=out)
    assert (out == 7.0).all()
    plan(q, k, v, out=out)
    assert_close(out, attention64(q, k, v)[0])
