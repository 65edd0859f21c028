"""Float64 formulas the tests compare the library with, written from the API contract."""

import numpy as np

M64 = (1 << 64) - 1


def attention64(q, k, v, allowed=None, *, scale=None, softcap=None, slopes=None, sinks=None,
                pos_offset=0):
    """(o, lse) in float64. allowed broadcasts to [B, Hq, Lq, Lk] (None: every pair)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    b, hq, lq, d = q.shape
    g = hq // k.shape[1]
    k, v = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
    lk = k.shape[2]
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    s = scale * np.einsum("bhid,bhjd->bhij", q, k)
    if softcap:
        s = softcap * np.tanh(s / softcap)
    if slopes is not None:
        ip = np.arange(lq)[:, None] + (lk - lq) + pos_offset
        dist = np.abs(ip - np.arange(lk)[None, :])
        s = s - np.asarray(slopes, np.float64)[None, :, None, None] * dist
    if allowed is None:
        allowed = np.ones((lq, lk), bool)
    allowed = np.broadcast_to(allowed, s.shape)
    s = np.where(allowed, s, -np.inf)
    m = s.max(axis=-1)
    if sinks is not None:
        sk = np.broadcast_to(np.asarray(sinks, np.float64)[None, :, None], m.shape)
        m = np.maximum(m, sk)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    p = np.exp(s - m_safe[..., None])
    den = p.sum(axis=-1)
    if sinks is not None:
        den = den + np.exp(sk - m_safe)
    with np.errstate(divide="ignore", invalid="ignore"):
        o = np.einsum("bhij,bhjd->bhid", p, v) / den[..., None]
        lse = m_safe + np.log(den)
    o = np.where(den[..., None] > 0, o, 0.0)
    lse = np.where(den > 0, lse, -np.inf)
    return o, lse


def assert_close(x, ref, tol=2e-5):
    """Every element within tol * (1 + |ref|), the contract's accuracy for float32."""
    x = np.asarray(x, np.float64)
    ref = np.asarray(ref, np.float64)
    assert x.shape == ref.shape, (x.shape, ref.shape)
    both_inf = np.isinf(ref) & (x == ref)
    err = np.where(both_inf, 0.0, np.abs(x - ref))
    bound = tol * (1.0 + np.where(both_inf, 0.0, np.abs(ref)))
    bad = ~(err <= bound)
    assert not bad.any(), f"{bad.sum()} elements off; worst {np.nanmax(err - bound)} over bound"


def grid(lq, lk):
    """(i', j) index grids of a bottom-right aligned lq x lk head."""
    i = np.arange(lq)[:, None] + (lk - lq)
    j = np.arange(lk)[None, :]
    return i, j


def _splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def bigbird_dense(lq, lk, block, window, global_blocks, random, seed):
    nkb = -(-lk // block)
    rnd = []
    state = seed
    for _ in range(nkb):
        got = []
        want = min(random, nkb)
        while len(got) < want:
            state, r = _splitmix64(state)
            if r % nkb not in got:
                got.append(r % nkb)
        rnd.append(set(got))
    out = np.zeros((lq, lk), bool)
    for i in range(lq):
        ip = i + lk - lq
        for j in range(lk):
            kb = j // block
            if ip < 0:
                out[i, j] = kb < global_blocks
                continue
            qb = ip // block
            out[i, j] = (abs(qb - kb) <= window or kb < global_blocks or qb < global_blocks
                         or kb in rnd[qb])
    return out


def grads64(q, k, v, d_o, allowed=None, *, scale=None, softcap=None, sinks=None):
    """(d_q, d_k, d_v, d_sinks) of sum(o * d_o) by the chain rule, in float64."""
    q, k, v, d_o = (np.asarray(a, dtype=np.float64) for a in (q, k, v, d_o))
    b, hq, lq, d = q.shape
    hkv, lk = k.shape[1], k.shape[2]
    g = hq // hkv
    kr, vr = np.repeat(k, g, axis=1), np.repeat(v, g, axis=1)
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    x = scale * np.einsum("bhid,bhjd->bhij", q, kr)
    s = softcap * np.tanh(x / softcap) if softcap else x
    o, lse = attention64(q, k, v, allowed, scale=scale, softcap=softcap, sinks=sinks)
    if allowed is None:
        allowed = np.ones((lq, lk), bool)
    allowed = np.broadcast_to(allowed, s.shape)
    lse_safe = np.where(np.isfinite(lse), lse, 0.0)
    p = np.where(allowed, np.exp(s - lse_safe[..., None]), 0.0)
    d_v = np.einsum("bhij,bhid->bhjd", p, d_o)
    dp = np.einsum("bhid,bhjd->bhij", d_o, vr)
    rowdot = (d_o * o).sum(axis=-1)
    ds = p * (dp - rowdot[..., None])
    dx = ds * (1.0 - np.tanh(x / softcap) ** 2) if softcap else ds
    d_q = scale * np.einsum("bhij,bhjd->bhid", dx, kr)
    d_k = scale * np.einsum("bhij,bhid->bhjd", dx, q)

    def fold(t):  # the query heads of one kv head share its gradient
        return t.reshape(b, hkv, g, lk, t.shape[-1]).sum(axis=2)

    d_sinks = None
    if sinks is not None:
        sk = np.asarray(sinks, np.float64)[None, :, None]
        p_sink = np.where(np.isfinite(sk), np.exp(sk - lse_safe), 0.0)
        d_sinks = -(p_sink * rowdot).sum(axis=(0, 2))
    return d_q, fold(d_k), fold(d_v), d_sinks
